"""Every mapping of a catalog file, declared once: its fields (each the JSON Schema of its value, with the line
an editor shows on hover) and the required ones. The reader takes its allowed and required keys from here, and
`amcompanion schema` (schema.py) writes these shapes as the catalog's JSON Schema, so the two cannot drift.

A field's schema is plain JSON Schema, except that `{"$ref": X}` names another shape or a Value that many fields
share (schema.py writes each once, in the schema's `$defs`). The reader's own checks (PromQL, names, references)
stay the reader's: these declarations only say what a value looks like."""

import re
from dataclasses import dataclass

from amcompanion.catalog.durations import PROMETHEUS_DURATION
from amcompanion.catalog.model import COMPARISONS, LEVELED_KINDS, ROLES
from amcompanion.catalog.names import LABEL_NAME, METRIC_NAME, WINDOW_PLACEHOLDER

# Values the reader matches (and the schema gives as patterns).
RATE_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
PHONE = re.compile(r"^\+[1-9]\d{4,14}$")
KUBERNETES_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True, eq=False)
class Shape:
    """One kind of mapping: `fields` in the order the reader lists them when a key is unknown."""

    title: str
    fields: dict[str, dict]
    required: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Value:
    """A kind of value many fields take (a duration, a label map), named in the schema's `$defs`."""

    name: str
    schema: dict


def value(name: str, schema: dict) -> dict:
    return {"$ref": Value(name, schema)}


def doc(schema: dict, description: str) -> dict:
    return {**schema, "description": description}


def nullable(schema: dict) -> dict:
    """A list or map the reader also takes empty (`groups:` with nothing under it)."""
    return {"anyOf": [{"type": "null"}, schema]}


def per_severity(item: dict) -> dict:
    """One value, or a map of severity → value."""
    return {"anyOf": [item, {"type": "object", "minProperties": 1, "additionalProperties": item}]}


def list_of(item: dict, **array: object) -> dict:
    """A list, or its one item on its own (`quiet_hours: nights` for `[nights]`)."""
    return {"anyOf": [item, {"type": "array", "items": item, **array}]}


def map_of(shape: Shape) -> dict:
    """Named definitions: name → one of `shape` (contacts, escalation policies)."""
    return nullable({"type": "object", "additionalProperties": {"$ref": shape}})


def array_of(shape: Shape) -> dict:
    return nullable({"type": "array", "items": {"$ref": shape}})


STRING = {"type": ["string", "number"]}  # the reader takes a number as its digits (`tier: 1` is "1")
TEXT = {"type": "string"}
NUMBER = {"type": "number"}
PERCENT = {"type": "number", "exclusiveMinimum": 0, "maximum": 100}
BOOLEAN = {"type": "boolean"}
DURATION = value(
    "duration", {"anyOf": [{"type": "string", "minLength": 1, "pattern": PROMETHEUS_DURATION.pattern}, {"const": 0}]}
)
PROMQL = STRING
WINDOW_PROMQL = {"type": "string", "pattern": WINDOW_PLACEHOLDER.pattern}
SECRET = {"type": "string", "pattern": r"\$\{"}  # `${ENV_VAR}`: the receiver fills it in from its environment
STRINGS = value("strings", {"type": "object", "additionalProperties": STRING})
LABELS = value(
    "labels", {"type": "object", "propertyNames": {"pattern": LABEL_NAME.pattern}, "additionalProperties": STRING}
)
NAMES = value("names", {"anyOf": [TEXT, {"type": "array", "items": STRING}]})  # one name, or a list of them
LABEL_NAMES = value("label_names", list_of({"type": "string", "pattern": LABEL_NAME.pattern}))
NATIVE = {"type": "object"}  # an Alertmanager receiver body, passed through as it is
ALERT = {"$ref": "#/$defs/alert"}  # an alert of its kind, or a recording rule (schema.py builds the choice)
CHANNEL = {"$ref": "#/$defs/channel"}  # one of CHANNELS, chosen by its `type` (schema.py builds the choice)

