"""The history schema's migrations: recorded once each, forward from the first release, refused when newer."""

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from amcompanion.cli import main as amcompanion
from amcompanion.history import schema
from amcompanion.history.schema import ALERT_COLUMNS, NAMES, RECEIVER_TABLES, NewerDatabase, migrate
from amcompanion.receiver.db import connect
from tests.receiver_support import write_config


def applied(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")]


def test_a_new_database_gets_every_migration_once(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "h.db"))
    migrate(conn)
    migrate(conn)
    assert (
        applied(conn)
        == NAMES
        == [
            "m0001_receiver_tables",
            "m0002_history",
            "m0003_delivery_problems",
            "m0004_people_and_events",
            "m0005_acknowledged_notices",
            "m0006_shared_work",
            "m0007_drills_and_arrivals",
            "m0008_rollups",
        ]
    )
    assert dict(conn.execute("SELECT severity, ack_seconds FROM sla_targets").fetchall()) == {
        "critical": 300,
        "warning": 900,
    }
    # what the receiver reads back is every stored column, none of the computed ones
    assert [row[1] for row in conn.execute("PRAGMA table_info(alerts)")] == list(ALERT_COLUMNS)
    computed = [row[1] for row in conn.execute("PRAGMA table_xinfo(alerts)") if row[6]]
    assert computed == ["service", "ack_seconds", "resolve_seconds", "wait_seconds", "drill"]


def test_a_database_of_the_first_release_keeps_its_rows_and_gains_the_history_columns(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "h.db"))
    for statement in RECEIVER_TABLES:  # as the first release left it: its tables, no migrations table
        conn.execute(statement)
    conn.execute(
        "INSERT INTO alerts (fingerprint, alertname, labels, annotations, policy, status, starts_at, first_notice_at,"
        " acked_at, resolved_at) VALUES ('f1', 'DiskFull', '{\"service\": \"db\"}', '{}', 'p', 'resolved',"
        " '2026-11-20T10:00:00.000000Z', '2026-11-20T10:00:30.000000Z', '2026-11-20T10:02:30.000000Z',"
        " '2026-11-20T10:30:00.000000Z')"
    )
    migrate(conn)
    assert applied(conn) == NAMES
    row = conn.execute("SELECT service, ack_seconds, resolve_seconds FROM alert_times").fetchone()
    assert (row[0], round(row[1], 3), round(row[2], 3)) == ("db", 120.0, 1800.0)
    indexes = {i.name for i in Database(conn)["alerts"].indexes}
    assert "alerts_history" in indexes


def test_notifications_made_again_for_the_acknowledged_kind_keep_rows_columns_and_indexes(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "h.db"))
    db = Database(conn)
    for earlier in (schema.m0001_receiver_tables, schema.m0002_history, schema.m0003_delivery_problems,
                    schema.m0004_people_and_events):  # fmt: skip
        earlier(db)  # the schema as m0004 left it, then a page in the table m0005 makes again
    conn.execute(
        "INSERT INTO alerts (id, fingerprint, alertname, labels, annotations, policy, status, starts_at,"
        " first_notice_at) VALUES (1, 'f', 'A', '{}', '{}', 'p', 'firing', '2026-11-20T10:00:00.000000Z',"
        " '2026-11-20T10:00:00.000000Z')"
    )
    conn.execute(
        "INSERT INTO notifications (alert_id, kind, channel, recipient, step, status, queued_at, sent_at,"
        " next_attempt_at, give_up_at, template_error) VALUES (1, 'firing', 'pd', '', 1, 'sent',"
        " '2026-11-20T10:00:00.000000Z', '2026-11-20T10:00:02.000000Z', 'x', 'y', 'kept')"
    )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO notifications (alert_id, kind, channel, recipient, step, status, queued_at,"
            " next_attempt_at, give_up_at) VALUES (1, 'acknowledged', 'pd', '', 0, 'queued', 'x', 'x', 'y')"
        )
    indexes = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'notifications'"))
    schema.m0005_acknowledged_notices(db)
    row = conn.execute("SELECT kind, template_error, latency_seconds FROM notifications").fetchone()
    assert (row[0], row[1], round(row[2], 3)) == ("firing", "kept", 2.0)
    conn.execute(
        "INSERT INTO notifications (alert_id, kind, channel, recipient, step, status, queued_at,"
        " next_attempt_at, give_up_at) VALUES (1, 'acknowledged', 'pd', '', 0, 'queued', 'x', 'x', 'y')"
    )
    after = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'notifications'"))
    assert after == indexes and "notifications_failed" in after


def test_a_database_migrated_by_a_newer_release_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    conn = connect(str(tmp_path / "h.db"))
    migrate(conn)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('amcompanion', 'm0099_future', 'x')"
    )
    with pytest.raises(NewerDatabase, match=r"migrated by a newer amcompanion \(m0099_future\)"):
        migrate(conn)
    conn.close()

    # the commands that open the history say so in one line, without a traceback
    config = write_config(tmp_path, {"ops": "http://127.0.0.1:1/ops"})
    db = str(tmp_path / "h.db")
    for argv in (
        ["serve", "--config", str(config), "--db", db, "--listen", "127.0.0.1:0", "--insecure-no-auth"],
        ["history", "prune", "--older-than", "90d", "--db", db],
    ):
        assert amcompanion(argv) == 1, argv
        assert "the database was migrated by a newer amcompanion (m0099_future)" in capsys.readouterr().err
