"""Several `amcompanion serve` processes on one PostgreSQL: the faults of issue 20, with real processes.

A storm spread over two receivers with one SIGKILLed in the middle; both racing the same deadlines a thousand times;
one channel's rate limit kept by both together; the event stream of one telling what the other did; PostgreSQL
restarted under load. Alertmanager's part is played by the test: it retries a notification that was not answered
200, on the other receiver (a Service sends the retry wherever it likes).
"""

import asyncio
import contextlib
import json
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from amcompanion.demo.daemons import free_port
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.outbox import DEFAULT_IN_FLIGHT, LEASE_S
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.receiver.timeutil import ManualClock, parse_iso
from tests.postgres import PostgresServer, fresh_database, require_postgres
from tests.receiver_support import AUTH, TOKEN, FakeChannel, alert_payload, eventually, rows, write_config
from tests.test_receiver_process import serving

STEP_2_AFTER_S = 6


@dataclass
class Arrivals(FakeChannel):
    """A webhook endpoint that also notes when each message came (the wall clock, as leases are kept)."""

    at: list[datetime] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.at.append(datetime.now(UTC))
        return await super().handle(request)

    def fingerprints(self) -> Counter[str]:
        return Counter(alert["fingerprint"] for message in self.received for alert in message["alerts"])


async def endpoints(aiohttp_server, **fakes: FakeChannel) -> dict[str, str]:  # type: ignore[no-untyped-def]
    app = web.Application()
    for name, fake in fakes.items():
        app.router.add_post(f"/{name}", fake.handle)
    server = await aiohttp_server(app)
    return {name: str(server.make_url(f"/{name}")) for name in fakes}


def two_step_config(tmp_path: Path, urls: dict[str, str], **channel_extra: dict) -> Path:
    """Step 1 to the `ops` group at once, step 2 to alice on `pager` STEP_2_AFTER_S later."""
    policy = {
        "steps": [
            {"after": "0s", "notify": [{"channel": "ops"}]},
            {"after": f"{STEP_2_AFTER_S}s", "notify": [{"channel": "pager", "to": ["alice"]}]},
        ],
        "on_resolve": "none",
    }
    return write_config(tmp_path, urls, policy, **channel_extra)


def notification(first: int, count: int) -> dict:
    """One notification of `count` new alerts, fingerprints first … first+count-1."""
    body = alert_payload("firing", "0", alertname="Storm")
    template = body["alerts"][0]
    body["alerts"] = []
    for i in range(first, first + count):
        alert = json.loads(json.dumps(template))
        alert["fingerprint"] = f"{i:016x}"
        alert["labels"]["instance"] = f"web-{i}"
        body["alerts"].append(alert)
    return body


@contextlib.asynccontextmanager
async def receivers(
    config: Path, db: str, count: int = 2
) -> AsyncIterator[list[tuple[asyncio.subprocess.Process, int]]]:
    async with AsyncExitStack() as stack:
        started = []
        for _ in range(count):
            port = free_port()
            log = config.parent / f"serve-{port}.log"
            started.append((await stack.enter_async_context(serving(config, db, port, log=log)), port))
        yield started


async def post(session: aiohttp.ClientSession, ports: list[int], body: dict, first: int = 0) -> int:
    """Post as Alertmanager does: until a receiver answers 200, trying the next after a refusal, a 5xx or a
    connection that died; the port that took it."""
    for attempt in range(200):
        port = ports[(first + attempt) % len(ports)]
        try:
            async with session.post(f"http://127.0.0.1:{port}/webhook/oncall", json=body, headers=AUTH) as response:
                if response.status == 200:
                    return port
                assert response.status == 503, (response.status, await response.text())
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("no receiver took the notification")


def escalation_steps(db: str) -> Counter[tuple[str, int]]:
    taken = rows(db, "SELECT a.fingerprint, e.step FROM escalations e JOIN alerts a ON a.id = e.alert_id")
    return Counter((row["fingerprint"], row["step"]) for row in taken)