SLA_TARGET = Shape(
    "SLA target",
    {
        "ack": doc(DURATION, "time to acknowledge, from the first page (1s or longer)"),
        "resolve": doc(DURATION, "time to resolve, from the start (1s or longer)"),
    },
    ("ack", "resolve"),
)
SLO_DEFAULTS = Shape(
    "SLO defaults",
    {
        "labels": doc(LABELS, "on every rule of every SLO, over the SLO's own labels (Sloth's --extra-labels)"),
        "recordings": doc(BOOLEAN, "false: no SLI and metadata rules, only the alerts (--disable-recordings)"),
        "alerts": doc(BOOLEAN, "false: no SLO alerts (--disable-alerts)"),
        "window": doc(DURATION, "the window of SLOs that give none (default 30d; at least 1h)"),
    },
)
DEFAULTS = Shape(
    "Catalog defaults",
    {
        "labels": doc(LABELS, "labels added to every alerting rule, at the lowest precedence"),
        "for": doc(DURATION, "`for:` of every alert that sets none (default 5m)"),
        "interval": doc(DURATION, "evaluation interval of each group's rules, unless the group sets one"),
        "scrape_interval": doc(DURATION, "how often the metrics are scraped, for `amcompanion lint` (default 1m)"),
        "severities": doc(
            list_of({"type": "string", "pattern": LABEL_NAME.pattern}, minItems=1, uniqueItems=True),
            "the severity names, ordered low → high (default: info, warning, critical, emergency)",
        ),
        "group_by": doc(LABEL_NAMES, "group_by of the Alertmanager root route (default: [alertname])"),
        "group_wait": doc(per_severity(DURATION), "one duration, or a map of severity → duration"),
        "group_interval": doc(per_severity(DURATION), "one duration, or a map of severity → duration"),
        "repeat_interval": doc(per_severity(DURATION), "one duration, or a map of severity → duration"),
        "inhibit_lower_severities": doc(BOOLEAN, "a firing higher severity mutes the lower ones of its alert"),
        "escalation": doc(STRING, "the policy of alerts no route, group or alert sends anywhere"),
        "sla": doc(
            {"type": "object", "additionalProperties": {"$ref": SLA_TARGET}},
            "severity → {ack, resolve}: the targets the history pages measure against",
        ),
        "kind_label": doc(BOOLEAN, "false: no `alert_kind` label on alerting rules (default true)"),
        "slos": doc({"$ref": SLO_DEFAULTS}, "Sloth's `generate` flags for every SLO"),
    },
)
RECEIVER = Shape(
    "Receiver",
    {
        "url": doc(STRING, "base URL of the receiver as Alertmanager reaches it"),
        "bearer_token_file": doc(STRING, "token file on the Alertmanager host; the receiver checks the same token"),
        "external_url": doc(STRING, "base of the ack links people click (default: url)"),
        "ack_link_ttl": doc(DURATION, "how long an ack link works, from 1m to 1y (default 24h)"),
        "trusted_proxies": doc(
            NAMES, "addresses or networks (CIDR) of reverse proxies whose user headers are believed"
        ),
        "user_header": doc(STRING, "the proxy's header naming the user (default X-Forwarded-User)"),
        "email_header": doc(STRING, "the proxy's header giving the user's email (default X-Forwarded-Email)"),
    },
    ("url",),
)
SELF_MONITORING = Shape(
    "Self-monitoring",
    {
        "enabled": doc(BOOLEAN, "false: no self-monitoring rules and no route"),
        "job": doc(STRING, "the scrape job of the receiver (default amcompanion)"),
        "escalation": doc(STRING, "the policy the receiver's own alerts page (default: the first policy)"),
        "native": doc(NATIVE, "an Alertmanager receiver body instead of a policy"),
        "channel_failing_for": doc(DURATION, "the `for` of AmcompanionChannelFailing (default 10m)"),
    },
)
DRILLS = Shape(
    "Drills",
    {
        "at": doc(
            {"type": "string", "pattern": "^[A-Za-z]+ [0-9]{1,2}:[0-9]{2}$"},
            'every week at, in UTC (Prometheus\'s clock): "monday 10:00"',
        ),
        "lasts": doc(DURATION, "how long each drill alert fires, in whole minutes (default 5m)"),
        "escalations": doc(NAMES, "the policies drilled (default: every policy)"),
    },
    ("at",),
)
CONTACT = Shape(
    "Contact",
    {
        "name": doc(STRING, "display name"),
        "phone": doc({"type": "string", "pattern": PHONE.pattern}, 'E.164, quoted: "+8613800000001"'),
        "email": doc({"type": "string", "pattern": "@"}, "email address"),
        "dingtalk_mobile": doc(STRING, "DingTalk @-mentions"),
        "dingtalk_user_id": doc(STRING, "DingTalk staff id: @-mentions, and who pressed a DingTalk button"),
        "dingtalk_userid": doc(STRING, "the older name of dingtalk_user_id (still read)"),
        "wecom_user_id": doc(STRING, "WeCom user id: mentions, and WeCom application messages (`touser`)"),
        "wecom_userid": doc(STRING, "the older name of wecom_user_id (still read)"),
        "wecom_mobile": doc(STRING, "WeCom mentions"),
        "feishu_user_id": doc(STRING, "Feishu mentions, and who pressed a Feishu card button"),
        "feishu_open_id": doc(STRING, "Feishu mentions, app messages, and who pressed a Feishu card button"),
        "slack_user_id": doc(STRING, "Slack mentions, and who pressed a Slack button (U…)"),
        "telegram_chat_id": doc(STRING, "Telegram direct messages"),
        "discord_user_id": doc(STRING, "Discord mentions"),
        "timezone": doc(STRING, "passed to the receiver"),
        "notify": doc(NAMES, "channels a schedule step without `channel` reaches this person on"),
        "role": doc({"enum": list(ROLES)}, "what the person may do in the console and the API (default responder)"),
        "token_sha256": doc({"type": "string", "pattern": "^[0-9a-f]{64}$"}, "SHA-256 (hex) of the person's API token"),
        "token_env": doc(STRING, "or the environment variable holding the person's token (from a Secret)"),
    },
)

