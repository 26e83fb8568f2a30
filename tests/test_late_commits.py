"""On PostgreSQL transactions commit side by side: an event can become visible after one with a higher id. Neither the
event stream nor the history mirror may miss it (both read "ids after the last one seen")."""

import asyncio
from pathlib import Path

import psycopg

from amcompanion.history.mirror import mirror
from amcompanion.history.schema import migrate_postgres
from amcompanion.receiver.events import EventHub
from amcompanion.receiver.postgres import PostgresDatabase
from tests.postgres import fresh_database
from tests.receiver_support import rows

EVENT = "INSERT INTO events (type, alert_id, at, data) VALUES ('oncall.changed', NULL, '2026-12-02T10:00:00Z', '{}')"


def open_transaction_with_an_event(url: str) -> psycopg.Connection:
    """A transaction that has logged an event (its id taken) and not committed yet."""
    conn = psycopg.connect(url)
    conn.execute(EVENT)
    return conn


def commit_an_event(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(EVENT)


async def test_the_event_stream_hands_out_an_event_that_committed_after_a_later_one(postgres) -> None:  # type: ignore[no-untyped-def]
    url = fresh_database(postgres, "late_events")
    db = PostgresDatabase(url)
    await db.open()
    hub = EventHub(db, lambda conn, ids: {})  # type: ignore[arg-type]
    db.on_commit.append(hub.wake)
    db.on_others.append(hub.wake)
    await hub.start()
    try:
        subscription, missed = await hub.subscribe(None)
        assert missed == []
        slow = open_transaction_with_an_event(url)  # takes the lower id
        commit_an_event(url)  # the higher id, visible first
        got = await asyncio.wait_for(subscription.take(), 10)
        first_id = got[0].id
        slow.commit()  # now the lower id is there too
        slow.close()
        late = await asyncio.wait_for(subscription.take(), 10)
        assert [event.id for event in late] == [first_id - 1]
        # a client that resumes after the last event it got misses nothing either
        _, resumed = await hub.subscribe(first_id)
        assert [event.id for event in resumed] == [first_id - 1]
        subscription.close()
    finally:
        await hub.stop()
        await db.close()


def test_the_mirror_copies_a_row_that_committed_after_a_later_one(tmp_path: Path, postgres) -> None:  # type: ignore[no-untyped-def]
    url = fresh_database(postgres, "late_mirror")
    with psycopg.connect(url) as conn:
        migrate_postgres(conn)
    copy = tmp_path / "history.db"
    mirror(url, str(copy))
    slow = open_transaction_with_an_event(url)
    commit_an_event(url)
    mirror(url, str(copy))
    assert [row["id"] for row in rows(copy, "SELECT id FROM events")] == [2]
    slow.commit()
    slow.close()
    mirror(url, str(copy))
    assert [row["id"] for row in rows(copy, "SELECT id FROM events ORDER BY id")] == [1, 2]
