"""What the console shows, read from the history: an alert as a card (who was paged where, the next step, the
on-call of its policy's schedules), an alert's timeline, who is on call. The same views go out in the event
stream, so a client that only listens stays as current as one that reloads."""

import functools
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from amcompanion.catalog import model
from amcompanion.receiver.timeutil import iso
from amcompanion.schedules import oncall

if TYPE_CHECKING:
    from amcompanion.receiver.service import Receiver

CARD_COLUMNS = (
    "id, alertname, severity, status, labels, annotations, starts_at, first_notice_at, acked_by, acked_at,"
    " resolved_at, resolved_by, policy, escalation_level, next_step_at"
)
CARD_LIMIT = 2000  # open alerts on one console page: past this, the filters narrow it
RECENTLY_RESOLVED = 20


def display_name(receiver: "Receiver", contact: str | None) -> str | None:
    return model.display_name(receiver.config.contacts, contact) if contact else None


def person(receiver: "Receiver", contact: str) -> dict:
    return {"contact": contact, "name": display_name(receiver, contact)}


def policy_schedules(receiver: "Receiver", policy: str) -> list[str]:
    """The schedules a policy's steps page, in order of first mention."""
    found = receiver.config.policies.get(policy)
    named = [t.schedule for step in (found.steps if found else []) for t in step.notify if t.schedule]
    return list(dict.fromkeys(name for name in named if name in receiver.config.schedules))


def alert_views(receiver: "Receiver") -> Callable[[sqlite3.Connection, list[int]], dict[int, dict]]:
    """The event hub's dresser: alert ids → cards, read on the hub's connection."""

    def dress(conn: sqlite3.Connection, ids: list[int]) -> dict[int, dict]:
        return cards(receiver, conn, ids, receiver.clock.now())

    return dress


def cards(receiver: "Receiver", conn: sqlite3.Connection, ids: list[int], now: datetime) -> dict[int, dict]:
    """The console's card of each alert of `ids`, in chunks small enough for SQLite's variable limit."""
    out: dict[int, dict] = {}
    on_call: dict[str, list[dict]] = {}  # schedule → people now, computed once per call
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT {CARD_COLUMNS} FROM alerts WHERE id IN ({marks})", chunk):
            out[row["id"]] = _card(receiver, row, now, on_call)
        pages = conn.execute(
            "SELECT alert_id, channel, recipient, status, step, error, COALESCE(sent_at, queued_at) AS at"
            f" FROM notifications WHERE alert_id IN ({marks}) AND kind = 'firing' AND status != 'cancelled'"
            " ORDER BY id",
            chunk,
        )
        for page in pages:
            out[page["alert_id"]]["paged"].append(
                {
                    "channel": page["channel"],
                    "recipient": page["recipient"],
                    "recipient_name": display_name(receiver, page["recipient"]),
                    "status": page["status"],
                    "step": page["step"],
                    "at": page["at"],
                    "error": page["error"],
                }
            )
    return out


def _card(receiver: "Receiver", row: sqlite3.Row, now: datetime, on_call: dict[str, list[dict]]) -> dict:
    labels = orjson.loads(row["labels"])
    annotations = orjson.loads(row["annotations"])
    policy = receiver.config.policies.get(row["policy"])
    schedules = policy_schedules(receiver, row["policy"]) if row["status"] != "resolved" else []
    for name in schedules:
        if name not in on_call:
            on_call[name] = [person(receiver, c) for c in receiver.store.roster.on_call(name, now)]  # type: ignore[union-attr]
    return {
        "id": row["id"],
        "alertname": row["alertname"],
        "severity": row["severity"],
        "status": row["status"],
        "service": labels.get("service", ""),
        "team": labels.get("team", ""),
        "summary": annotations.get("summary", "") or annotations.get("description", ""),
        "labels": labels,
        "starts_at": row["starts_at"],
        "first_notice_at": row["first_notice_at"],
        "acked_by": row["acked_by"],
        "acked_by_name": display_name(receiver, row["acked_by"]),
        "acked_at": row["acked_at"],
        "resolved_at": row["resolved_at"],
        "resolved_by": row["resolved_by"],
        "policy": row["policy"],
        "escalation_level": row["escalation_level"],
        "steps": len(policy.steps) if policy else row["escalation_level"],  # a policy the config lost: as far as it got
        "next_step_at": row["next_step_at"],
        "paged": [],
        "oncall": [{"schedule": name, "people": on_call[name]} for name in schedules],
    }