CHANNEL_COMMON = {
    "rate_limit": doc(
        {"type": "string", "pattern": RATE_LIMIT.pattern}, "N/s, N/min or N/hour; messages beyond it are queued"
    ),
    "template": doc(STRING, "a jinja2 template file for the message, replacing the type's default"),
    "base_url": doc(STRING, "another API host (a proxy, a private deployment, a test fake)"),
    "timeout": doc(DURATION, "per-request timeout"),
    "send_resolved": doc(BOOLEAN, "whether resolved notices go out through this channel"),
    "max_in_flight": doc({"type": "integer", "minimum": 1, "maximum": 100}, "messages sent at once (default 8)"),
}
WEBHOOK_URL = doc(STRING, "the webhook URL (a token in it as ${ENV_VAR})")
SIGNING_SECRET = doc(SECRET, "signing secret, as ${ENV_VAR}")
TWILIO = {
    "account_sid": doc(STRING, "Twilio account SID"),
    "auth_token": doc(SECRET, "Twilio auth token, as ${ENV_VAR}"),
    "from": doc(STRING, "the Twilio number calls and messages come from"),
}


def channel(ctype: str, what: str, required: dict[str, dict], optional: dict[str, dict]) -> Shape:
    """A channel type's settings: the common ones, then its required, then its optional ones."""
    kind = {"type": doc({"const": ctype}, what)}
    return Shape(f"{ctype} channel", {**kind, **CHANNEL_COMMON, **required, **optional}, ("type", *required))


