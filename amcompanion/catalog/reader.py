"""Reading and validating the catalog: files → plain data → typed model, collecting every error."""

import dataclasses
import functools
import re
import zoneinfo
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml_rs

from amcompanion import importers
from amcompanion.catalog import promql, shapes
from amcompanion.catalog.diagnostics import (
    CatalogError,
    Diagnostic,
    Diagnostics,
    KeyPath,
    locate,
    syntax_error,
)
from amcompanion.catalog.durations import format_duration, parse_duration
from amcompanion.catalog.model import (
    COMPARISONS,
    KINDS,
    LEVELED_KINDS,
    SCHEDULE_TARGETS,
    SELF_MONITORING_GROUP,
    SELF_MONITORING_RECEIVER,
    SLO,
    Alert,
    AlertWindows,
    BurnWindow,
    Catalog,
    Defaults,
    Drills,
    Escalate,
    Example,
    Group,
    Inhibit,
    Level,
    NotifyTarget,
    Origin,
    Person,
    Policy,
    Receiver,
    Route,
    Schedule,
    SelfMonitoring,
    Step,
    Tier,
)
from amcompanion.catalog.names import LABEL_NAME, METRIC_NAME, WINDOW_PLACEHOLDER
from amcompanion.catalog.numbers import go_float, promql_number
from amcompanion.catalog.schedules import (
    PERSON_FIELDS,
    check_schedule_recipients,
    read_networks,
    read_person,
    read_schedule_target,
    read_schedules,
)
from amcompanion.catalog.shapes import KUBERNETES_NAME, PHONE, RATE_LIMIT, TIME_OF_DAY, Shape
from amcompanion.wording import did_you_mean

HOUR_MS = 3_600_000
SLOTH_IDENTITY_LABELS = {"sloth_id", "sloth_service", "sloth_slo", "sloth_objective", "sloth_version", "sloth_window"}
# An ack link works for 1m at least (a message can wait in the outbox) and 1y at most (anyone holding it can
# acknowledge, and a later expiry would not fit in a datetime for long).
ACK_LINK_TTL_MS = (60_000, 365 * 24 * 3600_000)

LEVEL_KEYS = tuple(COMPARISONS)
# The fields of some kind of alert: on an alert of another kind they do not apply.
EVERY_KIND_FIELD = tuple(sorted({f for fields in shapes.KIND_FIELDS.values() for f in fields}))
CHANNEL_FIELDS = shapes.CHANNELS  # channel type → the shape of its settings
SECRET_FIELDS = (
    "secret",
    "auth_token",
    "password",
    "bot_token",
    "access_key_secret",
    "secret_key",
    "routing_key",
    "corp_secret",
    "signing_secret",
    "app_secret",
    "encrypt_key",
    "verification_token",
)
# Contact fields renamed to the names the issue tracker and the vendors use; the old names are still read.
CONTACT_ALIASES = {"dingtalk_userid": "dingtalk_user_id", "wecom_userid": "wecom_user_id"}
SETTING_CHOICES = {  # settings that name one of a channel's message formats
    key: tuple(schema["enum"])
    for shape in CHANNEL_FIELDS.values()
    for key, schema in shape.fields.items()
    if "enum" in schema
}
# What a channel needs of each contact it is asked to reach (`to:`), and whether it needs `to:` at all.
RECIPIENT_NEEDS = {
    "twilio_sms": (("phone",), True),
    "twilio_voice": (("phone",), True),
    "email": (("email",), False),
    "dingtalk": (("dingtalk_mobile", "phone", "dingtalk_user_id"), False),
    "wecom": (("wecom_user_id", "wecom_mobile", "phone"), False),
    "wecom_app": (("wecom_user_id",), False),
    "aliyun_sms": (("phone",), True),
    "aliyun_voice": (("phone",), True),
    "tencent_sms": (("phone",), True),
    "tencent_voice": (("phone",), True),
    "pagerduty": ((), False),
    "slack_app": (("slack_user_id",), False),
    "feishu_app": (("feishu_open_id", "feishu_user_id"), False),
    "feishu": (("feishu_user_id", "feishu_open_id"), False),
    "telegram": (("telegram_chat_id",), False),
    "slack": (("slack_user_id",), False),
    "discord": (("discord_user_id",), False),
    "teams": ((), False),
    "webhook": ((), False),
}
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
POLICY_CHOICES = {key: tuple(schema["enum"]) for key, schema in shapes.POLICY.fields.items() if "enum" in schema}

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:Inf|inf|NaN|nan)"
_SAMPLES = rf"_(?:x\d+)?|stale|(?:{_NUMBER})(?:[-+](?:{_NUMBER})x\d+|x\d+)?"
SERIES_VALUES = re.compile(rf"(?:{_SAMPLES})(?:\s+(?:{_SAMPLES}))*")  # promtool's input_series notation


MISSING = object()  # a field not given, where None (YAML null) means something


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


