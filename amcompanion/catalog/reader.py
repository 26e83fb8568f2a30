"""Reading and validating the catalog: files → plain data → typed model, collecting every error."""

import difflib
import re
import zoneinfo
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml_rs

from amcompanion.catalog import promql
from amcompanion.catalog.diagnostics import (
    CatalogError,
    Diagnostic,
    Diagnostics,
    KeyPath,
    locate,
    syntax_error,
)
from amcompanion.catalog.durations import parse_duration
from amcompanion.catalog.model import (
    KINDS,
    LEVELED_KINDS,
    SELF_MONITORING_GROUP,
    SELF_MONITORING_RECEIVER,
    SLO,
    Alert,
    Catalog,
    Defaults,
    Escalate,
    Group,
    Inhibit,
    Level,
    NotifyTarget,
    Origin,
    Policy,
    Receiver,
    Route,
    SelfMonitoring,
    Step,
    Tier,
)
from amcompanion.catalog.numbers import go_float, promql_number

TOP_LEVEL = (
    "version",
    "defaults",
    "receiver",
    "contacts",
    "channels",
    "escalations",
    "routes",
    "quiet_hours",
    "groups",
    "self_monitoring",
)
SELF_MONITORING_FIELDS = ("enabled", "job", "escalation", "native", "channel_failing_for")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
FILE_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.?window\s*\}\}")
RATE_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
PHONE = re.compile(r"^\+[1-9]\d{4,14}$")
# An ack link works for 1m at least (a message can wait in the outbox) and 1y at most (anyone holding it can
# acknowledge, and a later expiry would not fit in a datetime for long).
ACK_LINK_TTL_MS = (60_000, 365 * 24 * 3600_000)

ALERT_COMMON = (
    "alert",
    "kind",
    "for",
    "severity",
    "summary",
    "description",
    "runbook_url",
    "dashboard_url",
    "labels",
    "annotations",
    "escalate",
    "escalation",
)
KIND_FIELDS = {
    "threshold": ("expr", "above", "below"),
    "absent": ("expr",),
    "ratio": ("errors", "total", "above", "below"),
    "trend": ("expr", "lookback", "horizon", "above", "below"),
    "anomaly": ("expr", "baseline", "zscore"),
    "frequency": ("expr", "within", "above", "below"),
    "composite": ("all", "any", "on"),
    "expr": ("expr",),
}
KIND_REQUIRED = {
    "threshold": ("expr",),
    "absent": ("expr",),
    "ratio": ("errors", "total"),
    "trend": ("expr", "lookback", "horizon"),
    "anomaly": ("expr", "baseline", "zscore"),
    "frequency": ("expr", "within"),
    "composite": (),
    "expr": ("expr",),
}
EVERY_KIND_FIELD = tuple(sorted({f for fields in KIND_FIELDS.values() for f in fields}))
CHANNEL_COMMON = ("type", "rate_limit", "template", "base_url", "timeout", "send_resolved", "max_in_flight")
CHANNEL_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required, optional)
    "dingtalk": (("url",), ("secret", "keywords", "at_all")),
    "wecom": (("url",), ("msgtype",)),
    "feishu": (("url",), ("secret", "msg_type")),
    "twilio_sms": (("account_sid", "auth_token", "from"), ()),
    "twilio_voice": (("account_sid", "auth_token", "from"), ("voice", "language")),
    "email": (("host", "from"), ("port", "starttls", "tls", "username", "password", "to", "ca_file", "tls_verify")),
    "slack": (("url",), ("channel", "username")),
    "telegram": (("bot_token", "chat_id"), ("parse_mode",)),
    "discord": (("url",), ("username",)),
    "webhook": (("url",), ("headers", "method")),
}
SECRET_FIELDS = ("secret", "auth_token", "password", "bot_token")
SETTING_CHOICES = {  # settings that name one of a channel's message formats
    "msg_type": ("interactive", "post", "text"),
    "parse_mode": ("HTML", "MarkdownV2", "Markdown", "none"),
}
CONTACT_FIELDS = (
    "name",
    "phone",
    "email",
    "dingtalk_mobile",
    "dingtalk_userid",
    "wecom_userid",
    "wecom_mobile",
    "feishu_user_id",
    "feishu_open_id",
    "slack_user_id",
    "telegram_chat_id",
    "discord_user_id",
    "timezone",
)
# What a channel needs of each contact it is asked to reach (`to:`), and whether it needs `to:` at all.
RECIPIENT_NEEDS = {
    "twilio_sms": (("phone",), True),
    "twilio_voice": (("phone",), True),
    "email": (("email",), False),
    "dingtalk": (("dingtalk_mobile", "phone", "dingtalk_userid"), False),
    "wecom": (("wecom_userid", "wecom_mobile", "phone"), False),
    "feishu": (("feishu_user_id", "feishu_open_id"), False),
    "telegram": (("telegram_chat_id",), False),
    "slack": (("slack_user_id",), False),
    "discord": (("discord_user_id",), False),
    "webhook": ((), False),
}
ROUTE_FIELDS = (
    "name",
    "match",
    "match_re",
    "matchers",
    "escalation",
    "native",
    "quiet_hours",
    "active_hours",
    "continue",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
)
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
# A policy's settings that take one of a few values, the default first.
POLICY_CHOICES = {
    "on_resolve": ("notify_previous", "notify_all", "none"),
    "on_failure": ("next_step", "wait"),  # when a page fails for good: take the next step at once, or keep to the clock
}


