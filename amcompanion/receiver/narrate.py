"""What the receiver tells its operator: one line per thing that happened to an alert.

Each event is a log record of the `amcompanion.events` logger with its facts in `record.fields`; the
formatter `serve` installs writes it as a sentence on a terminal and as one JSON object per line otherwise
(`--log-format`). The sentences are made here, once, so every part of the receiver reports alike.
A message that repeats (a channel's retries, one template's errors) is logged at most once a minute with
how many were held back, so a poison message cannot flood the log.
"""

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable

log = logging.getLogger("amcompanion.events")


class Throttle:
    """Lets a repeating message through once per `every` seconds per key, counting the ones held back."""

    def __init__(self, every: float = 60.0, keep: int = 1000, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self.keep = keep
        self.clock = clock
        self._seen: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()  # key → (logged at, held back since)

    def allow(self, key: Hashable) -> int | None:
        """How many were held back since the last one logged, when this one may be logged; else None."""
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.every:
            self._seen[key] = (last[0], last[1] + 1)
            return None
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > self.keep:
            self._seen.popitem(last=False)
        return last[1] if last is not None else 0


def emit(event: str, text: str, level: int = logging.INFO, **fields: object) -> None:
    log.log(level, text, extra={"event": event, "fields": fields})


def alert_name(alert_id: int, alertname: str, severity: str) -> str:
    """How an alert is named in a line: `HighMemory (critical) #12`."""
    return f"{alertname} ({severity}) #{alert_id}" if severity else f"{alertname} #{alert_id}"


def audience(channel: str, recipient: str) -> str:
    """`sms → alice`, or `ops-dingtalk → its group` for a channel's own audience."""
    return f"{channel} → {recipient or 'its group'}"


def received(alert_id: int, alertname: str, severity: str, policy: str) -> None:
    emit(
        "received",
        f"received {alert_name(alert_id, alertname, severity)} from Alertmanager, policy {policy}",
        alert_id=alert_id,
        alertname=alertname,
        severity=severity,
        policy=policy,
    )


def resolved(alert_id: int, alertname: str, severity: str, how: str) -> None:
    emit(
        "resolved",
        f"resolved {alert_name(alert_id, alertname, severity)} ({how})",
        alert_id=alert_id,
        alertname=alertname,
        severity=severity,
        how=how,
    )


def step(
    alert_id: int, alertname: str, severity: str, number: int, round_: int, reason: str, targets: Iterable
) -> None:
    targets = list(targets)
    repeat = f", repeat {round_}" if round_ else ""
    emit(
        "step",
        f"{alert_name(alert_id, alertname, severity)}: escalation step {number}{repeat} ({reason}): "
        + ", ".join(audience(channel, recipient) for channel, recipient in targets),
        alert_id=alert_id,
        alertname=alertname,
        step=number,
        round=round_,
        reason=reason,
        targets=[{"channel": channel, "recipient": recipient} for channel, recipient in targets],
    )


def acknowledged(alert_id: int, alertname: str, severity: str, by: str, via: str) -> None:
    emit(
        "acknowledged",
        f"{alert_name(alert_id, alertname, severity)} acknowledged by {by} (via {via}): escalation stopped",
        alert_id=alert_id,
        alertname=alertname,
        by=by,
        via=via,
    )


def delivery(
    status: str,
    channel: str,
    recipient: str,
    kind: str,
    alerts: list[tuple[int, str, str]],
    attempts: int,
    answer: str,
    retry_in: float | None = None,
) -> None:
    """A try's outcome: `sent`, `retry` (with the wait) or `failed` (with the reason)."""
    about = alert_name(*alerts[0]) if len(alerts) == 1 else f"a digest of {len(alerts)} alerts"
    what = {"resolved": "resolve notice", "acknowledged": "acknowledgement notice"}.get(kind, "page")
    where = audience(channel, recipient)
    if status == "sent":
        tries = f", try {attempts}" if attempts > 1 else ""
        text, level = f"sent {what} for {about}: {where} ({answer}{tries})", logging.INFO
    elif status == "retry":
        text, level = (
            f"{what} for {about} not delivered ({where}): {answer}; retry in {retry_in:.0f} s",
            logging.WARNING,
        )
    else:
        text, level = f"FAILED {what} for {about} ({where}) after {attempts} tries: {answer}", logging.ERROR
    emit(
        status,
        text,
        level,
        channel=channel,
        recipient=recipient,
        kind=kind,
        alert_ids=[alert_id for alert_id, _, _ in alerts],
        attempts=attempts,
        answer=answer,
        **({"retry_in": retry_in} if retry_in is not None else {}),
    )
