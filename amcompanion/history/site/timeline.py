"""An alert's story, in order, for its page: fired, reached the receiver, each escalation step and each page with its
channel and the channel's answer, the acknowledgement (who, how), the resolution. Pure: rows in, steps out."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from amcompanion.history.words import duration_words, local_time, moment

Row = Mapping[str, Any]
# At one moment, what happens first: a step is taken, then its pages go out
ORDER = {"started": 0, "arrived": 1, "escalation": 2, "page": 3, "ack": 4, "resolved": 5, "told": 6}


@dataclass(frozen=True)
class Step:
    at: str  # as stored (UTC); `shown` is it in the display time zone
    shown: str
    kind: str  # a key of ORDER
    title: str
    detail: str = ""
    state: str = ""  # sent, failed, queued, cancelled: how a page went


def _after(start: str, end: str) -> str:
    return duration_words((moment(end) - moment(start)).total_seconds())


def _audience(recipient: str) -> str:
    return recipient or "the channel's own audience"


def _page(row: Row, first_notice: str, answer_of: Mapping[tuple[str, str, str], str]) -> tuple[str, str, str]:
    """Title, the channel's answer, state. `answer_of`: what the channel answered a message that went out ("HTTP
    200", "SMTP 250"), by (channel, recipient, kind), as the receiver logged it in its events."""
    tries = f"{row['attempts']} {'try' if row['attempts'] == 1 else 'tries'}"
    if row["kind"] == "firing":
        round_ = f", round {row['round'] + 1}" if row["round"] else ""
        title = f"Paged {_audience(row['recipient'])} via {row['channel']} (step {row['step']}{round_})"
    else:
        told = "resolved" if row["kind"] == "resolved" else "acknowledged"
        title = f"Told {_audience(row['recipient'])} via {row['channel']} that it was {told}"
    if row["status"] == "sent":
        said = answer_of.get((row["channel"], row["recipient"], row["kind"]))
        answer = f"delivered{f' ({said})' if said else ''} in {duration_words(row['latency_seconds'])}, {tries}"
        if row["kind"] == "firing":
            answer += f"; {_after(first_notice, row['sent_at'])} after the first notice"
    elif row["status"] == "failed":
        answer = f"failed after {tries}: {row['error'] or 'no answer recorded'}"
    elif row["status"] == "queued":
        answer = f"not delivered yet ({tries} so far{': ' + row['error'] if row['error'] else ''})"
    else:
        answer = "cancelled before it was sent (acknowledged or resolved first)"
    if row.get("template_error"):
        answer += f"; sent with the default template (its own failed: {row['template_error']})"
    return title, answer, row["status"]


def _oncall(text: str | None) -> str:
    named = json.loads(text) if text else []
    return "; ".join(f"{n.get('schedule')}: {', '.join(n.get('people') or [n.get('who', '?')])}" for n in named)


def answers(events: Sequence[Row]) -> dict[tuple[str, str, str], str]:
    """The channels' answers from the alert's `notification.sent` events (the last one of a message counts)."""
    out = {}
    for row in events:
        data = json.loads(row["data"])
        if data.get("answer"):
            out[(data["channel"], data["recipient"], data["kind"])] = data["answer"]
    return out


def timeline(
    alert: Row,
    escalations: Sequence[Row],
    notifications: Sequence[Row],
    acks: Sequence[Row],
    zone: tzinfo,
    answer_of: Mapping[tuple[str, str, str], str] | None = None,
) -> list[Step]:
    first = alert["first_notice_at"]
    steps = [
        Step(alert["starts_at"], "", "started", "Started firing", "startsAt, as Alertmanager reported it"),
        Step(first, "", "arrived", "Reached the receiver", f"{_after(alert['starts_at'], first)} after it started"),
    ]
    for row in escalations:
        why = row["reason"] + (f" by {row['by']}" if row.get("by") else "")
        named = _oncall(row.get("oncall"))
        detail = f"{why}; on call: {named}" if named else why
        steps.append(Step(row["at"], "", "escalation", f"Escalation step {row['step']}", detail))
    for row in notifications:
        title, answer, state = _page(row, first, answer_of or {})
        steps.append(Step(row["queued_at"], "", "page" if row["kind"] == "firing" else "told", title, answer, state))
    for row in acks:
        comment = f" — “{row['comment']}”" if row["comment"] else ""
        detail = f"{_after(first, row['at'])} after the first notice{comment}"
        steps.append(Step(row["at"], "", "ack", f"Acknowledged by {row['by']} via {row['via']}", detail))
    if alert["resolved_at"]:
        by = f" by {alert['resolved_by']}" if alert.get("resolved_by") else ""
        detail = f"{_after(alert['starts_at'], alert['resolved_at'])} after it started"
        steps.append(Step(alert["resolved_at"], "", "resolved", f"Resolved{by}", detail))
    steps.sort(key=lambda s: (moment(s.at), ORDER[s.kind]))
    return [Step(s.at, local_time(s.at, zone), s.kind, s.title, s.detail, s.state) for s in steps]