def _got(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


class FileReader:
    """Typed accessors over one file's plain data; every problem goes to the shared diagnostics."""

    def __init__(self, file: str, diags: Diagnostics):
        self.file = file
        self.diags = diags

    def error(self, path: KeyPath, message: str, **kw: object) -> None:
        self.diags.error(self.file, path, message, **kw)  # type: ignore[arg-type]

    def mapping(
        self,
        value: object,
        path: KeyPath,
        allowed: Iterable[str] = (),
        required: Iterable[str] = (),
        what: str = "field",
        suggestions: Iterable[str] = (),
    ) -> dict | None:
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {_got(value)}")
            return None
        allowed = tuple(allowed)
        if allowed:
            for key in value:
                if key not in allowed:
                    hint = _suggest(str(key), (*allowed, *suggestions)) or f"; expected one of: {', '.join(allowed)}"
                    self.error((*path, key), f'unknown {what} "{key}"{hint}', at_key=True)
        for key in required:
            if value.get(key) is None:
                self.error((*path, key), "required field is missing")
        return value

    def string(self, value: object, path: KeyPath, pattern: re.Pattern | None = None, what: str = "") -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(path, f"expected a string, got {_got(value)}")
            return None
        text = value if isinstance(value, str) else promql_number(value)
        if pattern is not None and not pattern.match(text):
            self.error(path, f'"{text}" is not a valid {what}')
            return None
        return text

    def number(self, value: object, path: KeyPath) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(path, f"expected a number, got {_got(value)}")
            return None
        return float(value)

    def boolean(self, value: object, path: KeyPath) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {_got(value)}")
            return None
        return value

    def duration(self, value: object, path: KeyPath) -> int | None:
        if value == 0 and not isinstance(value, bool):
            return 0
        ms = parse_duration(value) if isinstance(value, str) else None
        if ms is None:
            self.error(path, f"expected a duration such as 30s, 5m or 1h30m, got {_got(value)}")
        return ms

    def string_list(self, value: object, path: KeyPath, pattern: re.Pattern | None = None, what: str = "") -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.error(path, f"expected a list of strings, got {_got(value)}")
            return []
        items = [self.string(item, (*path, i), pattern, what) for i, item in enumerate(value)]
        return [item for item in items if item is not None]

    def strings(self, value: object, path: KeyPath) -> dict[str, str]:
        """A mapping of any names to strings (annotations)."""
        out = {}
        for key, item in (self.mapping(value, path) or {}).items():
            text = self.string(item, (*path, key))
            if text is not None:
                out[str(key)] = text
        return out

    def labels(self, value: object, path: KeyPath) -> dict[str, str]:
        data = self.mapping(value, path)
        if data is None:
            return {}
        out = {}
        for key, item in data.items():
            if not LABEL_NAME.match(str(key)):
                self.error((*path, key), f'"{key}" is not a valid label name', at_key=True)
                continue
            text = self.string(item, (*path, key))
            if text is not None:
                out[str(key)] = text
        return out

    def promql(self, value: object, path: KeyPath) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        problem = promql.syntax_error(text)
        if problem:
            self.error(path, f"invalid PromQL: {problem}")
            return None
        return text.strip()


class CatalogReader:
    """Builds the model from all files; names are resolved once every file has been read."""

    def __init__(self, root_name: str):
        self.root_name = root_name
        self.diags = Diagnostics()
        self.defaults = Defaults()
        self.receiver = Receiver()
        self.contacts: dict[str, dict[str, str]] = {}
        self.channels: dict[str, dict[str, object]] = {}
        self.policies: dict[str, Policy] = {}
        self.routes: list[Route] = []
        self.quiet_hours: dict[str, list[dict]] = {}
        self.groups: list[Group] = []
        self.self_monitoring = SelfMonitoring()
        self.defined: dict[tuple[str, str], tuple[str, KeyPath]] = {}  # (kind, name) → where
        self.references: list[tuple[str, str, str, KeyPath]] = []  # (kind, name, file, path)

    # -- names -------------------------------------------------------------------------------
    def define(self, reader: FileReader, kind: str, name: str, path: KeyPath, at_key: bool = False) -> bool:
        """Record a name; a second definition is an error naming the first (at the key for mapping keys)."""
        first = self.defined.get((kind, name))
        if first is not None:
            reader.error(path, f'duplicate {kind} name "{name}"', related=first, at_key=at_key)
            return False
        self.defined[(kind, name)] = (reader.file, path)
        return True

    def refer(self, reader: FileReader, kind: str, name: str, path: KeyPath) -> None:
        self.references.append((kind, name, reader.file, path))

    def check_references(self) -> None:
        for kind, name, file, path in self.references:
            if (kind, name) in self.defined:
                continue
            names = [n for k, n in self.defined if k == kind]
            hint = _suggest(name, names)
            self.diags.error(file, path, f'undefined {kind} "{name}"{hint}')
        for kind, name in self.defined:
            if kind == "receiver" and (name in self.policies or name == "unrouted"):
                file, path = self.defined[(kind, name)]
                what = "an escalation policy's receiver" if name in self.policies else "the receiver of unrouted alerts"
                self.diags.error(file, path, f'"{name}" is already the name of {what}; choose another name')

    # -- files -------------------------------------------------------------------------------
    def read_defaults(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.mapping(
            data,
            path,
            (
                "labels",
                "for",
                "interval",
                "severities",
                "group_by",
                "group_wait",
                "group_interval",
                "repeat_interval",
                "inhibit_lower_severities",
                "escalation",
                "sla",
            ),
        )
        if d is None:
            return
        out = self.defaults
        if "severities" in d:
            severities = r.string_list(d["severities"], (*path, "severities"), LABEL_NAME, "severity")
            if not severities:
                r.error((*path, "severities"), "needs at least one severity")
            elif len(set(severities)) != len(severities):
                r.error((*path, "severities"), "a severity is listed twice")
            else:
                out.severities = severities
        if "labels" in d:
            out.labels = r.labels(d["labels"], (*path, "labels"))
        for key, attr in (("for", "for_ms"), ("interval", "interval_ms")):
            if key in d:
                ms = r.duration(d[key], (*path, key))
                if ms is not None:
                    setattr(out, attr, ms)
        if "group_by" in d:
            out.group_by = r.string_list(d["group_by"], (*path, "group_by"), LABEL_NAME, "label name")
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in d:
                setattr(out, key, self.per_severity_durations(r, d[key], (*path, key)))
        if "inhibit_lower_severities" in d:
            flag = r.boolean(d["inhibit_lower_severities"], (*path, "inhibit_lower_severities"))
            out.inhibit_lower_severities = bool(flag) if flag is not None else True
        if "escalation" in d:
            name = r.string(d["escalation"], (*path, "escalation"))
            if name:
                out.escalation = name
                self.refer(r, "escalation policy", name, (*path, "escalation"))
        if "sla" in d:
            out.sla = self.read_sla(r, d["sla"], (*path, "sla"))

    def read_sla(self, r: FileReader, data: object, path: KeyPath) -> dict[str, tuple[int, int]]:
        """Per-severity targets the history pages measure MTTA and MTTR against: `{critical: {ack: 5m, resolve:
        30m}}`. The severities not listed have none (their alerts do not page)."""
        out = {}
        for severity, value in (r.mapping(data, path) or {}).items():
            spath = (*path, severity)
            if not self.severity(r, severity, spath, at_key=True):
                continue
            d = r.mapping(value, spath, ("ack", "resolve"), ("ack", "resolve"))
            if d is None or d.get("ack") is None or d.get("resolve") is None:
                continue
            targets = []
            for key in ("ack", "resolve"):
                ms = r.duration(d[key], (*spath, key))
                if ms is not None and ms < 1000:
                    r.error((*spath, key), "a target must be 1s or longer")
                    ms = None
                targets.append(ms)
            ack, resolve = targets
            if ack and resolve:
                out[severity] = (ack, resolve)
        return out

    def per_severity_durations(self, r: FileReader, value: object, path: KeyPath) -> dict[str, int]:
        if not isinstance(value, dict):
            ms = r.duration(value, path)
            return {"*": ms} if ms is not None else {}
        out = {}
        for severity, item in value.items():
            if self.severity(r, severity, (*path, severity), at_key=True):
                ms = r.duration(item, (*path, severity))
                if ms is not None:
                    out[severity] = ms
        return out

    def severity(self, r: FileReader, value: object, path: KeyPath, at_key: bool = False) -> str | None:
        if not isinstance(value, str):
            r.error(path, f"expected a severity name, got {_got(value)}", at_key=at_key)
            return None
        if value not in self.defaults.severities:
            hint = _suggest(value, self.defaults.severities) or (
                f"; known severities: {', '.join(self.defaults.severities)}"
            )
            r.error(path, f'unknown severity "{value}"{hint}', at_key=at_key)
            return None
        return value

    def read_receiver(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.mapping(data, path, ("url", "bearer_token_file", "external_url", "ack_link_ttl"), ("url",))
        if d is None:
            return
        url = r.string(d.get("url"), (*path, "url")) if "url" in d else None
        if url:
            self.receiver.url = url.rstrip("/")
        if "bearer_token_file" in d:
            self.receiver.bearer_token_file = r.string(d["bearer_token_file"], (*path, "bearer_token_file"))
        if "external_url" in d:
            external = r.string(d["external_url"], (*path, "external_url"))
            self.receiver.external_url = external.rstrip("/") if external else None
        if "ack_link_ttl" in d:
            ttl = r.duration(d["ack_link_ttl"], (*path, "ack_link_ttl"))
            if ttl is not None and not ACK_LINK_TTL_MS[0] <= ttl <= ACK_LINK_TTL_MS[1]:
                r.error((*path, "ack_link_ttl"), f"expected a duration from 1m to 1y, got {_got(d['ack_link_ttl'])}")
            elif ttl is not None:
                self.receiver.ack_link_ttl_ms = ttl

    def read_self_monitoring(self, r: FileReader, data: object, path: KeyPath) -> None:
        """The receiver's own alerts: `escalation` (a policy) or `native` (an Alertmanager receiver, which still
        delivers when the receiver is down), `job`, `channel_failing_for`, `enabled`."""
        d = r.mapping(data, path, SELF_MONITORING_FIELDS)
        if d is None:
            return
        out = self.self_monitoring
        if "enabled" in d:
            flag = r.boolean(d["enabled"], (*path, "enabled"))
            out.enabled = flag if flag is not None else True
        if "job" in d:
            job = r.string(d["job"], (*path, "job"))
            if job == "":
                r.error((*path, "job"), "expected the receiver's scrape job name, got an empty string")
            elif job is not None:
                out.job = job
        if "channel_failing_for" in d:
            ms = r.duration(d["channel_failing_for"], (*path, "channel_failing_for"))
            if ms is not None:
                out.channel_failing_for_ms = ms
        if "escalation" in d:
            out.escalation = r.string(d["escalation"], (*path, "escalation"))
            if out.escalation:
                self.refer(r, "escalation policy", out.escalation, (*path, "escalation"))
        if "native" in d:
            out.native = r.mapping(d["native"], (*path, "native"))
            if out.native is not None:
                check_native_urls(r, out.native, (*path, "native"))
                self.define(r, "receiver", SELF_MONITORING_RECEIVER, (*path, "native"))
        if "escalation" in d and "native" in d:
            r.error(path, "give either escalation (a policy) or native (an Alertmanager receiver), not both")

    def check_self_monitoring(self) -> None:
        """Its rule group takes the files of a catalog group of the same name; unless it names a policy or a native
        receiver, it pages the catalog's first policy (none without policies: its alerts take the catalog routes)."""
        out = self.self_monitoring
        if not out.enabled:
            return
        clash = self.defined.get(("group", SELF_MONITORING_GROUP))
        if clash is not None:
            self.diags.error(
                *clash,
                f'"{SELF_MONITORING_GROUP}" is the rule group of the receiver\'s own alerts (self_monitoring); '
                "choose another name, or set self_monitoring.enabled: false",
            )
        if out.escalation is None and out.native is None:
            out.escalation = next(iter(self.policies), None)

    def read_contacts(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.mapping(data, path)
        for name, value in (d or {}).items():
            cpath = (*path, name)
            if not self.define(r, "contact", str(name), cpath, at_key=True):
                continue
            fields = r.mapping(value, cpath, CONTACT_FIELDS)
            if fields is None:
                continue
            contact = {}
            for key, item in fields.items():
                if key in CONTACT_FIELDS:
                    text = r.string(item, (*cpath, key))
                    if text is not None:
                        contact[key] = text
            if "phone" in contact and not PHONE.match(contact["phone"]):
                r.error(
                    (*cpath, "phone"),
                    f'"{contact["phone"]}" is not an E.164 phone number such as '
                    '"+8613800000001" (quote it: YAML reads an unquoted +86... as a number)',
                )
            if "email" in contact and "@" not in contact["email"]:
                r.error((*cpath, "email"), f'"{contact["email"]}" is not an email address')
            self.contacts[str(name)] = contact

    def read_channels(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.mapping(data, path)
        for name, value in (d or {}).items():
            cpath = (*path, name)
            if not self.define(r, "channel", str(name), cpath, at_key=True):
                continue
            if not isinstance(value, dict):
                r.error(cpath, f"expected a mapping, got {_got(value)}")
                continue
            ctype = value.get("type")
            if ctype not in CHANNEL_FIELDS:
                hint = _suggest(str(ctype), CHANNEL_FIELDS) if isinstance(ctype, str) else ""
                message = (
                    "required field is missing"
                    if ctype is None
                    else f'unknown channel type "{ctype}"{hint or "; expected one of: " + ", ".join(CHANNEL_FIELDS)}'
                )
                r.error((*cpath, "type"), message)
                continue
            required, optional = CHANNEL_FIELDS[ctype]
            fields = r.mapping(value, cpath, (*CHANNEL_COMMON, *required, *optional), required)
            if fields is None:
                continue
            self.channels[str(name)] = self.channel_settings(r, fields, cpath, ctype)

    def channel_settings(self, r: FileReader, fields: dict, path: KeyPath, ctype: str) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in fields.items():
            fpath = (*path, key)
            if key in ("starttls", "tls", "tls_verify", "at_all", "send_resolved"):
                flag = r.boolean(value, fpath)
                if flag is not None:
                    out[key] = flag
            elif key == "max_in_flight":
                count = r.number(value, fpath)
                if count is not None and (count != int(count) or not 1 <= count <= 100):
                    r.error(fpath, f"expected a whole number of messages from 1 to 100, got {_got(value)}")
                elif count is not None:
                    out[key] = int(count)
            elif key == "port":
                port = r.number(value, fpath)
                if port is not None and (port != int(port) or not 0 < port < 65536):
                    r.error(fpath, f"expected a TCP port (1-65535), got {_got(value)}")
                elif port is not None:
                    out[key] = int(port)
            elif key == "timeout":
                ms = r.duration(value, fpath)
                if ms is not None:
                    out[key] = value
            elif key == "rate_limit":
                text = r.string(value, fpath)
                if text is not None and not RATE_LIMIT.match(text):
                    r.error(fpath, f'expected a rate such as 20/min, 1/s or 100/hour, got "{text}"')
                elif text is not None:
                    out[key] = text.replace(" ", "")
            elif key in ("keywords", "to"):
                out[key] = r.string_list(value, fpath)
            elif key == "headers":
                headers = r.mapping(value, fpath)
                out[key] = {str(k): r.string(v, (*fpath, k)) for k, v in (headers or {}).items()}
            elif key in SETTING_CHOICES:
                text = r.string(value, fpath)
                if text is not None and text not in SETTING_CHOICES[key]:
                    r.error(fpath, f'expected one of {", ".join(SETTING_CHOICES[key])}, got "{text}"')
                elif text is not None:
                    out[key] = text
            else:
                text = r.string(value, fpath)
                if text is not None:
                    out[key] = text
                    if key in SECRET_FIELDS and "${" not in text:
                        r.error(
                            fpath,
                            "a literal secret; write it as ${ENV_VAR} (the receiver reads it from its "
                            "environment) so it stays out of generated files",
                        )
        if ctype == "email" and "port" not in out:
            out["port"] = 587
        return out

    def read_policies(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.mapping(data, path)
        for name, value in (d or {}).items():
            ppath = (*path, name)
            if not self.define(r, "escalation policy", str(name), ppath, at_key=True):
                continue
            fields = r.mapping(value, ppath, ("steps", "repeat", *POLICY_CHOICES), ("steps",))
            if fields is None:
                continue
            steps = self.read_steps(r, fields.get("steps"), (*ppath, "steps"))
            every, times = None, 0
            if "repeat" in fields:
                rpath = (*ppath, "repeat")
                repeat = r.mapping(fields["repeat"], rpath, ("every", "times"), ("every",))
                if repeat is not None:
                    every = r.duration(repeat.get("every"), (*rpath, "every")) if "every" in repeat else None
                    if every == 0:
                        r.error((*rpath, "every"), "must be longer than 0s")
                    times_value = repeat.get("times", 1)
                    if not isinstance(times_value, int) or isinstance(times_value, bool) or times_value < 0:
                        r.error((*rpath, "times"), f"expected a whole number ≥ 0, got {_got(times_value)}")
                    else:
                        times = times_value
            chosen = {}
            for key, choices in POLICY_CHOICES.items():
                chosen[key] = fields.get(key, choices[0])
                if chosen[key] not in choices:
                    hint = _suggest(str(chosen[key]), choices) or f"; expected one of: {', '.join(choices)}"
                    r.error((*ppath, key), f"unknown value {_got(chosen[key])}{hint}")
            self.policies[str(name)] = Policy(
                str(name),
                Origin(r.file, ppath),
                steps,
                every,
                times,
                str(chosen["on_resolve"]),
                str(chosen["on_failure"]),
            )

    def read_steps(self, r: FileReader, value: object, path: KeyPath) -> list[Step]:
        if not isinstance(value, list) or not value:
            r.error(path, f"expected a non-empty list of steps, got {_got(value)}")
            return []
        steps: list[Step] = []
        previous = -1
        for i, item in enumerate(value):
            spath = (*path, i)
            step = r.mapping(item, spath, ("after", "notify"), ("notify",))
            if step is None:
                continue
            after = r.duration(step["after"], (*spath, "after")) if "after" in step else 0
            if after is not None and after < previous:
                r.error((*spath, "after"), "steps must be in order: this one comes due before the one above")
            previous = after if after is not None else previous
            targets = self.read_notify(r, step.get("notify"), (*spath, "notify"))
            steps.append(Step(after or 0, targets))
        return steps

    def read_notify(self, r: FileReader, value: object, path: KeyPath) -> list[NotifyTarget]:
        if isinstance(value, str | dict):
            value = [value]
        if not isinstance(value, list) or not value:
            r.error(path, f"expected a list of channels, got {_got(value)}")
            return []
        targets = []
        for i, item in enumerate(value):
            ipath = (*path, i)
            if isinstance(item, str):
                self.refer(r, "channel", item, ipath)
                targets.append(NotifyTarget(item, []))
                continue
            target = r.mapping(item, ipath, ("channel", "to"), ("channel",))
            if target is None or target.get("channel") is None:
                continue
            channel = r.string(target["channel"], (*ipath, "channel"))
            if channel is None:
                continue
            self.refer(r, "channel", channel, (*ipath, "channel"))
            to = r.string_list(target.get("to", []), (*ipath, "to"))
            for j, contact in enumerate(to):
                self.refer(r, "contact", contact, (*ipath, "to", j))
            targets.append(NotifyTarget(channel, to))
        return targets

    def read_routes(self, r: FileReader, data: object, path: KeyPath) -> None:
        if not isinstance(data, list):
            r.error(path, f"expected a list of routes, got {_got(data)}")
            return
        for i, item in enumerate(data):
            rpath = (*path, i)
            d = r.mapping(item, rpath, ROUTE_FIELDS)
            if d is None:
                continue
            matchers: list[tuple[str, str, str]] = []
            for key, op in (("match", "="), ("match_re", "=~")):
                for label, val in r.labels(d[key], (*rpath, key)).items() if key in d else ():
                    if op == "=~" and not _valid_regex(val):
                        r.error((*rpath, key, label), f'"{val}" is not a valid regular expression')
                    matchers.append((label, op, val))
            for j, text in enumerate(r.string_list(d.get("matchers", []), (*rpath, "matchers"))):
                parsed = _parse_matcher(text)
                if parsed is None:
                    r.error(
                        (*rpath, "matchers", j),
                        f'"{text}" is not a matcher such as severity="critical" or team=~"db|infra"',
                    )
                else:
                    matchers.append(parsed)
            escalation = r.string(d["escalation"], (*rpath, "escalation")) if "escalation" in d else None
            if escalation:
                self.refer(r, "escalation policy", escalation, (*rpath, "escalation"))
            native = r.mapping(d["native"], (*rpath, "native")) if "native" in d else None
            if native is not None:
                check_native_urls(r, native, (*rpath, "native"))
            if (escalation is None) == (native is None):
                r.error(
                    rpath, "a route needs exactly one of escalation (a policy) or native (an Alertmanager receiver)"
                )
            name = r.string(d["name"], (*rpath, "name")) if "name" in d else None
            if name and native is not None:
                self.define(r, "receiver", name, (*rpath, "name"))
            hours = {}
            for key in ("quiet_hours", "active_hours"):
                hours[key] = r.string_list(d.get(key, []), (*rpath, key))
                for j, interval in enumerate(hours[key]):
                    self.refer(r, "quiet_hours window", interval, (*rpath, key, j))
            overrides: dict[str, object] = {}
            if "group_by" in d:
                overrides["group_by"] = r.string_list(d["group_by"], (*rpath, "group_by"))
            for key in ("group_wait", "group_interval", "repeat_interval"):
                if key in d and r.duration(d[key], (*rpath, key)) is not None:
                    overrides[key] = d[key]
            cont = r.boolean(d["continue"], (*rpath, "continue")) if "continue" in d else False
            self.routes.append(
                Route(
                    name,
                    matchers,
                    escalation,
                    native,
                    hours["quiet_hours"],
                    hours["active_hours"],
                    bool(cont),
                    overrides,
                )
            )

    def read_quiet_hours(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.mapping(data, path)
        for name, value in (d or {}).items():
            qpath = (*path, name)
            if not self.define(r, "quiet_hours window", str(name), qpath, at_key=True):
                continue
            if isinstance(value, dict):
                value = [value]
            if not isinstance(value, list) or not value:
                r.error(qpath, f"expected a list of time intervals, got {_got(value)}")
                continue
            self.quiet_hours[str(name)] = [
                spec for i, item in enumerate(value) if (spec := self.read_interval(r, item, (*qpath, i))) is not None
            ]

    def read_interval(self, r: FileReader, item: object, path: KeyPath) -> dict | None:
        d = r.mapping(item, path, ("times", "weekdays", "days_of_month", "months", "years", "location"))
        if d is None:
            return None
        out: dict[str, object] = {}
        if "times" in d:
            times = d["times"] if isinstance(d["times"], list) else [d["times"]]
            out["times"] = []
            for i, t in enumerate(times):
                tpath = (*path, "times", i)
                span = r.mapping(t, tpath, ("start_time", "end_time"), ("start_time", "end_time"))
                if span is None or None in (span.get("start_time"), span.get("end_time")):
                    continue
                start = r.string(span["start_time"], (*tpath, "start_time"), TIME_OF_DAY, "time (HH:MM)")
                end = r.string(span["end_time"], (*tpath, "end_time"), TIME_OF_DAY, "time (HH:MM)")
                if start and end:
                    if start == end:
                        r.error(tpath, "start_time and end_time are equal: the window would be empty")
                    out["times"].append({"start_time": start, "end_time": end})
        for key, names in (("weekdays", WEEKDAYS), ("months", MONTHS)):
            if key in d:
                out[key] = r.string_list(d[key], (*path, key))
                for i, spec in enumerate(out[key]):
                    for part in str(spec).split(":"):
                        if part.lower() not in names and not (key == "months" and part.isdigit()):
                            r.error((*path, key, i), f'"{part}" is not a {key[:-1]}{_suggest(part, names)}')
        for key in ("days_of_month", "years"):
            if key in d:
                out[key] = r.string_list(d[key], (*path, key))
        if "location" in d:
            location = r.string(d["location"], (*path, "location"))
            if location:
                try:
                    zoneinfo.ZoneInfo(location)
                    out["location"] = location
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    r.error(
                        (*path, "location"), f'unknown time zone "{location}" (use an IANA name such as Asia/Shanghai)'
                    )
        return out

    def read_groups(self, r: FileReader, data: object, path: KeyPath) -> None:
        if not isinstance(data, list):
            r.error(path, f"expected a list of groups, got {_got(data)}")
            return
        for i, item in enumerate(data):
            gpath = (*path, i)
            d = r.mapping(
                item, gpath, ("name", "labels", "escalation", "interval", "alerts", "slos", "inhibits"), ("name",)
            )
            if d is None or d.get("name") is None:
                continue
            name = r.string(
                d["name"],
                (*gpath, "name"),
                FILE_SAFE_NAME,
                "group name (letters, digits, '.', '_', '-'; it names a file)",
            )
            if name is None or not self.define(r, "group", name, (*gpath, "name")):
                continue
            labels = r.labels(d["labels"], (*gpath, "labels")) if "labels" in d else {}
            escalation = r.string(d["escalation"], (*gpath, "escalation")) if "escalation" in d else None
            if escalation:
                self.refer(r, "escalation policy", escalation, (*gpath, "escalation"))
            interval = self.defaults.interval_ms
            if "interval" in d:
                interval = r.duration(d["interval"], (*gpath, "interval")) or interval
            group = Group(name, Origin(r.file, gpath), interval, labels, escalation, [], [], [])
            for j, alert in enumerate(self.list_of(r, d, "alerts", gpath)):
                parsed = self.read_alert(r, alert, (*gpath, "alerts", j), group)
                if parsed is not None:
                    group.alerts.append(parsed)
            for j, slo in enumerate(self.list_of(r, d, "slos", gpath)):
                parsed_slo = self.read_slo(r, slo, (*gpath, "slos", j), group)
                if parsed_slo is not None:
                    group.slos.append(parsed_slo)
            for j, inhibit in enumerate(self.list_of(r, d, "inhibits", gpath)):
                parsed_inhibit = self.read_inhibit(r, inhibit, (*gpath, "inhibits", j))
                if parsed_inhibit is not None:
                    group.inhibits.append(parsed_inhibit)
            self.groups.append(group)

    @staticmethod
    def list_of(r: FileReader, d: dict, key: str, path: KeyPath) -> list:
        value = d.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            r.error((*path, key), f"expected a list, got {_got(value)}")
            return []
        return value

    def read_levels(self, r: FileReader, d: dict, path: KeyPath, key: str, severity: str | None) -> list[Level]:
        value = d[key]
        if isinstance(value, dict):
            if severity is not None:
                r.error(
                    (*path, "severity"),
                    f"applies to a single {key} value; with a map of levels, the map names the severities",
                )
            levels = []
            for sev, level in value.items():
                if self.severity(r, sev, (*path, key, sev), at_key=True):
                    number = r.number(level, (*path, key, sev))
                    if number is not None:
                        levels.append(Level(sev, number))
            if not value:
                r.error((*path, key), "needs at least one severity level")
            return self.by_rank(levels)
        number = r.number(value, (*path, key))
        if number is None:
            return []
        return [Level(severity or self.default_severity(), number)]

    def by_rank(self, levels: list[Level]) -> list[Level]:
        rank = {s: i for i, s in enumerate(self.defaults.severities)}
        return sorted(levels, key=lambda level: rank[level.severity])

    def default_severity(self) -> str:
        severities = self.defaults.severities
        return "warning" if "warning" in severities else severities[0]

    def read_alert(self, r: FileReader, item: object, path: KeyPath, group: Group) -> Alert | None:
        if not isinstance(item, dict):
            r.error(path, f"expected a mapping, got {_got(item)}")
            return None
        kind = item.get("kind")
        if kind is None:
            kind = "threshold" if ("above" in item or "below" in item) else "expr"
        if kind not in KINDS:
            r.error(
                (*path, "kind"),
                f'unknown kind "{kind}"{_suggest(str(kind), KINDS)}'
                if isinstance(kind, str)
                else f"expected a kind name, got {_got(kind)}",
            )
            return None
        allowed = (*ALERT_COMMON, *KIND_FIELDS[kind])
        known = {}
        for key, value in item.items():
            if key not in allowed and key in EVERY_KIND_FIELD:
                r.error((*path, key), f'field "{key}" does not apply to kind {kind}', at_key=True)
            else:
                known[key] = value
        d = r.mapping(known, path, allowed, ("alert", *KIND_REQUIRED[kind]), suggestions=EVERY_KIND_FIELD)
        if d is None or d.get("alert") is None:
            return None
        name = r.string(
            d["alert"],
            (*path, "alert"),
            METRIC_NAME,
            "alert name (letters, digits, '_' and ':', not starting with a digit)",
        )
        if name is None or not self.define(r, "alert", name, (*path, "alert")):
            return None
        severity = self.severity(r, d["severity"], (*path, "severity")) if "severity" in d else None
        default_for = 0 if kind == "composite" else self.defaults.for_ms
        for_ms = r.duration(d["for"], (*path, "for")) if "for" in d else default_for
        labels = {**self.defaults.labels, **group.labels}
        if "labels" in d:
            labels.update(r.labels(d["labels"], (*path, "labels")))
        annotations = {}
        for key in ("summary", "description", "runbook_url", "dashboard_url"):
            if key in d:
                text = r.string(d[key], (*path, key))
                if text is not None:
                    annotations[key] = text
        if "annotations" in d:
            annotations.update(r.strings(d["annotations"], (*path, "annotations")))
        alert = Alert(name, kind, group.name, [], None, for_ms or 0, labels, annotations)
        if "escalation" in d:
            alert.escalation = r.string(d["escalation"], (*path, "escalation"))
            if alert.escalation:
                self.refer(r, "escalation policy", alert.escalation, (*path, "escalation"))
        self.read_kind(r, d, path, alert, severity)
        if "escalate" in d:
            alert.escalate = self.read_escalate(r, d["escalate"], (*path, "escalate"), alert)
        return alert

    def read_kind(self, r: FileReader, d: dict, path: KeyPath, alert: Alert, severity: str | None) -> None:
        kind = alert.kind
        for key in ("expr", "errors", "total"):
            if key in d:
                setattr(alert, key, r.promql(d[key], (*path, key)))
        if kind == "absent" and alert.expr and not promql.is_selector(alert.expr):
            r.error((*path, "expr"), 'absent needs a series selector such as up{job="node"}')
        for key, attr in (
            ("lookback", "lookback_ms"),
            ("horizon", "horizon_ms"),
            ("baseline", "baseline_ms"),
            ("within", "within_ms"),
        ):
            if key in d:
                ms = r.duration(d[key], (*path, key))
                if ms == 0:
                    r.error((*path, key), "must be longer than 0s")
                setattr(alert, attr, ms)
        if kind in LEVELED_KINDS:
            keys = ("zscore",) if kind == "anomaly" else tuple(k for k in ("above", "below") if k in d)
            if kind != "anomaly" and len(keys) != 1:
                r.error(
                    path,
                    "give exactly one of above or below"
                    if keys
                    else "needs a level: above or below (a number, or a map of severity → number)",
                )
                return
            alert.comparison = "<" if keys[0] == "below" else ">"
            alert.levels = self.read_levels(r, d, path, keys[0], severity)
            if kind == "anomaly":
                for level in alert.levels:
                    if level.value is not None and level.value <= 0:
                        r.error((*path, "zscore"), "a z-score must be greater than 0")
            return
        alert.levels = [Level(severity or self.default_severity(), None)]
        if kind == "composite":
            modes = [k for k in ("all", "any") if k in d]
            if len(modes) != 1:
                r.error(path, "a composite needs exactly one of all: or any: (a list of alert names)")
                return
            alert.all_members = modes[0] == "all"
            alert.members = r.string_list(d[modes[0]], (*path, modes[0]))
            if not alert.members:
                r.error((*path, modes[0]), "needs at least one alert name")
            for i, member in enumerate(alert.members):
                if member == alert.name:
                    r.error((*path, modes[0], i), "a composite cannot include itself")
                else:
                    self.refer(r, "alert", member, (*path, modes[0], i))
            if "on" in d:
                alert.on = r.string_list(d["on"], (*path, "on"), LABEL_NAME, "label name")

    def read_escalate(self, r: FileReader, value: object, path: KeyPath, alert: Alert) -> Escalate | None:
        d = r.mapping(value, path, ("to", "after", "from"), ("to", "after"))
        if d is None or None in (d.get("to"), d.get("after")) or not alert.levels:
            return None
        to = self.severity(r, d["to"], (*path, "to"))
        source = self.severity(r, d["from"], (*path, "from")) if "from" in d else alert.levels[0].severity
        after = r.duration(d["after"], (*path, "after"))
        if None in (to, source, after):
            return None
        rank = self.defaults.severities.index
        if source not in [level.severity for level in alert.levels]:
            r.error((*path, "from"), f'the alert has no "{source}" level to escalate from')
            return None
        if rank(to) <= rank(source):  # type: ignore[arg-type]
            r.error((*path, "to"), f'must be a higher severity than "{source}"')
            return None
        return Escalate(source, to, after)  # type: ignore[arg-type]

    def read_slo(self, r: FileReader, item: object, path: KeyPath, group: Group) -> SLO | None:
        d = r.mapping(
            item,
            path,
            (
                "name",
                "service",
                "objective",
                "window",
                "sli",
                "group_by",
                "min_events",
                "labels",
                "alerting",
                "description",
            ),
            ("name", "objective", "sli"),
        )
        if d is None or d.get("name") is None:
            return None
        name = r.string(d["name"], (*path, "name"))
        if name is None or not self.define(r, "SLO", name, (*path, "name")):
            return None
        service = r.string(d["service"], (*path, "service")) if "service" in d else group.name
        objective = r.number(d.get("objective"), (*path, "objective")) if "objective" in d else None
        if objective is not None and not 0 < objective <= 100:
            r.error((*path, "objective"), f"expected a percentage in (0, 100], got {go_float(objective)}")
        window = r.duration(d["window"], (*path, "window")) if "window" in d else 30 * 86_400_000
        if window is not None and window < 3_600_000:
            r.error((*path, "window"), "the compliance period must be at least 1h")
        errors = total = buckets = le = None
        sli_path = (*path, "sli")
        sli = r.mapping(d.get("sli"), sli_path, ("errors", "total", "latency")) if "sli" in d else None
        if sli is not None:
            if "latency" in sli:
                lat = r.mapping(sli["latency"], (*sli_path, "latency"), ("buckets", "le"), ("buckets", "le"))
                if lat and lat.get("buckets") is not None and lat.get("le") is not None:
                    buckets = r.promql(lat["buckets"], (*sli_path, "latency", "buckets"))
                    if buckets and not promql.is_selector(buckets):
                        r.error(
                            (*sli_path, "latency", "buckets"),
                            "expected a histogram bucket selector such "
                            'as http_request_duration_seconds_bucket{job="api"}',
                        )
                        buckets = None
                    le = r.string(lat["le"], (*sli_path, "latency", "le"))
                if "errors" in sli or "total" in sli:
                    r.error(sli_path, "give either latency or errors/total, not both")
            else:
                errors = self.sli_expr(r, sli, sli_path, "errors")
                total = self.sli_expr(r, sli, sli_path, "total")
        group_by = r.string_list(d.get("group_by", []), (*path, "group_by"), LABEL_NAME, "label name")
        min_events = r.number(d["min_events"], (*path, "min_events")) if "min_events" in d else 0.0
        labels = r.labels(d["labels"], (*path, "labels")) if "labels" in d else {}
        alerting = (
            r.mapping(
                d.get("alerting", {}), (*path, "alerting"), ("name", "for", "page", "ticket", "labels", "annotations")
            )
            or {}
        )
        apath = (*path, "alerting")
        alert_name = camel_case(name) + "ErrorBudgetBurn"
        if "name" in alerting:
            alert_name = r.string(alerting["name"], (*apath, "name"), METRIC_NAME, "alert name") or alert_name
        self.define(r, "alert", alert_name, (*apath, "name") if "name" in alerting else (*path, "name"))
        alert_for = r.duration(alerting["for"], (*apath, "for")) if "for" in alerting else 0
        extra_labels = r.labels(alerting["labels"], (*apath, "labels")) if "labels" in alerting else {}
        annotations = {}
        if "description" in d:  # the SLO's description, on its alerts unless alerting.annotations sets one
            description = r.string(d["description"], (*path, "description"))
            if description is not None:
                annotations["description"] = description
        if "annotations" in alerting:
            annotations.update(r.strings(alerting["annotations"], (*apath, "annotations")))
        page = self.read_tier(r, alerting, apath, "page", "critical")
        ticket = self.read_tier(r, alerting, apath, "ticket", "warning")
        if None in (objective, window) or (errors is None and buckets is None):
            return None
        return SLO(
            name,
            service or group.name,
            group.name,
            objective,
            window,  # type: ignore[arg-type]
            errors,
            total,
            buckets,
            le,
            group_by,
            min_events or 0.0,
            labels,
            alert_name,
            alert_for or 0,
            page,
            ticket,
            {**self.defaults.labels, **group.labels, **labels, **extra_labels},
            annotations,
        )

    def sli_expr(self, r: FileReader, sli: dict, path: KeyPath, key: str) -> str | None:
        if sli.get(key) is None:
            r.error((*path, key), "required field is missing")
            return None
        text = r.string(sli[key], (*path, key))
        if text is None:
            return None
        if not WINDOW_PLACEHOLDER.search(text):
            r.error(
                (*path, key),
                "must use {{window}} as the range of its rate(), e.g. rate(http_requests_total[{{window}}])",
            )
            return None
        problem = promql.syntax_error(WINDOW_PLACEHOLDER.sub("5m", text))
        if problem:
            r.error((*path, key), f"invalid PromQL: {problem}")
            return None
        return WINDOW_PLACEHOLDER.sub("{{window}}", text.strip())

    def read_tier(self, r: FileReader, alerting: dict, path: KeyPath, key: str, default: str) -> Tier | None:
        value = alerting.get(key, {})
        if value is False:
            return None
        tier = r.mapping(value, (*path, key), ("severity", "labels", "annotations")) if value is not None else {}
        if tier is None:
            return None
        severity = (
            default
            if default in self.defaults.severities
            else (self.defaults.severities[-1] if key == "page" else self.default_severity())
        )
        if "severity" in tier:
            severity = self.severity(r, tier["severity"], (*path, key, "severity")) or severity
        labels = r.labels(tier["labels"], (*path, key, "labels")) if "labels" in tier else {}
        annotations = r.strings(tier.get("annotations", {}), (*path, key, "annotations"))
        return Tier(severity, labels, annotations)

    def read_inhibit(self, r: FileReader, item: object, path: KeyPath) -> Inhibit | None:
        d = r.mapping(item, path, ("source", "targets", "equal"), ("source", "targets"))
        if d is None or None in (d.get("source"), d.get("targets")):
            return None
        source = r.string(d["source"], (*path, "source"))
        if source:
            self.refer(r, "alert", source, (*path, "source"))
        targets = r.string_list(d["targets"], (*path, "targets"))
        for i, target in enumerate(targets):
            self.refer(r, "alert", target, (*path, "targets", i))
            if target == source:
                r.error((*path, "targets", i), "an alert cannot inhibit itself")
        equal = r.string_list(d.get("equal", []), (*path, "equal"), LABEL_NAME, "label name")
        if source is None or not targets:
            return None
        return Inhibit(source, targets, equal)

    def check_recipients(self) -> None:
        """Each notified contact has what the channel needs to reach them (a phone for SMS, ...)."""
        for policy in self.policies.values():
            for s, step in enumerate(policy.steps):
                for t, target in enumerate(step.notify):
                    channel = self.channels.get(target.channel)
                    if channel is None:
                        continue
                    ctype = str(channel["type"])
                    needs, needs_to = RECIPIENT_NEEDS[ctype]
                    where = (*policy.origin.path, "steps", s, "notify", t)
                    if needs_to and not target.to:
                        self.diags.error(
                            policy.origin.file,
                            where,
                            f'channel "{target.channel}" ({ctype}) needs `to:` with the contacts to reach',
                        )
                    if ctype == "email" and not target.to and not channel.get("to"):
                        self.diags.error(
                            policy.origin.file,
                            where,
                            f'email channel "{target.channel}" has no `to:` here nor in its settings',
                        )
                    for name in target.to:
                        contact = self.contacts.get(name)
                        if contact is not None and needs and not any(k in contact for k in needs):
                            self.diags.error(
                                policy.origin.file,
                                (*where, "to"),
                                f'contact "{name}" has no '
                                f"{' or '.join(needs)}, which channel {target.channel} ({ctype}) "
                                "needs",
                            )

    def catalog(self, files: list[str]) -> Catalog:
        return Catalog(
            self.root_name,
            files,
            self.defaults,
            self.receiver,
            self.contacts,
            self.channels,
            self.policies,
            self.routes,
            self.quiet_hours,
            self.groups,
            self.self_monitoring,
        )


URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")


def check_native_urls(r: FileReader, node: object, path: KeyPath) -> None:
    """URL settings of a native receiver, which Alertmanager takes as they are (it expands no ${VAR})."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, dict | list):
            check_native_urls(r, value, (*path, key))
        elif isinstance(key, str) and key.lower().endswith("url") and isinstance(value, str) and not URL.match(value):
            hint = (
                " (Alertmanager does not expand ${VAR}; use its *_file setting for a secret URL)"
                if "${" in value
                else " (it needs a scheme such as https://)"
            )
            r.error((*path, key), f'"{value}" is not a URL{hint}')


def camel_case(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _valid_regex(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$')


def _parse_matcher(text: str) -> tuple[str, str, str] | None:
    match = _MATCHER.match(text)
    if not match:
        return None
    label, op, quoted, bare = match.groups()
    value = bytes(quoted, "utf-8").decode("unicode_escape") if quoted is not None else bare
    if op in ("=~", "!~") and not _valid_regex(value):
        return None
    return label, op, value


def apply_merge_keys(node: object) -> object:
    """YAML merge keys (`<<: *base`), which yaml-rs keeps as a plain key: merged as ruamel merges them."""
    if isinstance(node, list):
        return [apply_merge_keys(item) for item in node]
    if not isinstance(node, dict):
        return node
    merged: dict = {}
    bases = node.get("<<")
    for base in bases if isinstance(bases, list) else [bases] if isinstance(bases, dict) else []:
        for key, value in apply_merge_keys(base).items():  # type: ignore[union-attr]
            merged.setdefault(key, value)
    own = {key: apply_merge_keys(value) for key, value in node.items() if key != "<<" or bases is None}
    return {**merged, **own} if merged else own


def read_once(
    documents: list[tuple[FileReader, dict]], key: str, read: Callable[[FileReader, object, KeyPath], None]
) -> None:
    """A top-level key one file only may set: a second occurrence is an error naming the first."""
    first: tuple[str, KeyPath] | None = None
    for r, data in documents:
        if key in data:
            if first is not None:
                r.error((key,), f"{key} may be set in one file only", at_key=True, related=first)
                continue
            first = (r.file, (key,))
            read(r, data[key], (key,))


def catalog_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_catalog(root: Path) -> Catalog:
    """Read and validate every file under `root`; raise CatalogError with all problems found."""
    root_name = root.resolve().name
    if not root.is_dir():
        raise CatalogError([Diagnostic(root_name, (), "no such catalog directory", line=0)])
    paths = catalog_files(root)
    if not paths:
        raise CatalogError([Diagnostic(root_name, (), "no catalog files (*.yaml, *.yml) in this directory")])
    reader = CatalogReader(root_name)
    documents: list[tuple[FileReader, dict]] = []
    syntax: list[Diagnostic] = []
    files = []
    for path in paths:
        display = f"{root_name}/{path.relative_to(root).as_posix()}"
        files.append(display)
        text = path.read_text(encoding="utf-8")
        try:
            data = yaml_rs.loads(text)
        except (yaml_rs.YAMLDecodeError, ValueError):
            syntax.append(syntax_error(text, display))
            continue
        if "<<" in text:
            data = apply_merge_keys(data)
        r = FileReader(display, reader.diags)
        if data is None:
            r.error((), "the file is empty (it needs at least `version: 1`)")
            continue
        if not isinstance(data, dict):
            r.error((), f"expected a mapping of top-level keys, got {_got(data)}")
            continue
        # `x-` keys are free scratch space, e.g. for YAML anchors (`x-common: &common`), as in Compose files.
        r.mapping(
            {k: v for k, v in data.items() if not str(k).startswith("x-")},
            (),
            TOP_LEVEL,
            ("version",),
            what="top-level key",
        )
        if "version" in data and data["version"] != 1:
            r.error(
                ("version",), f"unsupported catalog version {_got(data['version'])} (this amcompanion reads version 1)"
            )
        documents.append((r, data))
    read_once(documents, "defaults", reader.read_defaults)  # first: the severities are needed everywhere
    read_once(documents, "receiver", reader.read_receiver)
    read_once(documents, "self_monitoring", reader.read_self_monitoring)
    for r, data in documents:
        for key, read in (
            ("contacts", reader.read_contacts),
            ("channels", reader.read_channels),
            ("escalations", reader.read_policies),
            ("quiet_hours", reader.read_quiet_hours),
            ("routes", reader.read_routes),
            ("groups", reader.read_groups),
        ):
            if key in data and data[key] is not None:
                read(r, data[key], (key,))
    reader.check_references()
    reader.check_recipients()
    reader.check_self_monitoring()
    problems = syntax + reader.diags.items
    if problems:
        raise CatalogError(locate(problems, root, root_name))
    return reader.catalog(files)