CHANNELS = {
    "dingtalk": channel(
        "dingtalk",
        "DingTalk custom robot",
        {"url": WEBHOOK_URL},
        {
            "secret": SIGNING_SECRET,
            "keywords": doc(NAMES, "the robot's keyword rule: the first is added when the text has none"),
            "at_all": doc(BOOLEAN, "true: @all"),
            "action_card": doc(
                BOOLEAN, "false: no ActionCard with an Acknowledge button for group messages (markdown only)"
            ),
        },
    ),
    "wecom": channel(
        "wecom",
        "WeCom group robot",
        {"url": WEBHOOK_URL},
        {"msgtype": doc(STRING, "markdown (default), markdown_v2 or text")},
    ),
    "feishu": channel(
        "feishu",
        "Feishu / Lark custom bot",
        {"url": WEBHOOK_URL},
        {
            "secret": SIGNING_SECRET,
            "msg_type": doc({"enum": ["interactive", "post", "text"]}, "interactive (a card, default), post or text"),
        },
    ),
    "twilio_sms": channel("twilio_sms", "SMS through Twilio", TWILIO, {}),
    "twilio_voice": channel(
        "twilio_voice",
        "phone calls through Twilio",
        TWILIO,
        {
            "voice": doc(STRING, "e.g. alice, Polly.Joanna"),
            "language": doc(STRING, "e.g. en-US, zh-CN; also picks the prompt's language"),
        },
    ),
    "email": channel(
        "email",
        "SMTP",
        {"host": doc(STRING, "SMTP server"), "from": doc(STRING, "sender address")},
        {
            "port": doc({"type": "integer", "minimum": 1, "maximum": 65535}, "SMTP port (default 587)"),
            "starttls": doc(BOOLEAN, "true: required, false: never; unset: when offered"),
            "tls": doc(BOOLEAN, "implicit TLS (port 465)"),
            "username": doc(STRING, "SMTP AUTH user"),
            "password": doc(SECRET, "SMTP AUTH password, as ${ENV_VAR}"),
            "to": doc(NAMES, "the channel's own addresses, when a step names no contacts"),
            "ca_file": doc(STRING, "a CA bundle to trust"),
            "tls_verify": doc(BOOLEAN, "false: accept any certificate (loopback relays only)"),
        },
    ),
    "slack": channel(
        "slack",
        "Slack incoming webhook",
        {"url": WEBHOOK_URL},
        {"channel": doc(STRING, "channel override (legacy hooks)"), "username": doc(STRING, "name override")},
    ),
    "telegram": channel(
        "telegram",
        "Telegram bot",
        {"bot_token": doc(SECRET, "bot token, as ${ENV_VAR}"), "chat_id": doc(STRING, "the group's chat id")},
        {"parse_mode": doc({"enum": ["HTML", "MarkdownV2", "Markdown", "none"]}, "HTML (default), Markdown...")},
    ),
    "wecom_app": channel(
        "wecom_app",
        "WeChat Work (WeCom) application messages",
        {
            "corp_id": doc(STRING, "the company's corp id (ww…)"),
            "corp_secret": doc(SECRET, "the application's secret, as ${ENV_VAR}"),
            "agent_id": doc(STRING, "the application's AgentId (a number)"),
        },
        {
            "msgtype": doc(STRING, "markdown (default) or textcard (a card with the ack link as its button)"),
            "toparty": doc(STRING, "department ids (1|2) reached when a step names no contacts"),
            "totag": doc(STRING, "tag ids (1|2) reached when a step names no contacts"),
        },
    ),
    "aliyun_sms": channel(
        "aliyun_sms",
        "SMS through Aliyun (Alibaba Cloud) Dysmsapi SendSms",
        {
            "access_key_id": doc(STRING, "the RAM user's AccessKey ID"),
            "access_key_secret": doc(SECRET, "its AccessKey secret, as ${ENV_VAR}"),
            "sign_name": doc(STRING, "the approved signature (签名)"),
            "template_code": doc(STRING, "the approved template (SMS_…)"),
        },
        {"region": doc(STRING, "e.g. cn-hangzhou (default)")},
    ),
    "aliyun_voice": channel(
        "aliyun_voice",
        "phone calls through Aliyun Dyvmsapi SingleCallByTts",
        {
            "access_key_id": doc(STRING, "the RAM user's AccessKey ID"),
            "access_key_secret": doc(SECRET, "its AccessKey secret, as ${ENV_VAR}"),
            "tts_code": doc(STRING, "the approved TTS template (TTS_…)"),
        },
        {
            "called_show_number": doc(STRING, "the number shown to the callee (default: the public pool)"),
            "region": doc(STRING, "e.g. cn-hangzhou (default)"),
        },
    ),
    "tencent_sms": channel(
        "tencent_sms",
        "SMS through Tencent Cloud SendSms (2021-01-11)",
        {
            "secret_id": doc(STRING, "the API key's SecretId"),
            "secret_key": doc(SECRET, "its SecretKey, as ${ENV_VAR}"),
            "sdk_app_id": doc(STRING, "the SMS application's SdkAppId"),
            "sign_name": doc(STRING, "the approved signature (签名)"),
            "template_id": doc(STRING, "the approved template's id"),
        },
        {"region": doc(STRING, "e.g. ap-guangzhou (default)")},
    ),
    "tencent_voice": channel(
        "tencent_voice",
        "phone calls through Tencent Cloud VMS SendTtsVoice",
        {
            "secret_id": doc(STRING, "the API key's SecretId"),
            "secret_key": doc(SECRET, "its SecretKey, as ${ENV_VAR}"),
            "sdk_app_id": doc(STRING, "the voice application's VoiceSdkAppid"),
            "template_id": doc(STRING, "the approved TTS template's id"),
        },
        {"region": doc(STRING, "e.g. ap-guangzhou (default)")},
    ),
    "pagerduty": channel(
        "pagerduty",
        "PagerDuty Events API v2 (trigger, acknowledge, resolve)",
        {"routing_key": doc(SECRET, "the service integration's routing key, as ${ENV_VAR}")},
        {},
    ),
    "slack_app": channel(
        "slack_app",
        "Slack app (chat.postMessage with Acknowledge and Resolve buttons)",
        {
            "bot_token": doc(SECRET, "the bot token (xoxb-…), as ${ENV_VAR}"),
            "signing_secret": doc(SECRET, "the app's signing secret, as ${ENV_VAR}: checks button presses"),
            "channel": doc(STRING, "the channel id (C…) messages go to"),
        },
        {},
    ),
    "feishu_app": channel(
        "feishu_app",
        "Feishu / Lark app bot (a card with an Acknowledge button)",
        {
            "app_id": doc(STRING, "the app's App ID (cli_…)"),
            "app_secret": doc(SECRET, "its App Secret, as ${ENV_VAR}"),
        },
        {
            "verification_token": doc(SECRET, "the app's Verification Token, as ${ENV_VAR}: checks card callbacks"),
            "encrypt_key": doc(SECRET, "the app's Encrypt Key, as ${ENV_VAR}: decrypts and signs callbacks"),
            "chat_id": doc(STRING, "the group (oc_…) reached when a step names no contacts"),
        },
    ),
    "teams": channel("teams", "Microsoft Teams Workflows webhook (an Adaptive Card)", {"url": WEBHOOK_URL}, {}),
    "discord": channel(
        "discord", "Discord channel webhook", {"url": WEBHOOK_URL}, {"username": doc(STRING, "name override")}
    ),
    "webhook": channel(
        "webhook",
        "any HTTP endpoint (JSON)",
        {"url": doc(STRING, "the endpoint")},
        {
            "headers": doc(STRINGS, "request headers (secrets as ${ENV_VAR})"),
            "method": doc(STRING, "HTTP method (default POST)"),
        },
    ),
}