def snapshot(receiver: "Receiver", conn: sqlite3.Connection, now: datetime) -> dict:
    """Everything the console page starts from, with the id of the last event it includes (its stream resumes
    there, so nothing falls between the snapshot and the stream)."""
    (last,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
    open_ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM alerts WHERE status IN ('firing', 'acknowledged') ORDER BY starts_at DESC LIMIT ?",
            (CARD_LIMIT,),
        )
    ]
    resolved_ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM alerts WHERE status = 'resolved' ORDER BY resolved_at DESC LIMIT ?", (RECENTLY_RESOLVED,)
        )
    ]
    views = cards(receiver, conn, open_ids + resolved_ids, now)
    return {
        "last_event_id": last,
        "now": iso(now),
        "severities": list(reversed(receiver.config.severities)),  # most urgent first
        "alerts": [views[i] for i in open_ids],
        "resolved": [views[i] for i in resolved_ids],
        "oncall": who_is_on_call(receiver, now),
    }


def who_is_on_call(
    receiver: "Receiver", now: datetime, names: list[str] | None = None, upcoming: int = 1
) -> list[dict]:
    """Each schedule's people now, until when, and the next hand-offs."""
    out = []
    for name in names if names is not None else sorted(receiver.config.schedules):
        schedule = receiver.config.schedules[name]
        calendars, contacts = receiver.calendars.calendars(name), receiver.config.contacts
        found = oncall.duty(schedule, now, upcoming, calendars, contacts)
        following = found.upcoming
        out.append(
            {
                "schedule": name,
                "time_zone": schedule.time_zone,
                "people": [person(receiver, c) for c in (found.current.who if found.current else ())],
                "until": iso(found.until) if found.until else None,
                "next": {"people": [person(receiver, c) for c in following[0].who], "at": iso(following[0].start)}
                if following
                else None,
                "handoffs": [_shift(receiver, s) for s in following],
            }
        )
    return out


def _shift(receiver: "Receiver", shift: oncall.Shift) -> dict:
    people = [person(receiver, c) for c in shift.who]
    return {"people": people, "from": iso(shift.start), "to": iso(shift.end), "layer": shift.layer}


def timeline(receiver: "Receiver", conn: sqlite3.Connection, alert_id: int) -> list[dict]:
    """An alert's life in order: fired, each step and whom it paged, each delivery, the ack, the resolve."""
    alert = conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    name = functools.partial(display_name, receiver)
    entries = [
        (alert["first_notice_at"], 0, "fired", f"Fired ({alert['severity'] or 'no severity'}) to {alert['policy']}")
    ]
    for row in conn.execute("SELECT * FROM escalations WHERE alert_id = ? ORDER BY id", (alert_id,)):
        by = f" by {name(row['by'])}" if row["by"] else ""
        named = "; ".join(_named(receiver, n) for n in json.loads(row["oncall"] or "[]"))
        entries.append(
            (row["at"], 1, "escalated", f"Step {row['step']} ({row['reason']}{by})" + (f": {named}" if named else ""))
        )
    for row in conn.execute(
        "SELECT * FROM notifications WHERE alert_id = ? AND status IN ('sent', 'failed') ORDER BY id", (alert_id,)
    ):
        who = name(row["recipient"]) or "the channel's audience"
        notice = "resolve notice" if row["kind"] == "resolved" else f"step {row['step']}"
        if row["status"] == "sent":
            entries.append((row["sent_at"], 2, "paged", f"Sent to {who} by {row['channel']} ({notice})"))
        else:
            entries.append(
                (row["queued_at"], 2, "failed", f"Not delivered to {who} by {row['channel']}: {row['error']}")
            )
    for row in conn.execute("SELECT * FROM acks WHERE alert_id = ? ORDER BY id", (alert_id,)):
        comment = f": {row['comment']}" if row["comment"] else ""
        entries.append((row["at"], 3, "acknowledged", f"Acknowledged by {name(row['by'])} via {row['via']}{comment}"))
    if alert["resolved_at"]:
        by = f"by {name(alert['resolved_by'])}" if alert["resolved_by"] else "Alertmanager says so"
        entries.append((alert["resolved_at"], 4, "resolved", f"Resolved ({by})"))
    return [
        {"at": at, "what": what, "text": text}
        for at, _, what, text in sorted(entries, key=lambda e: (e[0] or "", e[1]))
    ]


def _named(receiver: "Receiver", named: dict) -> str:
    """`on call of infra-primary: Alice`, as a step's `oncall` record says whom its schedule named."""
    people = ", ".join(display_name(receiver, p) or p for p in named["people"]) or "nobody"
    fallback = f" ({named['fallback']})" if named.get("fallback") else ""
    return f"{named['who'].replace('_', ' ')} of {named['schedule']}: {people}{fallback}"