class FileReader:
    """Typed accessors over one file's plain data; every problem goes to the shared diagnostics."""

    def __init__(self, file: str, diags: Diagnostics):
        self.file = file
        self.diags = diags
        self.source_paths: dict[KeyPath, KeyPath] = {}  # a converted file (importers): catalog path → its own

    def error(self, path: KeyPath, message: str, **kw: object) -> None:
        self.diags.error(self.file, self.source_path(path), message, **kw)  # type: ignore[arg-type]

    def source_path(self, path: KeyPath) -> KeyPath:
        """Where a path of the catalog data is in the file: itself, unless the file was converted from another
        format, whose errors then name the file's own fields (the deepest one the data came from)."""
        for n in range(len(path), 0, -1):
            found = self.source_paths.get(path[:n])
            if found is not None:
                return (*found, *path[n:])
        return path

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
                    hint = (
                        did_you_mean(str(key), (*allowed, *suggestions)) or f"; expected one of: {', '.join(allowed)}"
                    )
                    self.error((*path, key), f'unknown {what} "{key}"{hint}', at_key=True)
        for key in required:
            if value.get(key) is None:
                self.error((*path, key), "required field is missing")
        return value

    def shaped(self, value: object, path: KeyPath, shape: Shape, what: str = "field") -> dict | None:
        """A mapping of one of the catalog's shapes: its fields only, its required ones given."""
        return self.mapping(value, path, shape.fields, shape.required, what)

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
        self.drills: Drills | None = None
        self.defined: dict[tuple[str, str], tuple[str, KeyPath]] = {}  # (kind, name) → where
        self.references: list[tuple[str, str, str, KeyPath]] = []  # (kind, name, file, path)
        self.slo_alerts: set[str] = set()  # alert names of SLOs: reusable across services, unlike other alerts
        self.alert_windows: dict[str, AlertWindows] = {}  # by name (Sloth's AlertWindows files)
        self.schedules: dict[str, Schedule] = {}
        self.people: dict[str, Person] = {}

    # -- names -------------------------------------------------------------------------------
    def define(
        self, reader: FileReader, kind: str, name: str, path: KeyPath, at_key: bool = False, scope: str = ""
    ) -> bool:
        """Record a name, unique catalog-wide or within `scope`; a second definition is an error naming the first
        (at the key for mapping keys)."""
        key = (f"{kind} in {scope}" if scope else kind, name)
        first = self.defined.get(key)
        if first is not None:
            reader.error(path, f'duplicate {kind} name "{name}"', related=first, at_key=at_key)
            return False
        self.defined[key] = (reader.file, reader.source_path(path))
        return True

    def refer(self, reader: FileReader, kind: str, name: str, path: KeyPath) -> None:
        self.references.append((kind, name, reader.file, reader.source_path(path)))

    def check_references(self, unparsed: dict[str, str] | None = None) -> dict[str, list[str]]:
        """Report names used but not defined. A name that a file which failed to parse (`unparsed`: file → text)
        mentions is likely defined there: that error would be a false one, so it is held back, and returned
        under the file that holds it back."""
        held_back: dict[str, list[str]] = {}
        for kind, name, file, path in self.references:
            if (kind, name) in self.defined:
                continue
            mention = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])")
            holders = [holder for holder, text in (unparsed or {}).items() if mention.search(text)]
            for holder in holders:
                held = held_back.setdefault(holder, [])
                held += [f'{kind} "{name}"'] if f'{kind} "{name}"' not in held else []
            if holders:
                continue
            names = [n for k, n in self.defined if k == kind]
            hint = did_you_mean(name, names)
            self.diags.error(file, path, f'undefined {kind} "{name}"{hint}')
        for kind, name in self.defined:
            if kind == "receiver" and (name in self.policies or name == "unrouted"):
                file, path = self.defined[(kind, name)]
                what = "an escalation policy's receiver" if name in self.policies else "the receiver of unrouted alerts"
                self.diags.error(file, path, f'"{name}" is already the name of {what}; choose another name')
        return held_back

    # -- files -------------------------------------------------------------------------------
    def read_defaults(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.shaped(data, path, shapes.DEFAULTS)
        if d is None:
            return
        out = self.defaults
        if "slos" in d:
            self.read_slo_defaults(r, d["slos"], (*path, "slos"))
        if "kind_label" in d:
            flag = r.boolean(d["kind_label"], (*path, "kind_label"))
            out.kind_label = flag if flag is not None else True
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
        for key, attr in (("for", "for_ms"), ("interval", "interval_ms"), ("scrape_interval", "scrape_interval_ms")):
            if key in d:
                ms = r.duration(d[key], (*path, key))
                if ms == 0 and key == "scrape_interval":
                    r.error((*path, key), "must be longer than 0s")
                elif ms is not None:
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
            d = r.shaped(value, spath, shapes.SLA_TARGET)
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
            hint = did_you_mean(value, self.defaults.severities) or (
                f"; known severities: {', '.join(self.defaults.severities)}"
            )
            r.error(path, f'unknown severity "{value}"{hint}', at_key=at_key)
            return None
        return value

    def read_receiver(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.shaped(data, path, shapes.RECEIVER)
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
        if "trusted_proxies" in d:
            self.receiver.trusted_proxies = read_networks(r, d["trusted_proxies"], (*path, "trusted_proxies"))
        for key in ("user_header", "email_header"):
            if key in d and (header := r.string(d[key], (*path, key))):
                setattr(self.receiver, key, header)

    def read_self_monitoring(self, r: FileReader, data: object, path: KeyPath) -> None:
        """The receiver's own alerts: `escalation` (a policy) or `native` (an Alertmanager receiver, which still
        delivers when the receiver is down), `job`, `channel_failing_for`, `enabled`."""
        d = r.shaped(data, path, shapes.SELF_MONITORING)
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

    def read_drills(self, r: FileReader, data: object, path: KeyPath) -> None:
        """The weekly drill: `at` ("monday 10:00", UTC), `lasts` (whole minutes, under a day), `escalations`."""
        d = r.shaped(data, path, shapes.DRILLS)
        if d is None or "at" not in d:
            return
        at = r.string(d["at"], (*path, "at"))
        found = re.fullmatch(r"([a-z]+) ([0-9]{1,2}):([0-9]{2})", (at or "").strip().lower())
        if found is None or found.group(1) not in WEEKDAYS or int(found.group(2)) > 23 or int(found.group(3)) > 59:
            if at is not None:
                r.error((*path, "at"), f'expected a weekday and a UTC time such as "monday 10:00", got {_got(at)}')
            return
        drills = Drills(WEEKDAYS.index(found.group(1)), int(found.group(2)) * 60 + int(found.group(3)))
        if "lasts" in d:
            ms = r.duration(d["lasts"], (*path, "lasts"))
            if ms is not None and (ms % 60_000 or not 0 < ms < 24 * 3600_000):
                r.error((*path, "lasts"), f"expected whole minutes, less than a day, got {_got(d['lasts'])}")
            elif ms is not None:
                drills.lasts_ms = ms
        if "escalations" in d:
            drills.escalations = r.string_list(d["escalations"], (*path, "escalations"))
            for i, name in enumerate(drills.escalations):
                self.refer(r, "escalation policy", name, (*path, "escalations", i))
        self.drills = drills

    def check_self_monitoring(self) -> None:
        """Unless it names a policy or a native receiver, it pages the catalog's first policy (none without
        policies: its alerts take the catalog routes)."""
        out = self.self_monitoring
        if not out.enabled:
            return
        if out.escalation is None and out.native is None:
            out.escalation = next(iter(self.policies), None)

    def read_contacts(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.mapping(data, path)
        for name, value in (d or {}).items():
            cpath = (*path, name)
            if not self.define(r, "contact", str(name), cpath, at_key=True):
                continue
            fields = r.shaped(value, cpath, shapes.CONTACT)
            if fields is None:
                continue
            contact = {}
            person = read_person(self, r, fields, cpath)
            if person is not None:
                self.people[str(name)] = person
            for key, item in fields.items():
                if key in shapes.CONTACT.fields and key not in PERSON_FIELDS:
                    text = r.string(item, (*cpath, key))
                    if text is not None:
                        contact.setdefault(CONTACT_ALIASES.get(key, key), text)
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
                hint = did_you_mean(str(ctype), CHANNEL_FIELDS) if isinstance(ctype, str) else ""
                message = (
                    "required field is missing"
                    if ctype is None
                    else f'unknown channel type "{ctype}"{hint or "; expected one of: " + ", ".join(CHANNEL_FIELDS)}'
                )
                r.error((*cpath, "type"), message)
                continue
            fields = r.shaped(value, cpath, CHANNEL_FIELDS[ctype])
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
            fields = r.shaped(value, ppath, shapes.POLICY)
            if fields is None:
                continue
            steps = self.read_steps(r, fields.get("steps"), (*ppath, "steps"))
            every, times = None, 0
            if "repeat" in fields:
                rpath = (*ppath, "repeat")
                repeat = r.shaped(fields["repeat"], rpath, shapes.REPEAT)
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
                    hint = did_you_mean(str(chosen[key]), choices) or f"; expected one of: {', '.join(choices)}"
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
            step = r.shaped(item, spath, shapes.STEP)
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
            got = "an empty list: a step must notify someone" if value == [] else _got(value)
            r.error(path, f"expected a list of channels, got {got}")
            return []
        targets = []
        for i, item in enumerate(value):
            ipath = (*path, i)
            if isinstance(item, str):
                self.refer(r, "channel", item, ipath)
                targets.append(NotifyTarget(item, []))
                continue
            target = r.shaped(item, ipath, shapes.TARGET)
            if target is None:
                continue
            if any(key in target for key in SCHEDULE_TARGETS):
                scheduled = read_schedule_target(self, r, target, ipath)
                targets += [scheduled] if scheduled else []
                continue
            if target.get("channel") is None:
                r.error(ipath, "a target needs `channel` (with `to`), or one of: " + ", ".join(SCHEDULE_TARGETS))
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
            d = r.shaped(item, rpath, shapes.ROUTE)
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
        d = r.shaped(item, path, shapes.INTERVAL)
        if d is None:
            return None
        out: dict[str, object] = {}
        if "times" in d:
            times = d["times"] if isinstance(d["times"], list) else [d["times"]]
            out["times"] = []
            for i, t in enumerate(times):
                tpath = (*path, "times", i)
                span = r.shaped(t, tpath, shapes.TIME_SPAN)
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
                    parts = str(spec).lower().split(":")
                    for part in parts:
                        if part not in names and not (key == "months" and part.isdigit()):
                            r.error((*path, key, i), f'"{part}" is not a {key[:-1]}{did_you_mean(part, names)}')
                    order = [names.index(p) if p in names else int(p) - 1 for p in parts if p in names or p.isdigit()]
                    if len(order) == 2 and order[0] > order[1]:  # Alertmanager refuses the whole config for it
                        first = "sunday" if key == "weekdays" else "january"
                        r.error(
                            (*path, key, i),
                            f'"{spec}" runs backwards: Alertmanager\'s {key[:-1]} ranges go from {first} on; split'
                            f' it in two, e.g. ["{parts[0]}:{names[-1]}", "{names[0]}:{parts[1]}"]',
                        )
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
            d = r.shaped(item, gpath, shapes.GROUP)
            if d is None or d.get("name") is None:
                continue
            name = r.string(d["name"], (*gpath, "name"))
            if not name:
                if name == "":
                    r.error((*gpath, "name"), "a group needs a name")
                continue
            if not self.define(r, "group", name, (*gpath, "name"), scope=r.file):
                continue
            labels = r.labels(d["labels"], (*gpath, "labels")) if "labels" in d else {}
            escalation = r.string(d["escalation"], (*gpath, "escalation")) if "escalation" in d else None
            if escalation:
                self.refer(r, "escalation policy", escalation, (*gpath, "escalation"))
            interval = self.defaults.interval_ms
            if "interval" in d:
                interval = r.duration(d["interval"], (*gpath, "interval")) or interval
            kind_label = self.defaults.kind_label
            if "kind_label" in d:
                flag = r.boolean(d["kind_label"], (*gpath, "kind_label"))
                kind_label = flag if flag is not None else kind_label
            group = Group(name, Origin(r.file, gpath), interval, labels, escalation, [], [], [])
            if "prometheus_rule" in d:
                group.prometheus_rule = self.read_prometheus_rule(r, d["prometheus_rule"], (*gpath, "prometheus_rule"))
            for j, alert in enumerate(self.list_of(r, d, "alerts", gpath)):
                for parsed in self.read_alert(r, alert, (*gpath, "alerts", j), group):
                    parsed.kind_label = kind_label
                    group.alerts.append(parsed)
            for j, slo in enumerate(self.list_of(r, d, "slos", gpath)):
                parsed_slo = self.read_slo(r, slo, (*gpath, "slos", j), group)
                if parsed_slo is not None:
                    parsed_slo.kind_label = kind_label
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

    def read_levels(self, r: FileReader, d: dict, path: KeyPath, key: str, severity: object) -> list[Level]:
        value = d[key]
        if isinstance(value, dict):
            if severity is not MISSING:
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
        return [Level(self.default_severity() if severity is MISSING else severity, number)]

    def by_rank(self, levels: list[Level]) -> list[Level]:
        rank = {s: i for i, s in enumerate(self.defaults.severities)}
        return sorted(levels, key=lambda level: rank.get(level.severity, -1))

    def default_severity(self) -> str:
        severities = self.defaults.severities
        return "warning" if "warning" in severities else severities[0]

    def read_alert(self, r: FileReader, item: object, path: KeyPath, group: Group) -> list[Alert]:
        """One item of a group's `alerts`: an alert (one Alert per variant, if it has variants) or a `record`."""
        if not isinstance(item, dict):
            r.error(path, f"expected a mapping, got {_got(item)}")
            return []
        if "record" in item and "alert" not in item:
            record = self.read_record(r, item, path, group)
            return [record] if record else []
        kind = item.get("kind")
        if kind is None:
            kind = "threshold" if any(key in item for key in LEVEL_KEYS) else "expr"
        if kind not in KINDS or kind == "record":
            r.error(
                (*path, "kind"),
                (
                    "a recording rule is written `record: NAME` with `expr:`, not `kind: record`"
                    if kind == "record"
                    else f'unknown kind "{kind}"{did_you_mean(str(kind), KINDS)}'
                )
                if isinstance(kind, str)
                else f"expected a kind name, got {_got(kind)}",
            )
            return []
        shape = shapes.ALERTS[kind]
        allowed = shape.fields
        known = {}
        for key, value in item.items():
            if key not in allowed and key in EVERY_KIND_FIELD:
                r.error((*path, key), f'field "{key}" does not apply to kind {kind}', at_key=True)
            else:
                known[key] = value
        variants = known.pop("variants", None)
        required = ("alert",) if variants is not None else shape.required
        d = r.mapping(known, path, allowed, required, suggestions=EVERY_KIND_FIELD)
        if d is None or d.get("alert") is None:
            return []
        name = r.string(d["alert"], (*path, "alert"))
        if not name or name != name.strip():
            if name is not None:
                r.error((*path, "alert"), "an alert name must be non-empty, without spaces around it")
            return []
        if not self.define(r, "alert", name, (*path, "alert")):
            return []
        if variants is None:
            alert = self.alert_of(r, d, path, path, group, name, kind, None)
            return [alert] if alert else []
        return self.read_variants(r, d, variants, path, group, name, kind)

    def read_variants(
        self, r: FileReader, d: dict, variants: object, path: KeyPath, group: Group, name: str, kind: str
    ) -> list[Alert]:
        """An alert whose severities differ in more than a level (NodeFilesystemSpaceFillingUp: warning under 15%
        over 24h, critical under 10% over 4h): each variant is the alert's fields with its own on top."""
        vpath = (*path, "variants")
        if not isinstance(variants, list) or not variants:
            r.error(vpath, f"expected a list of variants (each with its severity), got {_got(variants)}")
            return []
        for key in (*LEVEL_KEYS, "zscore"):
            if isinstance(d.get(key), dict):
                r.error((*path, key), "with variants, each variant gives its own level (one number)")
                return []
        alerts = []
        for i, variant in enumerate(variants):
            v = r.shaped(variant, (*vpath, i), shapes.VARIANTS[kind])
            if v is None:
                continue
            merged = {**d, **v}
            for key in ("labels", "annotations"):
                if isinstance(d.get(key), dict) and isinstance(v.get(key), dict):
                    merged[key] = {**d[key], **v[key]}
            missing = [key for key in shapes.KIND_REQUIRED[kind] if merged.get(key) is None]
            if missing:
                r.error((*vpath, i), f"needs {', '.join(missing)} (here or in the alert)")
                continue
            alert = self.alert_of(r, merged, path, (*vpath, i), group, name, kind, i + 1)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def alert_of(
        self,
        r: FileReader,
        d: dict,
        path: KeyPath,
        own_path: KeyPath,
        group: Group,
        name: str,
        kind: str,
        variant: int | None,
    ) -> Alert | None:
        """The Alert of an alert's fields (`path`), or of one variant's fields on top of them (`own_path`, where
        problems are reported: a variant's fields and those it shares)."""
        where_own = own_path if variant is not None else path
        severity: object = MISSING
        if "severity" in d:
            severity = None if d["severity"] is None else self.severity(r, d["severity"], (*where_own, "severity"))
            if severity is None and d["severity"] is not None:
                return None
        default_for = 0 if kind == "composite" else self.defaults.for_ms
        for_ms = r.duration(d["for"], (*where_own, "for")) if "for" in d else default_for
        keep_ms = r.duration(d["keep_firing_for"], (*where_own, "keep_firing_for")) if "keep_firing_for" in d else 0
        labels = {**self.defaults.labels, **group.labels}
        if "labels" in d:
            labels.update(r.labels(d["labels"], (*where_own, "labels")))
        if "severity" in labels and kind not in LEVELED_KINDS and severity is MISSING:
            severity = labels.pop("severity")  # any value, as a rule file says it (the catalog ranks only its own)
        elif "severity" in labels:
            r.error(
                (*where_own, "labels", "severity"),
                "the severity comes from `severity:` or the levels' map, not from labels",
            )
            labels.pop("severity")
        annotations = {}
        for key in ("summary", "description", "runbook_url", "dashboard_url"):
            if key in d:
                text = r.string(d[key], (*where_own, key))
                if text is not None:
                    annotations[key] = text
        if "annotations" in d:
            annotations.update(r.strings(d["annotations"], (*where_own, "annotations")))
        alert = Alert(name, kind, group.name, [], None, for_ms or 0, labels, annotations)
        alert.keep_firing_for_ms, alert.variant = keep_ms or 0, variant
        alert.origin = Origin(r.file, r.source_path(where_own))
        if "lint" in d:
            alert.lint_disabled = self.read_lint(r, d["lint"], (*path, "lint"))
        if "examples" in d and variant in (None, 1):  # the examples check every variant of the name at once
            alert.examples = self.read_examples(r, d["examples"], (*path, "examples"))
        if "escalation" in d:
            alert.escalation = r.string(d["escalation"], (*where_own, "escalation"))
            if alert.escalation:
                self.refer(r, "escalation policy", alert.escalation, (*where_own, "escalation"))
        self.read_kind(r, d, where_own, alert, severity)
        if "escalate" in d:
            alert.escalate = self.read_escalate(r, d["escalate"], (*path, "escalate"), alert)
        return alert

    def read_record(self, r: FileReader, item: dict, path: KeyPath, group: Group) -> Alert | None:
        """A recording rule, kept in its place among the alerts: rules of a group are evaluated in order."""
        d = r.shaped(item, path, shapes.RECORD)
        if d is None or None in (d.get("record"), d.get("expr")):
            return None
        name = r.string(d["record"], (*path, "record"), METRIC_NAME, "metric name for a recording rule")
        expr = r.promql(d["expr"], (*path, "expr"))
        labels = r.labels(d["labels"], (*path, "labels")) if "labels" in d else {}
        if name is None or expr is None:
            return None
        return Alert(name, "record", group.name, [], None, 0, labels, {}, expr=expr)

    def read_kind(self, r: FileReader, d: dict, path: KeyPath, alert: Alert, severity: object) -> None:
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
            keys = ("zscore",) if kind == "anomaly" else tuple(k for k in LEVEL_KEYS if k in d)
            if kind != "anomaly" and len(keys) != 1:
                r.error(
                    path,
                    f"give exactly one of {', '.join(keys)}"
                    if keys
                    else f"needs a level: {', '.join(LEVEL_KEYS)} (a number, or a map of severity → number)",
                )
                return
            alert.comparison = COMPARISONS.get(keys[0], ">")
            alert.levels = self.read_levels(r, d, path, keys[0], severity)
            if kind == "anomaly":
                for level in alert.levels:
                    if level.value is not None and level.value <= 0:
                        r.error((*path, "zscore"), "a z-score must be greater than 0")
            return
        alert.levels = [Level(self.default_severity() if severity is MISSING else severity, None)]  # type: ignore[arg-type]
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

    @staticmethod
    def read_lint(r: FileReader, value: object, path: KeyPath) -> frozenset[str]:
        """`lint: {disable: [...], reason: ...}`: a check is only switched off with a reason, so a reader of the
        catalog learns why the linter's advice does not hold here."""
        d = r.shaped(value, path, shapes.LINT)
        if d is None or d.get("disable") is None:
            return frozenset()
        reason = r.string(d.get("reason"), (*path, "reason")) if d.get("reason") is not None else None
        if reason is not None and not reason.strip():
            r.error((*path, "reason"), "say why the checks do not apply")
        checks = r.string_list(d["disable"], (*path, "disable"))
        for i, check in enumerate(checks):
            if check not in shapes.LINT_CHECKS:
                hint = did_you_mean(check, shapes.LINT_CHECKS) or f"; the checks: {', '.join(shapes.LINT_CHECKS)}"
                r.error((*path, "disable", i), f'unknown lint check "{check}"{hint}')
        return frozenset(checks) if reason and reason.strip() else frozenset()

    def read_examples(self, r: FileReader, value: object, path: KeyPath) -> list[Example]:
        """`examples:` — input series in promtool's notation and the severities that fire from them."""
        if not isinstance(value, list):
            r.error(path, f"expected a list of examples, got {_got(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            d = r.shaped(item, (*path, i), shapes.EXAMPLE)
            if d is None or None in (d.get("input"), d.get("fires")):
                continue
            series = []
            inputs = d["input"]
            if not isinstance(inputs, list) or not inputs:
                r.error((*path, i, "input"), f"expected a list of input series, got {_got(inputs)}")
                continue
            for j, one in enumerate(inputs):
                s = r.shaped(one, (*path, i, "input", j), shapes.EXAMPLE_SERIES)
                if s is None or None in (s.get("series"), s.get("values")):
                    continue
                text = r.string(s["series"], (*path, i, "input", j, "series"))
                values = r.string(s["values"], (*path, i, "input", j, "values"))
                if text is not None and not promql.is_selector(text):
                    r.error(
                        (*path, i, "input", j, "series"), f'expected a series such as up{{job="node"}}, got {text!r}'
                    )
                elif values is not None and not SERIES_VALUES.fullmatch(values.strip()):
                    r.error(
                        (*path, i, "input", j, "values"),
                        f"expected promtool's notation (1 2 3, 0+10x30, _x5, 7x10), got {values!r}",
                    )
                elif text is not None and values is not None:
                    series.append((text, values.strip()))
            interval = r.duration(d["interval"], (*path, i, "interval")) if "interval" in d else 60_000
            if interval == 0:
                r.error((*path, i, "interval"), "the time between two samples must be more than 0s")
            at = r.duration(d["at"], (*path, i, "at")) if "at" in d else None
            fires_value = d["fires"]
            if isinstance(fires_value, bool):
                fires: list[str | None] = [None] if fires_value else []
            else:
                fires = list(r.string_list(fires_value, (*path, i, "fires")))
                for k, severity in enumerate(fires):
                    if severity not in self.defaults.severities:
                        r.error((*path, i, "fires", k), f'unknown severity "{severity}"')
            if interval and len(series) == len(inputs):
                out.append(Example(series, interval, at, fires))
        return out

    def read_escalate(self, r: FileReader, value: object, path: KeyPath, alert: Alert) -> Escalate | None:
        d = r.shaped(value, path, shapes.ESCALATE)
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
        d = r.shaped(item, path, shapes.SLO)
        if d is None or d.get("name") is None:
            return None
        service = r.string(d["service"], (*path, "service")) if "service" in d else group.name
        service = service or group.name
        name = r.string(d["name"], (*path, "name"))
        if name is None or not self.define(r, "SLO", name, (*path, "name"), scope=f'service "{service}"'):
            return None
        objective = r.number(d.get("objective"), (*path, "objective")) if "objective" in d else None
        if objective is not None and not 0 < objective <= 100:
            r.error((*path, "objective"), f"expected a percentage in (0, 100], got {go_float(objective)}")
        window = r.duration(d["window"], (*path, "window")) if "window" in d else self.defaults.slo_window_ms
        if window is not None and window < HOUR_MS:
            r.error((*path, "window"), "the compliance period must be at least 1h")
            window = None
        sli = self.read_sli(r, d.get("sli"), (*path, "sli"))
        group_by = r.string_list(d.get("group_by", []), (*path, "group_by"), LABEL_NAME, "label name")
        min_events = r.number(d["min_events"], (*path, "min_events")) if "min_events" in d else 0.0
        if min_events and sli is not None and sli["raw"] is not None:
            r.error((*path, "min_events"), "needs events to count: an errors/good + total or a latency SLI, not raw")
        labels = {**(r.labels(d["labels"], (*path, "labels")) if "labels" in d else {}), **self.defaults.slo_labels}
        recordings = self.defaults.slo_recordings
        if "recordings" in d:
            flag = r.boolean(d["recordings"], (*path, "recordings"))
            recordings = recordings and flag is not False
        info_labels = r.labels(d["info_labels"], (*path, "info_labels")) if "info_labels" in d else {}
        for label in sorted(set(info_labels) & SLOTH_IDENTITY_LABELS):
            r.error((*path, "info_labels", label), f"{label} is set by the compiler", at_key=True)
        interval = r.duration(d["interval"], (*path, "interval")) if "interval" in d else None
        windows = self.slo_windows(r, d, path, window) if window is not None else None
        apath = (*path, "alerting")
        alerting = {"page": False, "ticket": False}  # `alerting: false`: no alerts, as Sloth with both disabled
        if d.get("alerting", {}) is not False:
            alerting = r.shaped(d.get("alerting", {}), apath, shapes.ALERTING) or {}
        page = self.read_tier(r, alerting, apath, "page", "critical") if self.defaults.slo_alerts else None
        ticket = self.read_tier(r, alerting, apath, "ticket", "warning") if self.defaults.slo_alerts else None
        alert_name = camel_case(name) + "ErrorBudgetBurn"
        if "name" in alerting:
            alert_name = r.string(alerting["name"], (*apath, "name"), METRIC_NAME, "alert name") or alert_name
        if page or ticket:
            self.define_slo_alert(r, alert_name, group, (*apath, "name") if "name" in alerting else (*path, "name"))
        alert_for = r.duration(alerting["for"], (*apath, "for")) if "for" in alerting else 0
        alert_labels = r.labels(alerting["labels"], (*apath, "labels")) if "labels" in alerting else {}
        annotations = {}
        if "description" in d:  # the SLO's description, on its alerts unless alerting.annotations sets one
            description = r.string(d["description"], (*path, "description"))
            if description is not None:
                annotations["description"] = description
        if "annotations" in alerting:
            annotations.update(r.strings(alerting["annotations"], (*apath, "annotations")))
        if None in (objective, window, sli):
            return None
        return SLO(
            name,
            service,
            group.name,
            objective,  # type: ignore[arg-type]
            window,  # type: ignore[arg-type]
            sli["errors"],  # type: ignore[index]
            sli["total"],  # type: ignore[index]
            sli["buckets"],  # type: ignore[index]
            sli["le"],  # type: ignore[index]
            group_by,
            min_events or 0.0,
            labels,
            alert_name,
            alert_for or 0,
            page,
            ticket,
            {**self.defaults.labels, **group.labels, **alert_labels},
            annotations,
            good=sli["good"],  # type: ignore[index]
            raw=sli["raw"],  # type: ignore[index]
            denominator_corrected=sli["denominator_corrected"],  # type: ignore[index]
            windows=windows,
            recordings=recordings,
            info_labels=info_labels,
            interval_ms=interval or None,
        )

    def read_sli(self, r: FileReader, value: object, path: KeyPath) -> dict[str, object] | None:
        """One of: errors (or good) + total, raw, latency. None when it is wrong (the errors are reported)."""
        sli = r.shaped(value, path, shapes.SLI)
        if sli is None:
            return None
        out: dict[str, object] = dict.fromkeys(("errors", "good", "total", "raw", "buckets", "le"))
        out["denominator_corrected"] = False
        if "denominator_corrected" in sli:
            dpath = (*path, "denominator_corrected")
            out["denominator_corrected"] = r.boolean(sli["denominator_corrected"], dpath) is True
            if out["denominator_corrected"] and not {"errors", "total"} <= set(sli):
                r.error(dpath, "needs an errors + total SLI (Sloth's events)")
        events = ["events"] if {"errors", "good", "total"} & set(sli) else []
        kinds = [k for k in ("latency", "raw") if k in sli] + events
        if len(kinds) != 1:
            r.error(path, "give one of: errors (or good) + total, raw, latency" + (", not several" if kinds else ""))
            return None
        if kinds == ["latency"]:
            lpath = (*path, "latency")
            lat = r.shaped(sli["latency"], lpath, shapes.LATENCY)
            if not lat or lat.get("buckets") is None or lat.get("le") is None:
                return None
            buckets = r.promql(lat["buckets"], (*lpath, "buckets"))
            if buckets and not promql.is_selector(buckets):
                r.error(
                    (*lpath, "buckets"),
                    'expected a histogram bucket selector such as http_request_duration_seconds_bucket{job="api"}',
                )
                buckets = None
            out["buckets"], out["le"] = buckets, r.string(lat["le"], (*lpath, "le"))
            return out if out["buckets"] and out["le"] is not None else None
        if kinds == ["raw"]:
            out["raw"] = self.sli_expr(r, sli, path, "raw")
            return out if out["raw"] else None
        if "errors" in sli and "good" in sli:
            r.error(path, "give errors or good (the events that burn the budget, or the others), not both")
            return None
        counted = "good" if "good" in sli else "errors"
        out[counted] = self.sli_expr(r, sli, path, counted)
        out["total"] = self.sli_expr(r, sli, path, "total")
        return out if out[counted] and out["total"] else None

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
        tier = r.shaped(value, (*path, key), shapes.TIER) if value is not None else {}
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
        if "severity" in labels:  # Sloth's way (`page_alert: {labels: {severity: pageteam}}`): kept as written
            if "severity" in tier and tier["severity"] != labels["severity"]:
                r.error((*path, key, "labels", "severity"), f'differs from {key}.severity "{tier["severity"]}"')
            severity = labels.pop("severity")
        annotations = r.strings(tier.get("annotations", {}), (*path, key, "annotations"))
        return Tier(severity, labels, annotations)

    def define_slo_alert(self, r: FileReader, name: str, group: Group, path: KeyPath) -> None:
        """An SLO's alert name may be shared by other SLOs, as Sloth allows (their rules differ by `sloth_id`), but
        it may name no other kind of alert (inhibits and composites refer to it by name, whichever SLO's it is)."""
        first = self.defined.get(("alert", name))
        if first is not None and name not in self.slo_alerts:
            r.error(path, f'duplicate alert name "{name}"', related=first)
            return
        self.slo_alerts.add(name)
        self.defined.setdefault(("alert", name), (r.file, r.source_path(path)))

    def slo_windows(self, r: FileReader, d: dict, path: KeyPath, period: int) -> AlertWindows | None:
        """The SLO's `alert_windows`; else Sloth's own for its period (30d, 28d); else the only AlertWindows of
        the catalog for its period; else None: the 30d windows scaled."""
        if "alert_windows" in d:
            wpath = (*path, "alert_windows")
            name = r.string(d["alert_windows"], wpath)
            chosen = self.alert_windows.get(name) if name is not None else None
            if name is not None and chosen is None:
                r.error(wpath, f'undefined alert windows "{name}"{did_you_mean(name, self.alert_windows)}')
            elif chosen is not None and chosen.period_ms != period:
                r.error(
                    wpath,
                    f'"{name}" are the windows of a {format_duration(chosen.period_ms)} period; '
                    f"the SLO's window is {format_duration(period)}",
                )
                return None
            return chosen
        builtin = {w.period_ms: w for w in builtin_windows()}.get(period)
        if builtin is not None:
            return builtin
        mine = sorted(name for name, w in self.alert_windows.items() if w.period_ms == period)
        if len(mine) > 1:
            r.error(
                (*path, "window"),
                f"several alert windows are for {format_duration(period)} ({', '.join(mine)}): "
                "choose one with alert_windows",
            )
        return self.alert_windows[mine[0]] if len(mine) == 1 else None

    def read_alert_windows(self, r: FileReader, data: object, path: KeyPath) -> None:
        if not isinstance(data, list):
            r.error(path, f"expected a list of alert windows, got {_got(data)}")
            return
        unnamed = [i for i, item in enumerate(data) if not (isinstance(item, dict) and "name" in item)]
        for i, item in enumerate(data):
            default = Path(r.file).stem if len(unnamed) == 1 else None
            windows = read_windows(r, item, (*path, i), default)
            if windows is not None and self.define(r, "alert windows", windows.name, (*path, i, "name")):
                self.alert_windows[windows.name] = windows

    def read_slo_defaults(self, r: FileReader, data: object, path: KeyPath) -> None:
        d = r.shaped(data, path, shapes.SLO_DEFAULTS) or {}
        if "labels" in d:
            self.defaults.slo_labels = r.labels(d["labels"], (*path, "labels"))
        if "window" in d:
            window = r.duration(d["window"], (*path, "window"))
            if window is not None and window < HOUR_MS:
                r.error((*path, "window"), "the compliance period must be at least 1h")
            elif window is not None:
                self.defaults.slo_window_ms = window
        for key in ("recordings", "alerts"):
            if key in d:
                flag = r.boolean(d[key], (*path, key))
                setattr(self.defaults, f"slo_{key}", flag is not False)

    def read_prometheus_rule(self, r: FileReader, data: object, path: KeyPath) -> dict[str, object]:
        """The metadata of the group's PrometheusRule (Kubernetes names: lower case, digits, '-' and '.')."""
        d = r.shaped(data, path, shapes.PROMETHEUS_RULE) or {}
        out: dict[str, object] = {}
        for key in ("name", "namespace"):
            if key in d:
                text = r.string(d[key], (*path, key), KUBERNETES_NAME, "Kubernetes name")
                if text:
                    out[key] = text
        for key in ("labels", "annotations"):
            if key in d:
                out[key] = r.strings(d[key], (*path, key))
        return out

    def read_inhibit(self, r: FileReader, item: object, path: KeyPath) -> Inhibit | None:
        d = r.shaped(item, path, shapes.INHIBIT)
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
        check_schedule_recipients(self, RECIPIENT_NEEDS)
        for policy in self.policies.values():
            for s, step in enumerate(policy.steps):
                for t, target in enumerate(step.notify):
                    channel = self.channels.get(target.channel) if target.schedule is None else None
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

    def name_files(self) -> None:
        """Each group's generated files are named after it, spelt safe for a file name; two groups of one name
        (in two catalog files) are told apart by their catalog file's path."""

        def safe(text: str) -> str:
            return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "group"

        stems = [safe(group.name) for group in self.groups]
        taken: set[str] = set()
        for group, stem in zip(self.groups, stems, strict=True):
            if stems.count(stem) > 1:
                stem = safe(f"{Path(group.origin.file).with_suffix('').as_posix().partition('/')[2]}.{group.name}")
            name, n = stem, 1
            while name in taken or (name == SELF_MONITORING_GROUP and self.self_monitoring.enabled):
                n += 1
                name = f"{stem}-{n}"
            taken.add(name)
            group.file_name = name

    def catalog(self, files: list[str]) -> Catalog:
        self.name_files()
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
            self.schedules,
            self.people,
            self.drills,
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


def read_windows(r: FileReader, item: object, path: KeyPath, default_name: str | None) -> AlertWindows | None:
    """One `alert_windows` entry: a period and its page and ticket window pairs (Sloth's AlertWindows spec)."""
    d = r.shaped(item, path, shapes.ALERT_WINDOWS)
    if d is None:
        return None
    name = r.string(d["name"], (*path, "name")) if "name" in d else default_name
    if "name" not in d and default_name is None:
        r.error((*path, "name"), "required when a file has several alert windows")
    period = r.duration(d["period"], (*path, "period")) if d.get("period") is not None else None
    if period is not None and period < HOUR_MS:
        r.error((*path, "period"), "the SLO period must be at least 1h")
        period = None
    tiers: dict[str, tuple[BurnWindow, BurnWindow] | None] = {}
    for tier in ("page", "ticket"):
        t = r.shaped(d[tier], (*path, tier), shapes.WINDOW_PAIRS) if d.get(tier) is not None else None
        quick, slow = (read_burn_window(r, (t or {}).get(s), (*path, tier, s), period) for s in ("quick", "slow"))
        tiers[tier] = (quick, slow) if quick and slow else None
    page, ticket = tiers["page"], tiers["ticket"]
    if name is None or period is None or page is None or ticket is None:
        return None
    return AlertWindows(name, period, page, ticket)


def read_burn_window(r: FileReader, value: object, path: KeyPath, period: int | None) -> BurnWindow | None:
    if value is None:  # reported as missing by the tier
        return None
    d = r.shaped(value, path, shapes.BURN_WINDOW)
    if d is None or any(d.get(key) is None for key in shapes.BURN_WINDOW.required):
        return None
    budget = r.number(d["budget_percent"], (*path, "budget_percent"))
    if budget is not None and not 0 < budget <= 100:
        r.error((*path, "budget_percent"), f"expected a percentage in (0, 100], got {go_float(budget)}")
        budget = None
    short, long = (r.duration(d[key], (*path, key)) for key in ("short_window", "long_window"))
    for key, ms in (("short_window", short), ("long_window", long)):
        if ms == 0:
            r.error((*path, key), "must be longer than 0s")
    if short and long and short >= long:
        r.error((*path, "short_window"), "must be shorter than long_window")
        return None
    if long and period and long > period:
        r.error((*path, "long_window"), f"must not be longer than the period ({format_duration(period)})")
        return None
    return BurnWindow(short, long, budget) if short and long and budget is not None else None


@functools.cache
def builtin_windows() -> tuple[AlertWindows, ...]:
    """Sloth's own windows for 30d and 28d, its files as it ships them (catalog/windows/), read as dropped-in
    AlertWindows files are."""
    from amcompanion.importers import sloth

    diags = Diagnostics()
    out = []
    for file in sorted((Path(__file__).parent / "windows").glob("*.yaml")):
        r = FileReader(file.name, diags)
        data = sloth.ALERT_WINDOWS.convert([yaml_rs.loads(file.read_text(encoding="utf-8"))]).data
        out += [read_windows(r, item, ("alert_windows", i), file.stem) for i, item in enumerate(data["alert_windows"])]
    if diags.items or None in out:
        raise RuntimeError(f"amcompanion's own alert windows are broken: {diags.items}")
    return tuple(w for w in out if w is not None)


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


def foreign_format(r: FileReader, data: object) -> object:
    """A file of another format: an SLO spec is converted and read as catalog data; anything else is one
    error saying what the file looks like, instead of a field error for each of its keys. None: nothing to read."""
    documents = data if isinstance(data, list) else [data]
    if isinstance(data, dict) and (
        isinstance(data.get("version"), int) or set(data) & set(shapes.FILE.fields) - {"version", "groups"}
    ):
        return data
    found = importers.recognise(documents[0])
    if found is not None and found.drop_in and all(found.recognises(d) for d in documents):
        conversion = found.convert(documents)
        r.source_paths = conversion.origins  # errors in the converted data name the file's own fields
        for problem in conversion.not_carried:
            if problem.at:
                r.diags.error(r.file, problem.at, f"not carried ({found.name}): {problem.reason}", at_key=True)
            else:
                r.error((), f"{found.name}: {problem.source}: {problem.reason}")
        return conversion.data
    if found is not None:
        r.error((), f"this is a {found.name}, not a catalog file; bring it in with: amcompanion import {r.file}")
        return None
    if isinstance(data, dict) and "groups" in data:
        return data
    r.error((), f"this looks like {looks_like(data)}, not a catalog file; {CATALOG_EXPECTS}")
    return None


CATALOG_EXPECTS = (
    "a catalog file is a mapping with `version: 1` and any of: "
    + ", ".join(key for key in shapes.FILE.fields if key != "version")
    + " (docs/catalog.md)"
)


def looks_like(data: object) -> str:
    """What a file that is none of the known formats seems to be, in a few words."""
    if isinstance(data, list):
        return f"a list of {len(data)} items" if data and not isinstance(data[0], dict) else "several YAML documents"
    if not isinstance(data, dict):
        return _got(data)
    if "apiVersion" in data or "kind" in data:
        return f"a Kubernetes object (kind {data.get('kind', '?')}, apiVersion {data.get('apiVersion', '?')})"
    for keys, what in (
        ({"route", "receivers"}, "an Alertmanager configuration"),
        ({"scrape_configs", "rule_files", "alerting"}, "a Prometheus configuration"),
        ({"tests"}, "a promtool unit test file"),
    ):
        if keys & set(data):
            return what
    shown = ", ".join(str(key) for key in list(data)[:5])
    return f"a mapping of {shown}{', ...' if len(data) > 5 else ''}"


def not_checked(diag: Diagnostic, names: list[str]) -> Diagnostic:
    """A syntax error says which references elsewhere wait for its file: they may be defined in it."""
    if not names:
        return diag
    note = f"  note: names defined in this file are not checked until it parses (used elsewhere: {', '.join(names)})"
    return dataclasses.replace(diag, excerpt=(*diag.excerpt, note))


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
    unparsed: dict[str, str] = {}  # file → text of the files that failed to parse
    files = []
    for path in paths:
        display = f"{root_name}/{path.relative_to(root).as_posix()}"
        files.append(display)
        text = path.read_text(encoding="utf-8")
        try:
            data = yaml_rs.loads(text)
        except (yaml_rs.YAMLDecodeError, ValueError):
            syntax.append(syntax_error(text, display))
            unparsed[display] = text
            continue
        if "<<" in text:
            data = apply_merge_keys(data)
        r = FileReader(display, reader.diags)
        if data is None:
            r.error((), "the file is empty (it needs at least `version: 1`)")
            continue
        data = foreign_format(r, data)
        if data is None:
            continue
        if not isinstance(data, dict):
            r.error((), f"expected a mapping of top-level keys, got {_got(data)}")
            continue
        # `x-` keys are free scratch space, e.g. for YAML anchors (`x-common: &common`), as in Compose files.
        r.shaped({k: v for k, v in data.items() if not str(k).startswith("x-")}, (), shapes.FILE, "top-level key")
        if "version" in data and data["version"] != 1:
            r.error(
                ("version",), f"unsupported catalog version {_got(data['version'])} (this amcompanion reads version 1)"
            )
        documents.append((r, data))
    read_once(documents, "defaults", reader.read_defaults)  # first: the severities are needed everywhere
    read_once(documents, "receiver", reader.read_receiver)
    read_once(documents, "self_monitoring", reader.read_self_monitoring)
    read_once(documents, "drills", reader.read_drills)
    for r, data in documents:  # before the groups: each SLO takes its windows as it is read
        if data.get("alert_windows") is not None:
            reader.read_alert_windows(r, data["alert_windows"], ("alert_windows",))
    for r, data in documents:
        for key, read in (
            ("contacts", reader.read_contacts),
            ("channels", reader.read_channels),
            ("escalations", reader.read_policies),
            ("schedules", functools.partial(read_schedules, reader)),
            ("quiet_hours", reader.read_quiet_hours),
            ("routes", reader.read_routes),
            ("groups", reader.read_groups),
        ):
            if key in data and data[key] is not None:
                read(r, data[key], (key,))
    held_back = reader.check_references(unparsed)
    syntax = [not_checked(diag, held_back.get(diag.file, [])) for diag in syntax]
    reader.check_recipients()
    reader.check_self_monitoring()
    problems = syntax + reader.diags.items
    if problems:
        raise CatalogError(locate(problems, root, root_name))
    return reader.catalog(files)