TARGET = Shape(
    "Notify target",
    {
        "channel": doc(STRING, "a channel name"),
        "to": doc(NAMES, "contacts the channel reaches"),
        "oncall": doc(STRING, "a schedule: whoever is on call when the step fires"),
        "next_oncall": doc(STRING, "a schedule: whoever takes over at its next hand-off"),
        "everyone": doc(STRING, "a schedule: everyone it names"),
    },
)
LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$")  # a wall-clock time in a schedule's zone
RESTRICTION = Shape(
    "Layer restriction",
    {
        "weekdays": doc(NAMES, "day names or ranges: monday:friday (default every day)"),
        "start_time": doc({"type": "string", "pattern": TIME_OF_DAY.pattern}, 'HH:MM local, quoted: "09:00"'),
        "end_time": doc({"type": "string", "pattern": TIME_OF_DAY.pattern}, "HH:MM; at or before start: overnight"),
    },
)
ICAL = Shape(
    "iCal source",
    {
        "file": doc(STRING, "an .ics file, relative to the catalog (or receiver config) directory"),
        "url": doc(STRING, "an .ics URL (a shared calendar's address)"),
        "refresh": doc(DURATION, "how often the receiver reads it again (default 10m)"),
    },
)
LAYER = Shape(
    "Schedule layer",
    {
        "name": doc(STRING, "shown in the timeline (default: layer-N)"),
        "rotation": doc(NAMES, "contacts in turn order"),
        "shift": doc(DURATION, "each turn's length: whole hours, days or weeks (12h, 1d, 1w)"),
        "handoff": doc(
            {"type": "string", "pattern": LOCAL_TIME.pattern},
            'the first shift\'s start, local time: "2026-01-05 09:00"; hand-offs keep its time of day',
        ),
        "restrict": doc(list_of({"$ref": RESTRICTION}), "in force only within these windows"),
        "ical": doc({"$ref": ICAL}, "shifts from a shared calendar instead of a rotation"),
    },
)
OVERRIDE = Shape(
    "Schedule override",
    {
        "who": doc(STRING, "the contact on call instead"),
        "from": doc(STRING, 'RFC 3339 ("2026-12-24T09:00:00+01:00") or local time ("2026-12-24 09:00")'),
        "to": doc(STRING, "when the override ends, written as `from`"),
    },
    ("who", "from", "to"),
)
SCHEDULE = Shape(
    "Schedule",
    {
        "time_zone": doc(STRING, "an IANA time zone: hand-offs and restrictions are in its local time"),
        "layers": doc(
            {"type": "array", "minItems": 1, "items": {"$ref": LAYER}}, "rotations; a later layer wins where it is on"
        ),
        "overrides": doc(array_of(OVERRIDE), "who covers when, whatever the layers say"),
    },
    ("time_zone", "layers"),
)
STEP = Shape(
    "Escalation step",
    {
        "after": doc(DURATION, "when the step comes due, counted from the first notification (default 0s)"),
        "notify": doc(
            list_of({"anyOf": [TEXT, {"$ref": TARGET}]}, minItems=1),
            "a channel name, {channel, to: [contacts]}, or a list of both",
        ),
    },
    ("notify",),
)
REPEAT = Shape(
    "Repeat",
    {
        "every": doc(DURATION, "repeat the last step at this interval while unacknowledged"),
        "times": doc({"type": "integer", "minimum": 0}, "how many times (default 1)"),
    },
    ("every",),
)
POLICY = Shape(
    "Escalation policy",
    {
        "steps": doc({"type": "array", "minItems": 1, "items": {"$ref": STEP}}, "the steps, in order of `after`"),
        "repeat": doc({"$ref": REPEAT}, "repeat the last step while the alert is unacknowledged"),
        # The reader's default is the first value.
        "on_resolve": doc(
            {"enum": ["notify_previous", "notify_all", "none"]}, "who is told of the resolve (default notify_previous)"
        ),
        "on_failure": doc(
            {"enum": ["next_step", "wait"]}, "a page that fails for good: take the next step at once, or wait"
        ),
    },
    ("steps",),
)
ROUTE = Shape(
    "Route",
    {
        "name": doc(STRING, "a native route's Alertmanager receiver name; else a label for readers"),
        "match": doc(LABELS, "label → value, equality"),
        "match_re": doc(LABELS, "label → regular expression, anchored"),
        "matchers": doc(NAMES, 'Alertmanager matchers: severity="critical", team=~"db|infra"'),
        "escalation": doc(STRING, "the escalation policy to send to"),
        "native": doc(NATIVE, "an Alertmanager receiver body (email_configs, ...), passed through"),
        "quiet_hours": doc(NAMES, "quiet_hours windows during which the route is muted"),
        "active_hours": doc(NAMES, "quiet_hours windows outside which the route is muted"),
        "continue": doc(BOOLEAN, "true: keep trying the following routes after this one matches"),
        "group_by": doc(NAMES, "overrides defaults.group_by for this route"),
        "group_wait": doc(DURATION, "overrides the default for this route"),
        "group_interval": doc(DURATION, "overrides the default for this route"),
        "repeat_interval": doc(DURATION, "overrides the default for this route"),
    },
)
TIME_SPAN = Shape(
    "Time span",
    {
        "start_time": doc({"type": "string", "pattern": TIME_OF_DAY.pattern}, 'HH:MM, quoted: "22:00"'),
        "end_time": doc({"type": "string", "pattern": TIME_OF_DAY.pattern}, 'HH:MM, quoted: "07:00"; 24:00 allowed'),
    },
    ("start_time", "end_time"),
)
INTERVAL = Shape(
    "Time interval",
    {
        "times": doc(list_of({"$ref": TIME_SPAN}), "{start_time, end_time} spans; overnight ones are split"),
        "weekdays": doc(NAMES, "day names or ranges: saturday, monday:friday"),
        "days_of_month": doc(NAMES, '"1:7", "-1"'),
        "months": doc(NAMES, "month names or numbers, ranges allowed"),
        "years": doc(NAMES, '"2025:2026"'),
        "location": doc(STRING, "an IANA time zone (default UTC)"),
    },
)

