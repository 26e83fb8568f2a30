"""`amcompanion history mirror`: a SQLite copy of a PostgreSQL history, kept current pass by pass, on which the
history pages' computed columns and view work. Real receivers write the source on a real PostgreSQL."""

import asyncio
import sqlite3
import sys
from pathlib import Path

from amcompanion.history.mirror import mirror
from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.receiver.timeutil import ManualClock
from tests.postgres import PostgresServer, fresh_database
from tests.receiver_support import AUTH, TOKEN, alert_payload, write_config
from tests.test_history_rollups import differences
from tests.test_receiver import START


def copy_rows(path: Path, query: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(row) for row in conn.execute(query)]
    finally:
        conn.close()


async def test_each_pass_copies_what_changed_and_the_pages_columns_work_on_the_copy(  # type: ignore[no-untyped-def]
    tmp_path: Path, postgres: PostgresServer, aiohttp_client
) -> None:
    url = fresh_database(postgres, "mirrored")
    config = write_config(tmp_path, {"ops": "http://127.0.0.1:9/ops", "pager": "http://127.0.0.1:9/pager"})
    clock = ManualClock(START)
    receiver = Receiver(load_receiver_config(config), Settings(url, TOKEN), clock)
    client = await aiohttp_client(make_app(receiver))
    for fingerprint in ("00000000000000a1", "00000000000000a2"):
        response = await client.post("/webhook/oncall", json=alert_payload("firing", fingerprint), headers=AUTH)
        assert response.status == 200
    copy = tmp_path / "copy.db"
    first = await asyncio.to_thread(mirror, url, str(copy))
    assert first.copied["alerts"] == 2 and first.copied["alert_events"] == 2 and first.copied["events"] >= 2
    assert copy_rows(copy, "SELECT fingerprint, status FROM alerts ORDER BY id") == [
        ("00000000000000a1", "firing"),
        ("00000000000000a2", "firing"),
    ]
    again = await asyncio.to_thread(mirror, url, str(copy))
    assert again.copied["alert_events"] == again.copied["events"] == 0  # nothing new: nothing appended again

    await clock.advance(90)
    response = await client.post("/api/v1/alerts/1/ack", json={"by": "alice"}, headers=AUTH)
    assert response.status == 200
    response = await client.post("/webhook/oncall", json=alert_payload("firing", "00000000000000a3"), headers=AUTH)
    assert response.status == 200
    second = await asyncio.to_thread(mirror, url, str(copy))
    assert second.copied["acks"] == 1 and second.copied["alert_events"] == 1
    rows = copy_rows(copy, "SELECT fingerprint, status, acked_by, round(ack_seconds) FROM alerts ORDER BY id")
    assert rows == [
        ("00000000000000a1", "acknowledged", "alice", 90.0),  # changed in place, and the computed column works
        ("00000000000000a2", "firing", None, None),
        ("00000000000000a3", "firing", None, None),
    ]
    assert copy_rows(copy, "SELECT COUNT(*) FROM alert_times") == [(3,)]  # the pages' view
    assert copy_rows(copy, "SELECT severity FROM sla_targets ORDER BY severity") == [("critical",), ("warning",)]
    conn = sqlite3.connect(copy)
    try:
        assert differences(conn) == ([], [])  # the pages' counts follow the rows copied in and changed in place
    finally:
        conn.close()


async def test_the_command_copies_once_and_names_a_source_it_cannot_read_without_its_password(  # type: ignore[no-untyped-def]
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = fresh_database(postgres, "empty_history")

    async def run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "amcompanion", "history", "mirror", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode or 0, out.decode(), err.decode()

    # the receiver has not made the schema yet: the mirror says what it cannot read, and stops (--once)
    code, _, err = await run("--from", url, "--to", str(tmp_path / "h.db"), "--once")
    assert code == 1 and "error: cannot read" in err and "Traceback" not in err, err
    fresh = await asyncio.to_thread(_migrated, url)
    code, out, err = await run("--from", fresh, "--to", str(tmp_path / "h.db"), "--once")
    assert code == 0 and "copied 0 rows" in out, out + err
    code, _, err = await run(
        "--from", "postgresql://amc:hunter2@127.0.0.1:1/x", "--to", str(tmp_path / "h.db"), "--once"
    )
    assert code == 1 and "postgresql://amc:***@127.0.0.1:1/x" in err and "hunter2" not in err, err


def _migrated(url: str) -> str:
    import psycopg

    from amcompanion.history.schema import migrate_postgres

    with psycopg.connect(url) as conn:
        migrate_postgres(conn)
    return url
