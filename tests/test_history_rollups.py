"""The history pages' counts (amcompanion/history/rollups.py), kept by SQLite triggers: after every kind of write (a
seed, the receiver's alerts, acks, resolves and escalations, rows written out of order, a label that makes an
alert a drill, a prune, a mirror pass), they are what counting the rows again gives."""

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from amcompanion.history.prune import prune
from amcompanion.history.queries import QUERIES
from amcompanion.history.rollups import FIGURES, TABLE, flap_counts_from_rows, from_rows
from amcompanion.history.schema import MIGRATIONS, migrate, set_sla_targets
from amcompanion.history.seed import seed
from amcompanion.history.serve import bring_up_to_date
from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.receiver.timeutil import ManualClock, iso
from tests.receiver_support import AUTH, TOKEN, alert_payload, write_config
from tests.test_receiver import START

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def differences(conn: sqlite3.Connection) -> tuple[list[tuple], list[tuple]]:
    """The counts the triggers kept that counting the rows again does not give, and the other way round; the same
    for the flap counts. Zero counts are left out (they stay when rows go); totals to the thousandth."""
    kept = set(conn.execute("SELECT figure, grp, key, day, n, round(total, 3) FROM rollups WHERE n <> 0"))
    fresh: set[tuple] = set()
    for figure in FIGURES:
        fresh |= set(conn.execute(f"SELECT figure, grp, key, day, n, round(total, 3) FROM ({from_rows(figure)})"))
    flaps = set(conn.execute("SELECT * FROM flap_counts")) ^ set(conn.execute(flap_counts_from_rows()))
    return sorted(kept ^ fresh, key=repr)[:10], sorted(flaps)[:10]