ESCALATE = Shape(
    "Escalate",
    {
        "to": doc(TEXT, "the severity to raise to, higher than `from`"),
        "after": doc(DURATION, "how long the `from` level must keep firing"),
        "from": doc(TEXT, "the level that escalates (default: the alert's lowest)"),
    },
    ("to", "after"),
)


# The checks of `amcompanion lint` (amcompanion/lint/), named here so an alert's `lint.disable` is checked on reading.
LINT_CHECKS = (
    "template-label",
    "vector-matching",
    "rate-window",
    "regex",
    "counter-without-rate",
    "no-comparison",
    "absent-for",
    "duplicate-rule",
    "series-missing",
    "label-missing",
)
LINT = Shape(
    "Lint settings",
    {
        "disable": doc(list_of({"enum": list(LINT_CHECKS)}), "the lint checks that do not apply to this alert"),
        "reason": doc({"type": "string", "minLength": 1}, "why they do not apply (required)"),
    },
    ("disable", "reason"),
)


EXAMPLE_SERIES = Shape(
    "Example input series",
    {
        "series": doc(TEXT, 'a series, as promtool writes it: node_load1{instance="a"}'),
        "values": doc(STRING, "its samples in promtool's notation, one per interval: 0+10x30 _x5 1x10"),
    },
    ("series", "values"),
)
EXAMPLE = Shape(
    "Example",
    {
        "input": doc({"type": "array", "items": {"$ref": EXAMPLE_SERIES}, "minItems": 1}, "the input series"),
        "interval": doc(DURATION, "the time between two samples (default 1m)"),
        "at": doc(DURATION, "when the alert's state is checked (default: at the last sample)"),
        "fires": doc(
            {"anyOf": [{"type": "boolean"}, list_of(TEXT)]},
            "the severities firing then (a list, [] for none); true or false for an alert without severity",
        ),
    },
    ("input", "fires"),
)


ONE_OR_PER_SEVERITY = "one number (with `severity`), or a map of severity → number"
LEVEL = value("level", per_severity(NUMBER))
LEVELS = {
    key: doc(LEVEL, f"fires while the value is {op} it: {ONE_OR_PER_SEVERITY}") for key, op in COMPARISONS.items()
}
COMPARED = doc(PROMQL, "the PromQL value compared with the level")
KIND_FIELDS = {  # each kind's own fields; the reader says "does not apply" of another kind's
    "threshold": {"expr": COMPARED, **LEVELS},
    "absent": {"expr": doc(PROMQL, 'a series selector such as up{job="node"}: fires while it has no series')},
    "ratio": {
        "errors": doc(PROMQL, "the numerator of errors / total"),
        "total": doc(PROMQL, "the denominator; zero or missing never fires"),
        **LEVELS,
    },
    "trend": {
        "expr": doc(PROMQL, "the value to extrapolate: predict_linear(expr[lookback], horizon)"),
        "lookback": doc(DURATION, "how much history the prediction reads"),
        "horizon": doc(DURATION, "how far ahead it predicts"),
        **LEVELS,
    },
    "anomaly": {
        "expr": doc(PROMQL, "the value compared with its own history"),
        "baseline": doc(DURATION, "the history: avg_over_time and stddev_over_time over it"),
        "zscore": doc(
            per_severity({"type": "number", "exclusiveMinimum": 0}),
            f"how many standard deviations away fire: {ONE_OR_PER_SEVERITY}",
        ),
    },
    "frequency": {
        "expr": doc(PROMQL, "a counter: increase(expr[within])"),
        "within": doc(DURATION, "the window the increase is counted over"),
        **LEVELS,
    },
    "composite": {
        "all": doc(NAMES, "fires while all these alerts fire (for the same `on` labels)"),
        "any": doc(NAMES, "fires while any of these alerts fires"),
        "on": doc(LABEL_NAMES, 'the labels the members must share (quote the key: "on")'),
    },
    "expr": {"expr": doc(PROMQL, "a full boolean PromQL expression: fires for every series it returns")},
}
KIND_REQUIRED = {  # beyond `alert`, unless the alert has variants (then each variant with the alert has them)
    "threshold": ("expr",),
    "absent": ("expr",),
    "ratio": ("errors", "total"),
    "trend": ("expr", "lookback", "horizon"),
    "anomaly": ("expr", "baseline", "zscore"),
    "frequency": ("expr", "within"),
    "composite": (),
    "expr": ("expr",),
}
ALERT_COMMON = {
    "alert": doc(STRING, "the alert name, unique in the catalog"),
    "kind": doc(
        {"enum": list(KIND_FIELDS)}, "the kind (default: threshold if a level such as `above` is given, else expr)"
    ),
    "for": doc(DURATION, "how long the condition must hold (default: defaults.for; 0s for composite)"),
    "severity": doc({"type": ["string", "null"]}, "the severity of one level or of a kind without levels"),
    "summary": doc(STRING, "the summary annotation"),
    "description": doc(STRING, "the description annotation"),
    "runbook_url": doc(STRING, "the runbook_url annotation"),
    "dashboard_url": doc(STRING, "the dashboard_url annotation"),
    "labels": doc(LABELS, "extra labels of this alert"),
    "annotations": doc(STRINGS, "extra annotations; they override the fields above"),
    "escalate": doc({"$ref": ESCALATE}, "raise the severity of an alert that keeps firing"),
    "escalation": doc(STRING, "the policy for this alert when no catalog route matches it first"),
    "keep_firing_for": doc(DURATION, "how long it keeps firing after its condition stopped holding"),
    "lint": doc({"$ref": LINT}, "lint checks this alert is exempt from, and why (docs/lint.md)"),
    "examples": doc(
        {"type": "array", "items": {"$ref": EXAMPLE}},
        "input series and what fires from them: tests for a query the compiler cannot drive itself",
    ),
}
VARIANT_COMMON = {
    key: ALERT_COMMON[key]
    for key in (
        "severity",
        "for",
        "keep_firing_for",
        "labels",
        "annotations",
        "summary",
        "description",
        "runbook_url",
        "dashboard_url",
        "escalation",
    )
}
VARIANTS = {  # what one of an alert's `variants` may set for itself: the rest it shares with the alert
    kind: Shape(
        f"{kind} alert variant",
        {**VARIANT_COMMON, **fields},
        () if kind in LEVELED_KINDS else ("severity",),
    )
    for kind, fields in KIND_FIELDS.items()
}
ALERTS = {
    kind: Shape(
        f"{kind} alert",
        {
            **ALERT_COMMON,
            "variants": doc(
                {"type": "array", "minItems": 1, "items": {"$ref": VARIANTS[kind]}},
                "per-severity variants that differ in more than their level",
            ),
            **fields,
        },
        ("alert", *KIND_REQUIRED[kind]),
    )
    for kind, fields in KIND_FIELDS.items()
}
RECORD = Shape(
    "Recording rule",
    {
        "record": doc({"type": "string", "pattern": METRIC_NAME.pattern}, "the recorded metric's name"),
        "expr": doc(PROMQL, "any PromQL expression"),
        "labels": doc(LABELS, "labels set on the recorded series"),
    },
    ("record", "expr"),
)

