"""Benchmark the receiver's `POST /webhook/{policy}` against a bare aiohttp handler, in the same run.

Both servers run as their own processes on loopback; this script is the client (aiohttp, keep-alive,
`--concurrency` requests in flight). It measures:

* throughput with 1, 10 and 100 alerts per notification (every alert new, so every request is a durable
  SQLite commit of new rows), for the receiver and for a handler that reads the body and answers 200.
  Both servers are warmed up first (the receiver's first writes also create its WAL file), then measured
  in alternating rounds, so that a machine whose speed drifts during the run slows both alike;
* latency p50/p99 at a fixed offered load (`--rate` notifications/s of 1 alert, sent on a schedule,
  not back to back);
* the receiver's RSS after 100,000 alerts;
* the same throughput and latency with the history on PostgreSQL (one receiver; a server of its own, started by
  this script, every commit waiting for its fsync as SQLite's does), unless `--sqlite-only`.

Next to each rate it prints the CPU time each server process spent per request. The client shares the
machine's CPUs with the servers: it is what limits the bare handler, so the rate ratio is kinder than
the CPU ratio, which is the cost of parsing, validating and durably committing each request.

The receiver's policy takes its first step after 1h, so the run measures ingest (parse, validate,
commit alert, event and deadline), not channel deliveries.

Usage (from the repository root)::

    python bench/receiver.py                  # 5 s per throughput run
    python bench/receiver.py --seconds 10 --concurrency 64

Exit status: 0 on success, 1 when a server does not start or a request fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import cpu_seconds, free_port, wait_ready  # noqa: E402

TOKEN = "bench-token"
BARE_SERVER = """
import sys
from aiohttp import web
async def handle(request):
    await request.read()
    return web.json_response({"status": "ok"})
app = web.Application(client_max_size=8 * 1024 * 1024)
app.router.add_post("/webhook/{policy}", handle)
async def ready(request):
    return web.Response(text="ok")
app.router.add_get("/readyz", ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
CONFIG = {
    "version": 1,
    "receiver": {"url": "http://127.0.0.1:1"},
    "channels": {"sink": {"type": "webhook", "url": "http://127.0.0.1:9/never"}},
    "escalations": {"bench": {"steps": [{"after": "1h", "notify": [{"channel": "sink"}]}]}},
}


def notification(serial: int, alerts: int) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "receiver": "bench",
            "status": "firing",
            "groupKey": f'{{}}:{{alertname="Bench{serial}"}}',
            "externalURL": "http://127.0.0.1:9093",
            "truncatedAlerts": 0,
            "groupLabels": {"alertname": f"Bench{serial}"},
            "commonLabels": {},
            "commonAnnotations": {},
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": f"Bench{serial}", "instance": f"host-{i}", "severity": "critical"},
                    "annotations": {"summary": f"bench alert {serial}/{i}"},
                    "startsAt": "2026-11-22T22:47:24.568Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://127.0.0.1:9090/graph",
                    "fingerprint": f"{serial:010x}{i:06x}",
                }
                for i in range(alerts)
            ],
        }
    ).encode()


class Load:
    def __init__(self, port: int, concurrency: int, server_pid: int):
        self.url = f"http://127.0.0.1:{port}/webhook/bench"
        self.server_pid = server_pid
        self.concurrency = concurrency
        self.serial = 0

    def next_body(self, alerts: int) -> bytes:
        self.serial += 1
        return notification(self.serial, alerts)

    async def post(self, session: aiohttp.ClientSession, body: bytes) -> None:
        async with session.post(self.url, data=body, headers=HEADERS) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status} from {self.url}")

    async def throughput(self, alerts: int, seconds: float) -> tuple[int, float]:
        """Notifications sent back to back from `concurrency` workers, and the seconds it took."""
        done = 0
        stop = time.perf_counter() + seconds
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < stop:
                    await self.post(session, self.next_body(alerts))
                    done += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
            return done, time.perf_counter() - started

    async def latency(self, rate: float, seconds: float) -> list[float]:
        """Latencies (s) of 1-alert notifications sent on a fixed schedule of `rate` per second."""
        latencies: list[float] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(body: bytes) -> None:
                started = time.perf_counter()
                await self.post(session, body)
                latencies.append(time.perf_counter() - started)

            tasks = []
            start = time.perf_counter()
            for i in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                tasks.append(asyncio.create_task(one(self.next_body(1))))
            await asyncio.gather(*tasks)
        return latencies

    async def send_alerts(self, total: int, per_notification: int = 100) -> None:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            bodies = iter(range(total // per_notification))

            async def worker() -> None:
                for _ in bodies:
                    await self.post(session, self.next_body(per_notification))

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))


HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
WARM_UP_SECONDS = 1.0


@dataclass
class Measured:
    requests: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU the server process used (all its threads, user and system)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request_us(self) -> float:
        return self.server_cpu / self.requests * 1e6


async def alternating(loads: list[Load], alerts: int, seconds: float, rounds: int) -> list[Measured]:
    """Each server over `rounds` alternating runs of seconds/rounds each."""
    totals = {load: Measured() for load in loads}
    for _ in range(rounds):
        for load in loads:
            cpu_before = cpu_seconds(load.server_pid)
            done, took = await load.throughput(alerts, seconds / rounds)
            totals[load].requests += done
            totals[load].seconds += took
            totals[load].server_cpu += cpu_seconds(load.server_pid) - cpu_before
    return [totals[load] for load in loads]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(args: argparse.Namespace) -> None:
    postgres = None
    if not args.sqlite_only:
        from tests.postgres import PostgresServer, bindir

        found = bindir()
        if found is None:
            print("PostgreSQL is not installed (scripts/setup.sh installs it): measuring SQLite only", file=sys.stderr)
        else:
            postgres = PostgresServer(found, durable=True)
    try:
        if postgres is not None:
            postgres.start()
        with tempfile.TemporaryDirectory(prefix="amcompanion-bench-") as work:
            await measure(args, Path(work), postgres.url if postgres else None)
    finally:
        if postgres is not None:
            postgres.remove()


async def measure(args: argparse.Namespace, work: Path, postgres_url: str | None) -> None:
    (work / "receiver.yaml").write_text(json.dumps(CONFIG))
    bare_port, receiver_port, pg_port = free_port(), free_port(), free_port()
    env = {**os.environ, "AMCOMPANION_TOKEN": TOKEN}
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)], env=env)

    def receiver_on(db: str, port: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "amcompanion", "serve", "--config", str(work / "receiver.yaml"),
             "--db", db, "--listen", f"127.0.0.1:{port}"],
            env=env, stderr=subprocess.DEVNULL, cwd=REPO_ROOT,
        )  # fmt: skip

    receiver = receiver_on(str(work / "history.db"), receiver_port)
    on_postgres = receiver_on(postgres_url, pg_port) if postgres_url else None
    servers = [(bare_port, bare), (receiver_port, receiver)] + ([(pg_port, on_postgres)] if on_postgres else [])
    try:
        for port, process in servers:
            await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}/readyz", process)
        print(f"== receiver benchmark (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs) ==")
        print(
            f"client: {args.concurrency} requests in flight; {args.seconds:g} s per server and size,"
            f" in {args.rounds} alternating rounds"
        )
        bare_load = Load(bare_port, args.concurrency, bare.pid)
        receiver_load = Load(receiver_port, args.concurrency, receiver.pid)
        engines = [("SQLite", receiver_load)]
        if on_postgres is not None:
            engines.append(("PostgreSQL", Load(pg_port, args.concurrency, on_postgres.pid)))
        for load in (bare_load, *(load for _, load in engines)):
            await load.throughput(1, WARM_UP_SECONDS)
        for alerts in (1, 10, 100):
            base, *ours = await alternating(
                [bare_load, *(load for _, load in engines)], alerts, args.seconds, args.rounds
            )
            for (engine, _), measured in zip(engines, ours, strict=True):
                print(
                    f"{alerts:>3} alert(s)/notification: bare {base.rate:6.0f} req/s | receiver on {engine:<10}"
                    f" {measured.rate:6.0f} req/s = {measured.rate * alerts:6.0f} alerts/s"
                    f" | ratio {measured.rate / base.rate:.2f} | server CPU per request: bare"
                    f" {base.cpu_per_request_us:.0f} us, receiver {measured.cpu_per_request_us:.0f} us"
                )
        for engine, load in engines:
            latencies = sorted(await load.latency(args.rate, args.seconds))
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            print(
                f"latency on {engine} at {args.rate:g} notifications/s for {args.seconds:g} s:"
                f" p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )
        (stored,) = _count(work / "history.db")
        await receiver_load.send_alerts(max(0, 100_000 - stored))
        (stored,) = _count(work / "history.db")
        print(f"RSS of the receiver after {stored} alerts: {rss_mb(receiver.pid):.0f} MB")
    finally:
        for _, process in servers:
            process.terminate()
            process.wait(timeout=30)


def _count(db: Path) -> tuple[int]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM alerts").fetchone()
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per size (default 5)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--rate", type=float, default=200.0, help="offered load for latency (default 200/s)")
    parser.add_argument(
        "--sqlite-only",
        action="store_true",
        help="leave out the receiver on PostgreSQL (one replica, a server of its own)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
