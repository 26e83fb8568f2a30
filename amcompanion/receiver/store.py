"""What happens to the history when something happens: each method is one unit of work on a connection.

Methods take the connection first so that `Database.run(store.method, ...)` runs them inside the
database thread's transaction; together with the work they cause (escalation steps, outbox rows) they
commit or fail as one.
"""

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from amcompanion.catalog.model import Policy, Step
from amcompanion.drill.labels import DRILL_LABEL, is_drill
from amcompanion.history.schema import ALERT_COLUMNS
from amcompanion.receiver import events
from amcompanion.receiver.channels import CHANNEL_TYPES
from amcompanion.receiver.config import ReceiverConfig
from amcompanion.receiver.db import locking
from amcompanion.receiver.escalation import Due, next_due
from amcompanion.receiver.payload import IncomingAlert, Notification
from amcompanion.receiver.timeutil import iso, parse_iso
from amcompanion.schedules.roster import Named, Roster

STORED = ", ".join(ALERT_COLUMNS)  # not the history's computed columns: escalating needs none of them

_canonical_json = json.JSONEncoder(sort_keys=True).encode  # one encoder, not one per call as json.dumps(sort_keys=...)


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


@dataclass(frozen=True)
class StepTaken:
    """An escalation step as it was taken: for the log, once it is committed."""

    alert_id: int
    alertname: str
    severity: str
    step: int
    round: int
    reason: str  # first notice, deadline, repeat, manual, page failed
    targets: list[tuple[str, str]]  # (channel, recipient); recipient '' is the channel's own audience


@dataclass(frozen=True)
class Change:
    """An alert the receiver heard of for the first time, or heard resolve."""

    what: str  # "new" or "resolved"
    alert_id: int
    alertname: str
    severity: str


@dataclass
class IngestSummary:
    received: int = 0
    new: int = 0
    resolved: int = 0
    duplicates: int = 0
    queued: int = 0  # outbox rows written
    next_deadline: datetime | None = None  # the earliest step deadline this notification set
    statuses: list[str] = field(default_factory=list)  # of every alert received, for the metrics
    changes: list[Change] = field(default_factory=list)
    taken: list[StepTaken] = field(default_factory=list)  # escalation steps taken (the first, when due at once)