LATENCY = Shape(
    "Latency SLI",
    {
        "buckets": doc(PROMQL, "a histogram _bucket series selector"),
        "le": doc(STRING, 'the bound a good request is within, as the le label has it: "0.3"'),
    },
    ("buckets", "le"),
)
SLI = Shape(
    "SLI",
    {
        "errors": doc(WINDOW_PROMQL, "events that burn the budget, with {{window}} as the range"),
        "good": doc(WINDOW_PROMQL, "instead of errors: the events that do not burn the budget"),
        "total": doc(WINDOW_PROMQL, "all events, with {{window}} as the range"),
        "raw": doc(WINDOW_PROMQL, "an error ratio query (0-1) with {{window}}, recorded as it is"),
        "latency": doc({"$ref": LATENCY}, "{buckets, le}: requests slower than le are errors"),
        "denominator_corrected": doc(BOOLEAN, "weigh each window's errors by its share of traffic (Sloth's plugin)"),
    },
)
TIER = Shape(
    "SLO alert tier",
    {
        "severity": doc(TEXT, "the tier's severity"),
        "labels": doc(LABELS, "extra labels of the tier's alert"),
        "annotations": doc(STRINGS, "extra annotations of the tier's alert"),
    },
)
TIER_OR_OFF = {"anyOf": [{"$ref": TIER}, {"enum": [False, None]}]}
ALERTING = Shape(
    "SLO alerting",
    {
        "name": doc(
            {"type": "string", "pattern": METRIC_NAME.pattern},
            "the alert name (default: CamelCase name + ErrorBudgetBurn)",
        ),
        "for": doc(DURATION, "`for:` of both burn-rate alerts (default 0s)"),
        "page": doc(TIER_OR_OFF, "the fast-burn tier (default {severity: critical}); false disables it"),
        "ticket": doc(TIER_OR_OFF, "the slow-burn tier (default {severity: warning}); false disables it"),
        "labels": doc(LABELS, "extra labels on both alerts"),
        "annotations": doc(STRINGS, "extra annotations on both alerts"),
    },
)
SLO = Shape(
    "SLO",
    {
        "name": doc(STRING, "unique among the SLOs of its service"),
        "service": doc(STRING, "sloth_service (default: the group's name)"),
        "objective": doc(PERCENT, "a percentage in (0, 100], as a number: 99.9"),
        "window": doc(DURATION, "the compliance period, at least 1h (default: defaults.slos.window, 30d)"),
        "sli": doc({"$ref": SLI}, "errors (or good) + total, raw, or latency"),
        "group_by": doc(LABEL_NAMES, "labels to keep: one SLO per value"),
        "min_events": doc(NUMBER, "no alert while the long window saw fewer events than this"),
        "labels": doc(LABELS, "added to every rule of the SLO"),
        "alerting": doc({"anyOf": [{"$ref": ALERTING}, {"const": False}]}, "the burn-rate alerts; false: none"),
        "description": doc(STRING, "the description annotation of its alerts"),
        "alert_windows": doc(STRING, "the name of the alert windows for its window"),
        "recordings": doc(BOOLEAN, "false: no SLI and metadata rules, only the alerts"),
        "info_labels": doc(LABELS, "extra labels of sloth_slo_info"),
        "interval": doc(DURATION, "evaluation interval of the SLO's rule groups"),
    },
    ("name", "objective", "sli"),
)
PROMETHEUS_RULE = Shape(
    "PrometheusRule metadata",
    {
        "name": doc({"type": "string", "pattern": KUBERNETES_NAME.pattern}, "default amcompanion-<group>"),
        "namespace": doc({"type": "string", "pattern": KUBERNETES_NAME.pattern}, "the object's namespace"),
        "labels": doc(STRINGS, "labels of the object"),
        "annotations": doc(STRINGS, "annotations of the object"),
    },
)
INHIBIT = Shape(
    "Inhibition",
    {
        "source": doc(STRING, "the alert that mutes (the root cause)"),
        "targets": doc(NAMES, "the alerts it mutes while it fires"),
        "equal": doc(LABEL_NAMES, "labels source and target must share (default: mutes everywhere)"),
    },
    ("source", "targets"),
)
GROUP = Shape(
    "Group",
    {
        "name": doc(STRING, "unique in its file; names the rule group and the generated files"),
        "labels": doc(LABELS, "added to every alert and SLO alert of the group"),
        "escalation": doc(STRING, "the policy for the group's alerts when no catalog route matches them first"),
        "interval": doc(DURATION, "evaluation interval of the group's alert rules (default: defaults.interval)"),
        "kind_label": doc(BOOLEAN, "false: no alert_kind label on the group's alerts"),
        "alerts": doc(nullable({"type": "array", "items": ALERT}), "alerts and recording rules, in order"),
        "slos": doc(array_of(SLO), "SLOs"),
        "inhibits": doc(array_of(INHIBIT), "inhibitions"),
        "prometheus_rule": doc({"$ref": PROMETHEUS_RULE}, "metadata of the group's PrometheusRule"),
    },
    ("name",),
)

