"""Alertmanager's webhook payload (version 4), parsed strictly where it matters and tolerantly elsewhere.

Unknown keys are ignored (newer Alertmanagers add `notification_reason`, `routeLabels`, ...); a missing
or mistyped field the receiver relies on is a 422 naming the field (a time outside what the history holds
too), malformed JSON a 400 (nesting too deep to parse too). A lone surrogate is replaced, not refused.
"""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from amcompanion.receiver.timeutil import iso

ZERO_TIME_YEAR = 1  # Go's zero time, 0001-01-01T00:00:00Z: Alertmanager's endsAt of a firing alert
# Where a lone surrogate can come from: a `\\ud800`-style escape, or one encoded in the bytes (json.loads lets both
# through). Only a body with one of these is walked, so that a clean body costs one regex scan.
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class PayloadError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class IncomingAlert:
    status: str  # firing | resolved
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str  # ISO-8601 UTC, the episode's identity together with the fingerprint
    ends_at: str | None
    generator_url: str

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True)
class Notification:
    receiver: str
    status: str
    group_key: str
    external_url: str
    alerts: list[IncomingAlert]
    truncated_alerts: int


def load_json(body: bytes) -> object:
    """A request's JSON (UTF-8), with every lone surrogate replaced by U+FFFD: SQLite cannot store one (nor UTF-8
    encode it), and an alert must not be refused for one bad character. PayloadError 400 when it is not JSON,
    or nested deeper than the parser can go."""
    try:
        text = body.decode("utf-8-sig", "surrogatepass")
        data = json.loads(text)
        return _without_lone_surrogates(data) if _MAYBE_SURROGATE.search(text) else data
    except RecursionError:
        raise PayloadError(400, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
        raise PayloadError(400, f"malformed JSON: {exc}") from None


def replace_lone_surrogates(text: str) -> str:
    """`text` with U+FFFD for each lone surrogate. A pair written as two escapes (an emoji, `\\ud83d\\ude00`) is
    already the character it encodes once parsed, so it stays."""
    return _SURROGATE.sub("\ufffd", text)


def _without_lone_surrogates(value: object) -> object:
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def parse_notification(body: bytes) -> Notification:
    data = load_json(body)
    if not isinstance(data, dict):
        raise PayloadError(422, f"expected a JSON object, got {type(data).__name__}")
    version = data.get("version")
    if version != "4":
        raise PayloadError(
            422, f"unsupported payload version {version!r}: this receiver reads Alertmanager's version 4"
        )
    alerts = _field(data, "alerts", list)
    if not alerts:
        raise PayloadError(422, "alerts: expected at least one alert")
    return Notification(
        receiver=_field(data, "receiver", str),
        status=_status(data, "status"),
        group_key=_field(data, "groupKey", str),
        external_url=data.get("externalURL") if isinstance(data.get("externalURL"), str) else "",
        alerts=[_alert(item, f"alerts[{i}]") for i, item in enumerate(alerts)],
        truncated_alerts=data.get("truncatedAlerts") if isinstance(data.get("truncatedAlerts"), int) else 0,
    )


def _alert(item: object, where: str) -> IncomingAlert:
    if not isinstance(item, dict):
        raise PayloadError(422, f"{where}: expected an object")
    status = _status(item, "status", where)
    labels = _strings(item, "labels", where)
    if not labels.get("alertname"):
        raise PayloadError(422, f"{where}.labels.alertname: required label is missing")
    fingerprint = _field(item, "fingerprint", str, where)
    if not fingerprint:
        raise PayloadError(422, f"{where}.fingerprint: must not be empty")
    starts_at = _time(item, "startsAt", where)
    if starts_at is None:
        raise PayloadError(422, f"{where}.startsAt: must be a real time, not Go's zero time")
    ends_at = _time(item, "endsAt", where) if item.get("endsAt") is not None else None
    return IncomingAlert(
        status=status,
        fingerprint=fingerprint,
        labels=labels,
        annotations=_strings(item, "annotations", where, required=False),
        starts_at=starts_at,
        ends_at=ends_at if status == "resolved" else None,
        generator_url=item.get("generatorURL") if isinstance(item.get("generatorURL"), str) else "",
    )


def _field(data: dict, key: str, kind: type, where: str = "") -> object:  # type: ignore[return]
    path = f"{where}.{key}" if where else key
    if key not in data or data[key] is None:
        raise PayloadError(422, f"{path}: required field is missing")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PayloadError(422, f"{path}: expected {_kind_name(kind)}, got {_json_type(value)}")
    return value


def _status(data: dict, key: str, where: str = "") -> str:
    value = _field(data, key, str, where)
    if value not in ("firing", "resolved"):
        path = f"{where}.{key}" if where else key
        raise PayloadError(422, f'{path}: expected "firing" or "resolved", got {value!r}')
    return value  # type: ignore[return-value]


def _strings(data: dict, key: str, where: str, required: bool = True) -> dict[str, str]:
    if not required and data.get(key) is None:
        return {}
    value = _field(data, key, dict, where)
    for name, text in value.items():  # type: ignore[attr-defined]
        if not isinstance(text, str):
            raise PayloadError(422, f"{where}.{key}.{name}: expected a string, got {_json_type(text)}")
    return dict(value)  # type: ignore[arg-type]


def _time(data: dict, key: str, where: str) -> str | None:
    text = _field(data, key, str, where)
    try:
        moment = datetime.fromisoformat(text)  # type: ignore[arg-type]
    except ValueError:
        raise PayloadError(422, f"{where}.{key}: {text!r} is not an RFC 3339 time") from None
    try:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is in the year 10000 in UTC, which the history cannot hold
        raise PayloadError(422, f"{where}.{key}: {text!r} is outside the years 0001 to 9999 in UTC") from None
    return None if moment.year == ZERO_TIME_YEAR else iso(moment)


def _kind_name(kind: type) -> str:
    return {str: "a string", list: "an array", dict: "an object"}.get(kind, kind.__name__)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _kind_name(type(value))