@dataclass
class Store:
    config: ReceiverConfig
    give_up_after: timedelta = timedelta(hours=1)  # a notification not delivered by then is marked failed
    escalation_batch: int = 500  # alerts stepped per escalate_due call
    roster: Roster | None = None  # whom schedules name; None: from the config's schedules, without iCal sources

    def __post_init__(self) -> None:
        if self.roster is None:
            self.roster = Roster(self.config.schedules, self.config.contacts, self.config.people)

    @property
    def syncing(self) -> frozenset[str]:
        """The channels told of acks and resolves, by the config in use (a reload may add or remove one)."""
        return syncing_channels(self.config.channels)

    # -- Alertmanager -------------------------------------------------------------------------
    def ingest(self, conn: sqlite3.Connection, policy: str, note: Notification, now: datetime) -> IngestSummary:
        summary = IngestSummary()
        stamp = iso(now)
        for alert in note.alerts:
            summary.received += 1
            summary.statuses.append(alert.status)
            first_due = next_due(self.config.policies[policy], now, 0, 0) if alert.status == "firing" else None
            alert_id = self._insert(conn, policy, note, alert, stamp, iso(first_due.at) if first_due else None)
            created = alert_id is not None
            if created:
                summary.new += 1
                summary.changes.append(Change("new", alert_id, alert.alertname, alert.labels.get("severity", "")))
                events.record(conn, "alert.firing" if alert.status == "firing" else "alert.resolved", alert_id, now)
                known_status = "resolved" if alert.status == "resolved" else "firing"
            else:
                alert_id, known_status = conn.execute(
                    "SELECT id, status FROM alerts WHERE fingerprint = ? AND starts_at = ?"
                    + (locking(conn) if alert.status == "resolved" else ""),  # resolving changes the row
                    (alert.fingerprint, alert.starts_at),
                ).fetchone()
            event = conn.execute(
                "INSERT OR IGNORE INTO alert_events (alert_id, status, received_at, group_key, receiver, policy)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (alert_id, alert.status, stamp, note.group_key, note.receiver, policy),
            )
            if not event.rowcount:  # a replay, an HA duplicate, a repeat_interval resend: already recorded
                summary.duplicates += 1
                continue
            if alert.status == "firing" and created and first_due is not None:
                deadline: datetime | None = first_due.at
                if first_due.at <= now:  # the first step is due at once: take it in this transaction
                    fresh = {
                        "id": alert_id,
                        "alertname": alert.alertname,
                        "severity": alert.labels.get("severity", ""),
                        "policy": policy,
                        "labels": alert.labels,
                        "first_notice_at": stamp,
                        "escalation_level": 0,
                        "repeats": 0,
                    }
                    queued, deadline = self._take_due_steps(conn, fresh, now, "first notice", summary.taken)
                    summary.queued += queued
                if deadline is not None and (summary.next_deadline is None or deadline < summary.next_deadline):
                    summary.next_deadline = deadline
            elif alert.status == "resolved" and known_status != "resolved":
                summary.resolved += 1
                summary.changes.append(Change("resolved", alert_id, alert.alertname, alert.labels.get("severity", "")))
                events.record(conn, "alert.resolved", alert_id, now, by="Alertmanager")
                summary.queued += self._close(conn, alert_id, now, alert.ends_at or stamp)
        return summary

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        policy: str,
        note: Notification,
        alert: IncomingAlert,
        stamp: str,
        first_step_at: str | None,
    ) -> int | None:
        """The new alert's id; None when the episode is already known."""
        resolved = alert.status == "resolved"  # heard of only once it was over (out of order, or a restart)
        cursor = conn.execute(
            "INSERT INTO alerts (fingerprint, alertname, severity, labels, annotations, policy, status, starts_at,"
            " ends_at, resolved_at, first_notice_at, next_step_at, generator_url, group_key, alertmanager_url)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (fingerprint, starts_at) DO NOTHING",
            (
                alert.fingerprint,
                alert.alertname,
                alert.labels.get("severity", ""),
                _canonical_json(alert.labels),
                _canonical_json(alert.annotations),
                policy,
                "resolved" if resolved else "firing",
                alert.starts_at,
                alert.ends_at,
                stamp if resolved else None,
                stamp,
                first_step_at,
                alert.generator_url,
                note.group_key,
                note.external_url,
            ),
        )
        return cursor.lastrowid if cursor.rowcount else None

    # -- escalation ---------------------------------------------------------------------------
    def escalate_due(self, conn: sqlite3.Connection, now: datetime) -> tuple[list[StepTaken], datetime | None]:
        """Take the steps that have come due, the oldest first and at most escalation_batch alerts' worth (the
        event loop waits while this runs: after a long outage the catch-up goes in slices); return the steps
        taken and the next deadline, which is in the past while more are due. Receivers sharing the database each take
        the alerts the others are not stepping (SKIP LOCKED), so each step is taken once."""
        taken: list[StepTaken] = []
        due = conn.execute(
            f"SELECT {STORED} FROM alerts WHERE next_step_at IS NOT NULL AND next_step_at <= ? AND status = 'firing'"
            " ORDER BY next_step_at LIMIT ?" + locking(conn, skip_locked=True),
            (iso(now), self.escalation_batch),
        ).fetchall()
        for row in due:
            self._take_due_steps(conn, row, now, "deadline", taken)
        return taken, self.next_deadline(conn)

    @staticmethod
    def next_deadline(conn: sqlite3.Connection) -> datetime | None:
        """When the next escalation step of a firing alert comes due (in the past when one is overdue)."""
        (earliest,) = conn.execute(
            "SELECT MIN(next_step_at) FROM alerts WHERE next_step_at IS NOT NULL AND status = 'firing'"
        ).fetchone()
        return parse_iso(earliest) if earliest else None

    def _escalating(self, row: Mapping[str, Any]) -> Policy | None:
        """The policy an alert follows; a drill's takes only the first step: it proves the path, it does not wake
        the next level (None when the policy left the config)."""
        policy = self.config.policies.get(row["policy"])
        labels = row["labels"]  # the stored JSON, or the incoming alert's labels at its first notice
        if isinstance(labels, str):
            labels = json.loads(labels) if f'"{DRILL_LABEL}"' in labels else {}
        if policy is None or not is_drill(labels):
            return policy
        return replace(policy, steps=policy.steps[:1], repeat_every_ms=None, repeat_times=0)

    def _take_due_steps(
        self, conn: sqlite3.Connection, row: Mapping[str, Any], now: datetime, reason: str, taken: list[StepTaken]
    ) -> tuple[int, datetime | None]:
        """Each step whose deadline has passed, once; missed repetitions of the last step collapse into one.
        Appends the steps to `taken`; returns the outbox rows written and the next deadline."""
        alert_id = row["id"]
        policy = self._escalating(row)
        if policy is None:  # the policy left the config (a reload): the alert stays, it no longer escalates
            conn.execute("UPDATE alerts SET next_step_at = NULL WHERE id = ?", (alert_id,))
            return 0, None
        first_notice = parse_iso(row["first_notice_at"])
        level, repeats = row["escalation_level"], row["repeats"]
        queued = 0
        due = next_due(policy, first_notice, level, repeats)
        while due is not None and due.at <= now:
            following = next_due(policy, first_notice, due.step, due.round)
            if due.round and following is not None and following.at <= now:
                due = following  # a later repetition is also due: send only that one
                continue
            queued += self._step(conn, row, policy, due, level, now, reason, taken)
            level, repeats = due.step, due.round
            due = following
        conn.execute(
            "UPDATE alerts SET escalation_level = ?, repeats = ?, next_step_at = ? WHERE id = ?",
            (level, repeats, iso(due.at) if due else None, alert_id),
        )
        return queued, due.at if due else None

    def _step(
        self,
        conn: sqlite3.Connection,
        alert: Mapping[str, Any],
        policy: Policy,
        due: Due,
        from_level: int,
        now: datetime,
        reason: str,
        taken: list[StepTaken],
        by: str | None = None,
    ) -> int:
        reason = "repeat" if due.round and reason == "deadline" else reason
        targets, named = self.targets(policy.steps[due.step - 1], now)
        oncall = json.dumps([n.recorded() for n in named]) if named else None
        conn.execute(
            "INSERT INTO escalations (alert_id, step, from_level, to_level, reason, at, by, oncall)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (alert["id"], due.step, from_level, due.step, reason, iso(now), by, oncall),
        )
        events.record(
            conn, "alert.escalated", alert["id"], now, step=due.step, round=due.round, reason=reason, by=by,
            targets=[{"channel": c, "recipient": r} for c, r in targets], oncall=[n.recorded() for n in named],
        )  # fmt: skip
        taken.append(
            StepTaken(alert["id"], alert["alertname"], alert["severity"], due.step, due.round, reason, targets)
        )
        return self._enqueue(conn, alert["id"], "firing", due.step, due.round, targets, now)

    def _advance(
        self,
        conn: sqlite3.Connection,
        row: Mapping[str, Any],
        now: datetime,
        reason: str,
        taken: list[StepTaken],
        repetition: bool = True,
        by: str | None = None,
    ) -> int | None:
        """Take the alert's next step now, whatever its deadline; the outbox rows written, or None when the
        policy has no step left (or is gone), or, unless `repetition`, when what comes next only repeats the
        last step. Later deadlines keep to the policy's clock."""
        policy = self._escalating(row)
        first_notice = parse_iso(row["first_notice_at"])
        due = next_due(policy, first_notice, row["escalation_level"], row["repeats"]) if policy else None
        if policy is None or due is None or (due.round and not repetition):
            return None
        queued = self._step(conn, row, policy, due, row["escalation_level"], now, reason, taken, by)
        following = next_due(policy, first_notice, due.step, due.round)
        conn.execute(
            "UPDATE alerts SET escalation_level = ?, repeats = ?, next_step_at = ? WHERE id = ?",
            (due.step, due.round, iso(max(following.at, now)) if following else None, row["id"]),
        )
        return queued

    def page_failed(
        self, conn: sqlite3.Connection, failed: list[tuple[int, int, int]], now: datetime
    ) -> list[StepTaken]:
        """Pages that failed for good, as (alert id, step, round): for each alert still firing whose current
        step failed, take the next step at once (the policy's `on_failure: next_step`, the default), since
        someone it was meant to reach may not have been reached. Repetitions of the last step keep their
        deadlines: repeating at once what just failed would only spend them."""
        taken: list[StepTaken] = []
        for alert_id, step, round_ in dict.fromkeys(failed):
            row = conn.execute(f"SELECT {STORED} FROM alerts WHERE id = ?" + locking(conn), (alert_id,)).fetchone()
            policy = self.config.policies.get(row["policy"]) if row else None
            if row is None or policy is None or policy.on_failure != "next_step" or row["status"] != "firing":
                continue
            if (row["escalation_level"], row["repeats"]) == (step, round_):  # not a step already left behind
                self._advance(conn, row, now, "page failed", taken, repetition=False)
        return taken

    def _enqueue(
        self,
        conn: sqlite3.Connection,
        alert_id: int,
        kind: str,
        step: int,
        round_: int,
        targets: list[tuple[str, str]],
        now: datetime,
    ) -> int:
        stamp, give_up = iso(now), iso(now + self.give_up_after)
        written = 0
        for channel, recipient in dict.fromkeys(targets):
            written += conn.execute(
                "INSERT OR IGNORE INTO notifications (alert_id, kind, channel, recipient, step, round, status,"
                " queued_at, next_attempt_at, give_up_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (alert_id, kind, channel, recipient, step, round_, stamp, stamp, give_up),
            ).rowcount
        return written

    def _close(self, conn: sqlite3.Connection, alert_id: int, now: datetime, ends_at: str) -> int:
        """Resolve: stop escalating, drop pages not yet sent, and tell those who were paged, once."""
        row = conn.execute(f"SELECT {STORED} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = ?, ends_at = ?, next_step_at = NULL WHERE id = ?",
            (iso(now), ends_at, alert_id),
        )
        self._cancel_pending(conn, alert_id, "the alert resolved before it was sent")
        policy = self.config.policies.get(row["policy"])
        mode = policy.on_resolve if policy else "none"
        if mode == "notify_previous":
            targets = [
                (r["channel"], r["recipient"])
                for r in conn.execute(
                    "SELECT channel, recipient FROM notifications WHERE alert_id = ? AND kind = 'firing'"
                    " AND status = 'sent' GROUP BY channel, recipient ORDER BY MIN(id)",
                    (alert_id,),
                )
            ]
        elif mode == "notify_all" and policy is not None:
            targets = [target for step in policy.steps for target in self.targets(step, now)[0]]
        else:
            targets = []
        targets += self._synced(conn, alert_id)  # an incident tool's incident is closed whatever `on_resolve` says
        targets = [t for t in targets if self.config.channels.get(t[0], {}).get("send_resolved", True)]
        return self._enqueue(conn, alert_id, "resolved", 0, 0, targets, now)

    def _synced(self, conn: sqlite3.Connection, alert_id: int) -> list[tuple[str, str]]:
        """The channels keeping an incident of their own (PagerDuty) that this alert opened one in."""
        syncing = self.syncing
        if not syncing:
            return []
        marks = ", ".join("?" * len(syncing))
        return [
            (r["channel"], r["recipient"])
            for r in conn.execute(
                "SELECT channel, recipient FROM notifications WHERE alert_id = ? AND kind = 'firing'"
                f" AND status = 'sent' AND channel IN ({marks}) GROUP BY channel, recipient ORDER BY MIN(id)",
                (alert_id, *sorted(syncing)),
            )
        ]

    def sent_after_close(
        self, conn: sqlite3.Connection, alert_id: int, channel: str, recipient: str, now: datetime
    ) -> None:
        """A page that was on its way when its alert resolved got there after all: its reader is owed the resolve
        notice that `_close` could not know to queue (it goes after the page: rows of one reader wait in turn)."""
        row = conn.execute("SELECT status, policy FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        policy = self.config.policies.get(row["policy"]) if row else None
        if row is None or row["status"] != "resolved" or policy is None or policy.on_resolve != "notify_previous":
            return
        if self.config.channels.get(channel, {}).get("send_resolved", True):
            self._enqueue(conn, alert_id, "resolved", 0, 0, [(channel, recipient)], now)

    @staticmethod
    def _cancel_pending(conn: sqlite3.Connection, alert_id: int, why: str) -> None:
        conn.execute(
            "UPDATE notifications SET status = 'cancelled', error = ?"
            " WHERE alert_id = ? AND kind = 'firing' AND status = 'queued'",
            (why, alert_id),
        )

    # -- people -------------------------------------------------------------------------------
    @staticmethod
    def ack(conn: sqlite3.Connection, alert_id: int, by: str, via: str, comment: str, now: datetime) -> dict:
        """Acknowledge: stop escalating at once. Needs no config, so `amcompanion ack` can call it directly.
        An alert acknowledged before keeps its first acknowledgement (`already_acknowledged` says so)."""
        row = Store._alert_row(conn, alert_id, lock=True)
        if row["status"] == "resolved":
            raise Conflict(f"alert {alert_id} is already resolved")
        if row["status"] == "firing":
            conn.execute(
                "UPDATE alerts SET status = 'acknowledged', acked_at = ?, acked_by = ?, next_step_at = NULL"
                " WHERE id = ?",
                (iso(now), by, alert_id),
            )
            conn.execute(
                "INSERT INTO acks (alert_id, by, via, comment, at) VALUES (?, ?, ?, ?, ?)",
                (alert_id, by, via, comment, iso(now)),
            )
            Store._cancel_pending(conn, alert_id, f"acknowledged by {by} before it was sent")
            events.record(conn, "alert.acknowledged", alert_id, now, by=by, via=via, comment=comment)
        return {**Store.alert(conn, alert_id), "already_acknowledged": row["status"] == "acknowledged"}

    def acknowledge(
        self, conn: sqlite3.Connection, alert_id: int, by: str, via: str, comment: str, now: datetime
    ) -> dict:
        """`ack`, and the incident tools this alert opened an incident in are told (`queued`: how many)."""
        alert = self.ack(conn, alert_id, by, via, comment, now)
        queued = 0
        if not alert["already_acknowledged"]:
            queued = self._enqueue(conn, alert_id, "acknowledged", 0, 0, self._synced(conn, alert_id), now)
        return {**alert, "queued": queued}

    def resolve(
        self, conn: sqlite3.Connection, alert_id: int, now: datetime, by: str | None = None
    ) -> tuple[dict, int | None]:
        """Close it by hand (by `by`); the resolve notices queued, or None when it was resolved already."""
        row = self._alert_row(conn, alert_id, lock=True)
        queued = None
        if row["status"] != "resolved":
            queued = self._close(conn, alert_id, now, iso(now))
            conn.execute("UPDATE alerts SET resolved_by = ? WHERE id = ?", (by, alert_id))
            events.record(conn, "alert.resolved", alert_id, now, by=by)
        return self.alert(conn, alert_id), queued

    def escalate(
        self, conn: sqlite3.Connection, alert_id: int, now: datetime, by: str | None = None
    ) -> tuple[dict, list[StepTaken]]:
        """Take the next step now (asked by `by`), whatever its deadline."""
        row = self._alert_row(conn, alert_id, lock=True)
        if row["status"] != "firing":
            raise Conflict(f"alert {alert_id} is {row['status']}: only a firing alert escalates")
        taken: list[StepTaken] = []
        if self._advance(conn, row, now, "manual", taken, by=by) is None:
            raise Conflict(f"alert {alert_id} has taken every step of its escalation policy")
        return self.alert(conn, alert_id), taken

    # -- reading ------------------------------------------------------------------------------
    @staticmethod
    def _alert_row(conn: sqlite3.Connection, alert_id: int, lock: bool = False) -> sqlite3.Row:
        """The alert's row; with `lock`, held until the transaction ends (the job goes on to change it)."""
        query = "SELECT * FROM alerts WHERE id = ?" + (locking(conn) if lock else "")
        row = conn.execute(query, (alert_id,)).fetchone()
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        return row

    @staticmethod
    def alerts(conn: sqlite3.Connection, state: str | None, limit: int, failed: bool = False) -> list[dict]:
        """The newest alerts (in `state`; only those with a page that failed, when `failed`), each with whom it
        paged (`paged`: the pages delivered) and the pages that failed (`failed`, with the reason)."""
        conditions = (["status = ?"] if state else []) + (
            ["id IN (SELECT alert_id FROM notifications WHERE status = 'failed')"] if failed else []
        )
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = conn.execute(
            f"SELECT * FROM alerts{where} ORDER BY starts_at DESC, id DESC LIMIT ?",
            (*([state] if state else []), limit),
        )
        alerts = {row["id"]: {**_alert_dict(row), "paged": [], "failed": []} for row in rows}
        if not alerts:  # (PostgreSQL has no `IN ()`)
            return []
        marks = ",".join("?" * len(alerts))
        deliveries = conn.execute(
            "SELECT alert_id, channel, recipient, status, error FROM notifications"
            f" WHERE alert_id IN ({marks}) AND kind = 'firing' AND status IN ('sent', 'failed') ORDER BY id",
            list(alerts),
        )
        for row in deliveries:
            target = {"channel": row["channel"], "recipient": row["recipient"]}
            if row["status"] == "failed":
                alerts[row["alert_id"]]["failed"].append({**target, "error": row["error"]})
            elif target not in alerts[row["alert_id"]]["paged"]:
                alerts[row["alert_id"]]["paged"].append(target)
        return list(alerts.values())

    @staticmethod
    def alert(conn: sqlite3.Connection, alert_id: int) -> dict:
        out = _alert_dict(Store._alert_row(conn, alert_id))
        for key, table in (
            ("events", "alert_events"),
            ("notifications", "notifications"),
            ("escalations", "escalations"),
            ("acks", "acks"),
        ):
            rows = conn.execute(f"SELECT * FROM {table} WHERE alert_id = ? ORDER BY id", (alert_id,))
            out[key] = [{k: v for k, v in dict(row).items() if k != "alert_id"} for row in rows]
        # everything that happened to it, in order, as the event stream told it (a page's answer is only here)
        logged = conn.execute("SELECT type, at, data FROM events WHERE alert_id = ? ORDER BY id", (alert_id,))
        out["event_log"] = [{"type": row["type"], "at": row["at"], **json.loads(row["data"])} for row in logged]
        return out

    def targets(self, step: Step, now: datetime) -> tuple[list[tuple[str, str]], list[Named]]:
        """(channel, recipient) of every message a step sends at `now` ('' is a channel's own audience, a group
        robot), and whom each of its schedule targets named."""
        assert self.roster is not None
        out: list[tuple[str, str]] = []
        named: list[Named] = []
        for target in step.notify:
            if target.schedule is None:
                out += [(str(target.channel), recipient) for recipient in (target.to or [""])]
                continue
            pages, found = self.roster.reach(target, now, self.config.channels)
            out += pages
            named.append(found)
        return out, named


def syncing_channels(channels: dict[str, dict[str, object]]) -> frozenset[str]:
    """The channels whose type keeps an incident in step with the alert (`syncs_acks`: told of acks and resolves)."""
    return frozenset(
        name
        for name, settings in channels.items()
        if getattr(CHANNEL_TYPES.get(str(settings.get("type"))), "syncs_acks", False)
    )


def _alert_dict(row: sqlite3.Row) -> dict:
    out = dict(row)
    out["labels"] = json.loads(out["labels"])
    out["annotations"] = json.loads(out["annotations"])
    return out