BURN_WINDOW = Shape(
    "Burn window pair",
    {
        "budget_percent": doc(PERCENT, "the share of the error budget this pair spends, in (0, 100]"),
        "short_window": doc(DURATION, "shorter than long_window"),
        "long_window": doc(DURATION, "at most the period"),
    },
    ("budget_percent", "short_window", "long_window"),
)
WINDOW_PAIRS = Shape(
    "Alert window pairs",
    {"quick": doc({"$ref": BURN_WINDOW}, "the quick pair"), "slow": doc({"$ref": BURN_WINDOW}, "the slow pair")},
    ("quick", "slow"),
)
ALERT_WINDOWS = Shape(
    "Alert windows",
    {
        "name": doc(STRING, "unique in the catalog (default: the file's name, if it has one entry)"),
        "period": doc(DURATION, "the SLO period these windows are for"),
        "page": doc({"$ref": WINDOW_PAIRS}, "the page tier's window pairs"),
        "ticket": doc({"$ref": WINDOW_PAIRS}, "the ticket tier's window pairs"),
    },
    ("period", "page", "ticket"),
)

FILE = Shape(
    "amcompanion catalog file",
    {
        "version": doc({"const": 1}, "the catalog format: 1, in every file"),
        "defaults": doc({"$ref": DEFAULTS}, "catalog-wide defaults (one file only)"),
        "receiver": doc({"$ref": RECEIVER}, "how Alertmanager reaches the amcompanion receiver (one file only)"),
        "contacts": doc(map_of(CONTACT), "people: name → phone, email, chat ids"),
        "channels": doc(nullable({"type": "object", "additionalProperties": CHANNEL}), "name → type + settings"),
        "escalations": doc(map_of(POLICY), "escalation policies: name → ordered steps"),
        "schedules": doc(map_of(SCHEDULE), "on-call schedules: rotations, layers, overrides, iCal sources"),
        "routes": doc(array_of(ROUTE), "which alerts go to which policy or native receiver; the first match wins"),
        "quiet_hours": doc(
            nullable(
                {
                    "type": "object",
                    "additionalProperties": list_of({"$ref": INTERVAL}, minItems=1),
                }
            ),
            "named time windows (Alertmanager time_intervals)",
        ),
        "groups": doc(array_of(GROUP), "alert groups: alerts, SLOs, inhibitions"),
        "self_monitoring": doc({"$ref": SELF_MONITORING}, "the receiver's own alerts (one file only)"),
        "drills": doc({"$ref": DRILLS}, "a weekly drill of every policy's path (one file only)"),
        "alert_windows": doc(array_of(ALERT_WINDOWS), "Sloth AlertWindows: an SLO period's alert window pairs"),
    },
    ("version",),
)