def test_the_counts_follow_a_seed_changes_in_place_late_rows_drills_and_a_prune(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    seed(path, alerts=3000, days=10, now=NOW)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(DISTINCT figure) FROM rollups").fetchone()[0] == len(FIGURES)
    assert differences(conn) == ([], [])

    with conn:  # what the receiver does to rows in place: acknowledge, resolve, escalate; deliveries settle
        conn.execute(
            "UPDATE alerts SET status = 'acknowledged', acked_at = ?, acked_by = 'erin' WHERE status = 'firing'",
            [iso(NOW)],
        )
        conn.execute("UPDATE alerts SET status = 'resolved', resolved_at = ? WHERE id % 7 = 0", [iso(NOW)])
        conn.execute("UPDATE alerts SET escalation_level = escalation_level + 1, repeats = 1 WHERE id % 5 = 0")
        conn.execute("UPDATE notifications SET status = 'sent', sent_at = ?, attempts = 3 WHERE id % 3 = 0", [iso(NOW)])
    assert differences(conn) == ([], [])

    # a series' episodes written out of order (an earlier one arrives late), between and around its others
    fingerprint, latest = conn.execute(
        "SELECT fingerprint, MAX(starts_at) FROM alerts GROUP BY fingerprint ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()
    columns = "fingerprint, alertname, severity, labels, annotations, policy, status, starts_at, first_notice_at"
    with conn:
        for minutes in (1, 30, 61, 239, 241):
            start = iso(datetime.fromisoformat(latest.replace("Z", "+00:00")) - timedelta(minutes=minutes, seconds=7))
            conn.execute(
                f"INSERT INTO alerts ({columns}) SELECT {columns.replace('starts_at', '?')} FROM alerts"
                " WHERE fingerprint = ? AND starts_at = ?",
                [start, fingerprint, latest],
            )
        # a label that makes an alert a drill takes it out of the figures (and its series' windows)
        conn.execute(
            "UPDATE alerts SET labels = json_set(labels, '$.drill', 'true') WHERE fingerprint = ? AND starts_at = ?",
            [fingerprint, latest],
        )
    assert differences(conn) == ([], [])

    # the SLA targets change (the catalog's defaults.sla): what is counted against them is counted again
    set_sla_targets(conn, {"critical": (120, 600), "info": (3600, 86400)})
    conn.commit()
    assert differences(conn) == ([], [])
    sla = conn.execute(QUERIES["sla_breaches"].sql, {"since": "2000-01-01"}).fetchall()
    assert [(row[0], row[1]) for row in sla] == [("critical", 2.0), ("info", 60.0)]

    pruned = prune(path, NOW - timedelta(days=4))
    assert pruned["alerts"] > 500
    assert differences(conn) == ([], [])
    # groups whose alerts all went show no row with 0 alerts
    rows = conn.execute(QUERIES["mtta_mttr_by_severity"].sql, {"since": "2000-01-01"}).fetchall()
    counts = dict(conn.execute("SELECT severity, COUNT(*) FROM alert_times GROUP BY severity").fetchall())
    assert {row[0]: row[1] for row in rows} == counts
    conn.close()


async def test_the_receiver_keeps_the_counts_as_alerts_come_are_acknowledged_and_resolve(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_client
) -> None:
    path = tmp_path / "history.db"
    config = write_config(tmp_path, {"ops": "http://127.0.0.1:9/ops"})
    clock = ManualClock(START)
    client = await aiohttp_client(make_app(Receiver(load_receiver_config(config), Settings(str(path), TOKEN), clock)))
    for number in range(1, 4):
        body = alert_payload("firing", f"00000000000000a{number}")
        assert (await client.post("/webhook/oncall", json=body, headers=AUTH)).status == 200
    await clock.advance(100)
    assert (await client.post("/api/v1/alerts/1/ack", json={"by": "alice"}, headers=AUTH)).status == 200
    await clock.advance(600)  # the others escalate
    resolved = alert_payload("resolved", "00000000000000a2")
    assert (await client.post("/webhook/oncall", json=resolved, headers=AUTH)).status == 200
    conn = sqlite3.connect(path)
    try:
        assert differences(conn) == ([], [])
        by_person = conn.execute(QUERIES["mtta_by_person"].sql, {"since": "2000-01-01"}).fetchall()
        assert [(row[0], row[1], row[3]) for row in by_person] == [("alice", 1, 2.0)]  # 100 s: shown as 2 min
        assert conn.execute("SELECT SUM(n) FROM rollups WHERE figure = 'alerts'").fetchone() == (3,)
        assert conn.execute("SELECT SUM(n) FROM rollups WHERE figure = 'ack_by_severity'").fetchone() == (1,)
    finally:
        conn.close()


def test_a_history_of_the_previous_release_gains_the_counts_of_its_rows_before_the_pages_open(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    seed(path, alerts=500, days=5, now=NOW)  # then taken back to what the previous release had
    conn = sqlite3.connect(path)
    for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DROP TABLE rollups")
    conn.execute("DROP TABLE flap_counts")
    conn.execute(
        "CREATE INDEX notifications_history ON notifications (queued_at, channel, status, attempts, latency_seconds)"
    )
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm0008_rollups'")
    conn.commit()
    said: list[str] = []
    bring_up_to_date(path, said.append)
    assert said == [f"bringing {path} up to date first: m0008_rollups"]
    assert differences(conn) == ([], []) and conn.execute("SELECT COUNT(*) FROM rollups").fetchone()[0] > 100
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'notifications_history'").fetchall()
    bring_up_to_date(path, said.append)
    assert len(said) == 1  # nothing left to do: nothing said
    conn.close()


# Writes in any order: episodes of two series minutes to hours apart (their 4-hour windows overlap), some of them
# drills, acknowledged, resolved, escalated, relabelled or deleted later, in the order given.
WRITE = st.one_of(
    st.tuples(st.just("insert"), st.sampled_from("ab"), st.integers(0, 600), st.booleans()),
    st.tuples(st.just("ack"), st.integers(1, 40), st.integers(1, 7200)),
    st.tuples(st.just("resolve"), st.integers(1, 40), st.integers(1, 86400 * 2)),
    st.tuples(st.just("escalate"), st.integers(1, 40)),
    st.tuples(st.just("drill"), st.integers(1, 40), st.booleans()),
    st.tuples(st.just("delete"), st.integers(1, 40)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(WRITE, min_size=1, max_size=40))
def test_the_counts_are_what_the_rows_give_after_any_writes_in_any_order(writes: list[tuple]) -> None:
    conn = sqlite3.connect(":memory:")
    migrate(conn)
    start = datetime(2026, 11, 20, tzinfo=UTC)

    def at(seconds: float) -> str:
        return iso(start + timedelta(seconds=seconds))

    for write in writes:
        kind, *args = write
        if kind == "insert":
            series, minutes, drill = args
            labels = json.dumps({"alertname": "Flappy", "instance": series, **({"drill": "true"} if drill else {})})
            conn.execute(
                "INSERT OR IGNORE INTO alerts (fingerprint, alertname, severity, labels, annotations, policy, status,"
                " starts_at, first_notice_at) VALUES (?, 'Flappy', 'critical', ?, '{}', 'oncall', 'firing', ?, ?)",
                [series, labels, at(minutes * 60 + 0.25), at(minutes * 60 + 30)],
            )
        elif kind == "ack":
            conn.execute(
                "UPDATE alerts SET status = 'acknowledged', acked_by = 'alice',"
                " acked_at = strftime('%Y-%m-%dT%H:%M:%fZ', first_notice_at, ?) WHERE id = ?",
                [f"+{args[1]} seconds", args[0]],
            )
        elif kind == "resolve":
            conn.execute(
                "UPDATE alerts SET status = 'resolved', resolved_at = strftime('%Y-%m-%dT%H:%M:%fZ', starts_at, ?)"
                " WHERE id = ?",
                [f"+{args[1]} seconds", args[0]],
            )
        elif kind == "escalate":
            conn.execute("UPDATE alerts SET escalation_level = escalation_level + 1 WHERE id = ?", [args[0]])
        elif kind == "drill":
            conn.execute(
                "UPDATE alerts SET labels = json_set(labels, '$.drill', ?) WHERE id = ?",
                ["true" if args[1] else "false", args[0]],
            )
        else:
            conn.execute("DELETE FROM alerts WHERE id = ?", [args[0]])
    assert differences(conn) == ([], [])
    conn.close()


def test_the_pages_start_on_a_file_they_cannot_bring_up_to_date_and_say_why(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    conn = sqlite3.connect(path)
    MIGRATIONS.apply(Database(conn), stop_before="m0008_rollups")  # as the previous release left it
    conn.execute(TABLE)  # the receiver, starting at the same moment, is halfway through the same migration
    conn.commit()
    conn.close()
    said: list[str] = []
    bring_up_to_date(path, said.append)
    assert said == [
        f"bringing {path} up to date first: m0008_rollups",
        "could not (table rollups already exists): the receiver does when it starts; until then some pages cannot"
        " answer",
    ]