async def test_a_storm_over_two_receivers_one_killed_loses_nothing_and_pages_everyone_once(  # type: ignore[no-untyped-def]
    tmp_path: Path, postgres, aiohttp_server
) -> None:
    ops, pager = Arrivals(delay=0.01), Arrivals()
    config = two_step_config(tmp_path, await endpoints(aiohttp_server, ops=ops, pager=pager))
    db = fresh_database(postgres, "storm")
    alerts, per_notification = 1_000, 5
    fingerprints = {f"{i:016x}" for i in range(alerts)}
    async with receivers(config, db) as started, aiohttp.ClientSession() as session:
        (survivor, survivor_port), (victim, victim_port) = started
        gate = asyncio.Semaphore(16)

        async def send(n: int) -> None:
            async with gate:
                await post(
                    session, [survivor_port, victim_port], notification(n * per_notification, per_notification), n
                )

        storm = [asyncio.create_task(send(n)) for n in range(alerts // per_notification)]
        await eventually(lambda: len(ops.received) >= 150, timeout=30, what="the storm's pages under way")
        victim.send_signal(signal.SIGKILL)
        killed_at = datetime.now(UTC)
        await victim.wait()
        leased = rows(  # what the killed receiver was sending: its messages the survivor must take over
            db,
            "SELECT id, lease_until FROM notifications WHERE status = 'queued' AND lease_until IS NOT NULL"
            f" AND claimed_by LIKE '%-{victim.pid}-%'",
        )
        await asyncio.gather(*storm)

        def done() -> bool:
            queued = rows(db, "SELECT COUNT(*) FROM notifications WHERE status = 'queued'")[0][0]
            return queued == 0 and len(escalation_steps(db)) == 2 * alerts

        await eventually(done, timeout=STEP_2_AFTER_S + LEASE_S + 60, what="every step of every alert sent")
        assert survivor.returncode is None
    stored = {row["fingerprint"] for row in rows(db, "SELECT fingerprint FROM alerts")}
    assert stored == fingerprints  # every alert, answered 200 by one receiver or the other, is in the history
    assert set(escalation_steps(db).values()) == {1}  # each step taken once, though both receivers were stepping
    statuses = Counter(row["status"] for row in rows(db, "SELECT status FROM notifications"))
    assert statuses == {"sent": 2 * alerts}
    for fake in (ops, pager):
        counts = fake.fingerprints()
        assert set(counts) == fingerprints  # every due step reached its channel
        duplicates = sum(n - 1 for n in counts.values())
        # only a message in flight at the kill may come twice: at most max_in_flight of them per channel
        assert max(counts.values()) <= 2 and duplicates <= DEFAULT_IN_FLIGHT, counts.most_common(3)
    # the survivor sent the killed receiver's messages once their leases ran out, and its deadlines, within 5 s
    expiry = max((parse_iso(row["lease_until"]) for row in leased), default=killed_at)
    assert expiry <= killed_at + timedelta(seconds=LEASE_S + 1)
    assert max(ops.at + pager.at) <= max(expiry, killed_at) + timedelta(seconds=STEP_2_AFTER_S + 5)


async def test_two_receivers_racing_the_same_alerts_and_deadlines_a_thousand_times_take_each_step_once(  # type: ignore[no-untyped-def]
    tmp_path: Path, postgres, aiohttp_server
) -> None:
    ops, pager = Arrivals(), Arrivals()
    config = two_step_config(tmp_path, await endpoints(aiohttp_server, ops=ops, pager=pager))
    db = fresh_database(postgres, "race")
    alerts = 1_000
    async with receivers(config, db) as started, aiohttp.ClientSession() as session:
        ports = [port for _, port in started]
        # every alert's step 2 comes due within the same second or so, on both receivers' schedulers; and every
        # notification reaches both at once, as Alertmanager's HA pair sends it twice
        await asyncio.gather(
            *(post(session, [port], notification(n * 100, 100)) for n in range(alerts // 100) for port in ports)
        )
        await eventually(
            lambda: len(pager.received) >= alerts, timeout=STEP_2_AFTER_S + 60, what="every alert's second step"
        )
        await asyncio.sleep(2)  # a second taking of a step would show by now
    assert rows(db, "SELECT COUNT(*) FROM alerts")[0][0] == alerts
    assert rows(db, "SELECT COUNT(*) FROM alert_events")[0][0] == alerts  # each state change recorded once
    steps = escalation_steps(db)
    assert len(steps) == 2 * alerts and set(steps.values()) == {1}
    assert Counter(pager.fingerprints().values()) == {1: alerts}
    assert Counter(ops.fingerprints().values()) == {1: alerts}
    takers = rows(db, "SELECT COUNT(DISTINCT claimed_by) FROM notifications WHERE channel = 'pager'")[0][0]
    assert takers == 2  # both receivers did their share of the work


async def test_a_rate_limit_holds_for_both_receivers_together(tmp_path: Path, postgres, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    ops, pager = Arrivals(), Arrivals()
    urls = await endpoints(aiohttp_server, ops=ops, pager=pager)
    config = two_step_config(tmp_path, urls, ops={"rate_limit": "4/min"})
    db = fresh_database(postgres, "ratelimit")
    async with receivers(config, db) as started, aiohttp.ClientSession() as session:
        ports = [port for _, port in started]
        began = time.monotonic()
        for n in range(16):  # one alert a notification, every other one to each receiver
            await post(session, ports, notification(n, 1), n)
        await asyncio.sleep(max(0.0, 5 - (time.monotonic() - began)))
        # 4 a minute in all: each receiver alone would have let 4 through, 8 together
        assert len(ops.received) == 4
        await eventually(lambda: len(ops.fingerprints()) == 16, timeout=30, what="the rest, as a digest")
    assert len(ops.received) <= 6 and max(len(message["alerts"]) for message in ops.received) > 1


async def test_the_event_stream_of_one_receiver_tells_what_the_other_did(
    tmp_path: Path, postgres, aiohttp_server
) -> None:  # type: ignore[no-untyped-def]
    ops, pager = Arrivals(), Arrivals()
    config = two_step_config(tmp_path, await endpoints(aiohttp_server, ops=ops, pager=pager))
    db = fresh_database(postgres, "events")
    async with receivers(config, db) as started, aiohttp.ClientSession() as session:
        (_, watched), (_, other) = started
        async with session.get(f"http://127.0.0.1:{watched}/api/v1/events", headers=AUTH) as stream:
            assert stream.status == 200
            await post(session, [other], notification(1, 1))
            (alert,) = rows(db, "SELECT id FROM alerts")
            async with session.post(
                f"http://127.0.0.1:{other}/api/v1/alerts/{alert['id']}/ack", json={"by": "alice"}, headers=AUTH
            ) as response:
                assert response.status == 200, await response.text()
            seen: list[str] = []

            async def read() -> None:
                while "alert.acknowledged" not in seen:
                    line = (await stream.content.readline()).decode()
                    if line.startswith("event: "):
                        seen.append(line.removeprefix("event: ").strip())

            await asyncio.wait_for(read(), 10)
    assert seen[0] == "alert.firing" and seen.index("alert.escalated") < seen.index("alert.acknowledged")


async def test_postgresql_restarted_under_load_two_receivers_answer_503_then_recover(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server
) -> None:
    server = PostgresServer(require_postgres())
    server.start()
    try:
        ops, pager = Arrivals(), Arrivals()
        config = two_step_config(tmp_path, await endpoints(aiohttp_server, ops=ops, pager=pager))
        db = fresh_database(server, "restart")
        answers: Counter[int] = Counter()
        accepted: set[str] = set()
        async with receivers(config, db) as started, aiohttp.ClientSession() as session:
            ports = [port for _, port in started]
            stop = asyncio.Event()

            async def load() -> None:
                n = 0
                while not stop.is_set():
                    port = ports[n % 2]
                    body = notification(n, 1)
                    try:
                        async with session.post(
                            f"http://127.0.0.1:{port}/webhook/oncall", json=body, headers=AUTH
                        ) as response:
                            answers[response.status] += 1
                            if response.status == 200:
                                accepted.add(f"{n:016x}")
                    except aiohttp.ClientError:
                        answers[0] += 1
                    n += 1
                    await asyncio.sleep(0.02)

            task = asyncio.create_task(load())
            await eventually(lambda: answers[200] >= 20, timeout=20, what="load under way")
            await asyncio.to_thread(server.stop)
            await eventually(lambda: answers[503] >= 5, timeout=20, what="503s while the database is down")
            await asyncio.to_thread(server.start)
            recovered = answers[200]
            await eventually(lambda: answers[200] >= recovered + 20, timeout=30, what="200s again, from both")
            stop.set()
            await task
            await eventually(
                lambda: ops.fingerprints().keys() >= accepted, timeout=30, what="every accepted alert paged"
            )
            assert all(process.returncode is None for process, _ in started)
        assert set(answers) <= {200, 503}, answers  # never a 500, never a dropped connection
        stored = {row["fingerprint"] for row in rows(db, "SELECT fingerprint FROM alerts")}
        assert accepted <= stored
    finally:
        server.remove()


async def test_a_hand_off_is_announced_once_whichever_receivers_saw_it_come(  # type: ignore[no-untyped-def]
    tmp_path: Path, postgres
) -> None:
    config = {
        "version": 1,
        "receiver": {"url": "http://127.0.0.1:1"},
        "contacts": {"alice": {"email": "alice@example.com"}, "bob": {"email": "bob@example.com"}},
        "channels": {"pager": {"type": "webhook", "url": "http://127.0.0.1:9/unused"}},
        "schedules": {
            "primary": {
                "time_zone": "UTC",
                "layers": [{"rotation": ["alice", "bob"], "shift": "1h", "handoff": "2026-01-05 09:00"}],
            }
        },
        "escalations": {"oncall": {"steps": [{"notify": [{"oncall": "primary", "channel": "pager"}]}]}},
    }
    path = tmp_path / "receiver.yaml"
    path.write_text(json.dumps(config))
    db = fresh_database(postgres, "handoff")
    clock = ManualClock(datetime(2026, 12, 2, 9, 30, tzinfo=UTC))  # the next hand-off is at 10:00
    both = [Receiver(load_receiver_config(path), Settings(db, TOKEN), clock) for _ in range(2)]
    for receiver in both:
        await receiver.start()
    try:
        await asyncio.sleep(0.2)  # both are waiting for 10:00
        await clock.advance(31 * 60)
        await eventually(lambda: rows(db, "SELECT * FROM events WHERE type = 'oncall.changed'"), what="the hand-off")
        await asyncio.sleep(0.5)  # a second announcement would be in by now
    finally:
        for receiver in both:
            await receiver.stop()
    (announced,) = rows(db, "SELECT data FROM events WHERE type = 'oncall.changed'")
    (primary,) = json.loads(announced["data"])["oncall"]
    assert [person["contact"] for person in primary["people"]] == ["bob"]  # 10:00: bob's hour
