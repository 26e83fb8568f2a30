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
* the same throughput, latency and RSS with the history on PostgreSQL (a server of its own, started by this script,
  every commit waiting for its fsync as SQLite's does), unless `--sqlite-only`: one receiver on a database of its
  own, and `--replicas` receivers (default 2) sharing a second database, each on its own port, the client sending
  each request to the next of them in turn (round-robin per request, as a Kubernetes Service spreads the load).
  Every engine is a row of the alternating rounds, so the replicas' ratio to one receiver is from the same run.

Next to each rate it prints the CPU time the server processes spent per request (on PostgreSQL, the
database server's too: the engines are loaded one at a time, so its CPU meanwhile is that engine's). The
client shares the machine's CPUs with the servers: it is what limits the bare handler, so the rate ratio
is kinder than the CPU ratio, which is the cost of parsing, validating and durably committing each request.

The receiver's policy takes its first step after 1h, so the run measures ingest (parse, validate,
commit alert, event and deadline), not channel deliveries; the one channel points at a closed loopback port,
so nothing would leave the machine even if a step came due. Each receiver's log goes to a file in the run's
temporary directory; at the end the script says how many lines were warnings or errors, and checks that every
alert sent was stored once.

Usage (from the repository root)::

    python bench/receiver.py                  # 5 s per throughput run
    python bench/receiver.py --seconds 10 --concurrency 64
    python bench/receiver.py --sqlite-only    # no PostgreSQL rows
    python bench/receiver.py --replicas 3     # three receivers on the shared PostgreSQL database

Exit status: 0 on success, 1 when a server does not start, a request fails or the alerts stored are not the
alerts sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
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
    """A client for one engine: its receivers' ports and processes; each request goes to the next port in turn."""

    def __init__(self, ports: list[int], concurrency: int, server_pids: list[int], database_pid: int | None = None):
        self.urls = [f"http://127.0.0.1:{port}/webhook/bench" for port in ports]
        self.server_pids = server_pids
        self.database_pid = database_pid  # the PostgreSQL server's postmaster, whose children serve the receivers
        self.concurrency = concurrency
        self.serial = 0
        self.requests = 0
        self.alerts_sent = 0

    def next_body(self, alerts: int) -> bytes:
        self.serial += 1
        self.alerts_sent += alerts
        return notification(self.serial, alerts)

    def server_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.server_pids)

    def database_cpu(self) -> float:
        """CPU seconds of the PostgreSQL server (the postmaster and its children); 0 on SQLite. The engines are
        measured one at a time, so what the server spends while one is loaded is that engine's."""
        return 0.0 if self.database_pid is None else tree_cpu_seconds(self.database_pid)

    async def post(self, session: aiohttp.ClientSession, body: bytes) -> None:
        url = self.urls[self.requests % len(self.urls)]
        self.requests += 1
        async with session.post(url, data=body, headers=HEADERS) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status} from {url}")

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
RSS_AFTER_ALERTS = 100_000  # each engine's RSS is read once its history holds this many


@dataclass
class Measured:
    requests: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU the server processes used (all their threads, user and system)
    database_cpu: float = 0.0  # seconds of CPU the PostgreSQL server used meanwhile (0 on SQLite)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request_us(self) -> float:
        return self.server_cpu / self.requests * 1e6

    @property
    def database_cpu_per_request_us(self) -> float:
        return self.database_cpu / self.requests * 1e6


async def alternating(loads: list[Load], alerts: int, seconds: float, rounds: int) -> list[Measured]:
    """Each server over `rounds` alternating runs of seconds/rounds each."""
    totals = {load: Measured() for load in loads}
    for _ in range(rounds):
        for load in loads:
            cpu_before, database_before = load.server_cpu(), load.database_cpu()
            done, took = await load.throughput(alerts, seconds / rounds)
            totals[load].requests += done
            totals[load].seconds += took
            totals[load].server_cpu += load.server_cpu() - cpu_before
            totals[load].database_cpu += load.database_cpu() - database_before
    return [totals[load] for load in loads]


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of a process and its children (those alive now)."""
    total = cpu_seconds(root)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == root:
                total += cpu_seconds(int(entry.name))
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Engine:
    """A row of the tables: the receivers of one history (one process, or several sharing a PostgreSQL database)."""

    name: str
    db: str  # the history: a SQLite file or a postgresql:// URL
    ports: list[int]
    database_pid: int | None = None  # the PostgreSQL server's postmaster
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    load: Load | None = None

    def stored(self) -> int:
        """Alerts in the history."""
        if self.db.startswith("postgresql://"):
            import psycopg

            with psycopg.connect(self.db) as conn:
                row = conn.execute("SELECT COUNT(*) FROM alerts").fetchone()
        else:
            conn = sqlite3.connect(self.db)
            try:
                row = conn.execute("SELECT COUNT(*) FROM alerts").fetchone()
            finally:
                conn.close()
        return int(row[0]) if row else 0


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
        with tempfile.TemporaryDirectory(prefix="amcompanion-bench-") as work:
            engines = [Engine("SQLite", str(Path(work) / "history.db"), [free_port()])]
            if postgres is not None:
                from tests.postgres import fresh_database

                postgres.start()
                postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
                one = fresh_database(postgres, "bench_one")
                several = fresh_database(postgres, "bench_replicas")
                engines.append(Engine("PostgreSQL, 1 replica", one, [free_port()], postmaster))
                engines.append(
                    Engine(
                        f"PostgreSQL, {args.replicas} replicas",
                        several,
                        [free_port() for _ in range(args.replicas)],
                        postmaster,
                    )
                )
            await measure(args, Path(work), engines)
    finally:
        if postgres is not None:
            postgres.remove()


async def measure(args: argparse.Namespace, work: Path, engines: list[Engine]) -> None:
    (work / "receiver.yaml").write_text(json.dumps(CONFIG))
    bare_port = free_port()
    env = {**os.environ, "AMCOMPANION_TOKEN": TOKEN}
    env.pop("AMCOMPANION_DB", None)
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)], env=env)
    servers = [(bare_port, bare)]
    try:
        for number, engine in enumerate(engines):
            for port in engine.ports:
                log = work / f"receiver-{number}-{port}.log"
                with log.open("wb") as stderr:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "amcompanion", "serve", "--config", str(work / "receiver.yaml"),
                         "--db", engine.db, "--listen", f"127.0.0.1:{port}"],
                        env=env, stderr=stderr, cwd=REPO_ROOT,
                    )  # fmt: skip
                engine.processes.append(process)
                engine.logs.append(log)
                servers.append((port, process))
            pids = [process.pid for process in engine.processes]
            engine.load = Load(engine.ports, args.concurrency, pids, engine.database_pid)
        for port, process in servers:
            await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}/readyz", process)
        print(f"== receiver benchmark (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs) ==")
        print(
            f"client: {args.concurrency} requests in flight; {args.seconds:g} s per server and size,"
            f" in {args.rounds} alternating rounds"
        )
        print("engines: bare handler | " + " | ".join(engine.name for engine in engines))
        bare_load = Load([bare_port], args.concurrency, [bare.pid])
        loads = [engine.load for engine in engines if engine.load is not None]
        for load in (bare_load, *loads):
            await load.throughput(1, WARM_UP_SECONDS)
        by_size: dict[int, list[Measured]] = {}
        for alerts in (1, 10, 100):
            base, *ours = await alternating([bare_load, *loads], alerts, args.seconds, args.rounds)
            by_size[alerts] = ours
            for engine, measured in zip(engines, ours, strict=True):
                print(
                    f"{alerts:>3} alert(s)/notification: bare {base.rate:6.0f} req/s | {engine.name:<24}"
                    f" {measured.rate:6.0f} req/s = {measured.rate * alerts:6.0f} alerts/s"
                    f" | ratio {measured.rate / base.rate:.2f} | server CPU per request: bare"
                    f" {base.cpu_per_request_us:.0f} us, receiver(s) {measured.cpu_per_request_us:.0f} us"
                    + (f", PostgreSQL {measured.database_cpu_per_request_us:.0f} us" if engine.database_pid else "")
                )
        p99s = []
        for engine in engines:
            assert engine.load is not None
            cpu_before, database_before = engine.load.server_cpu(), engine.load.database_cpu()
            latencies = sorted(await engine.load.latency(args.rate, args.seconds))
            cpu_us = (engine.load.server_cpu() - cpu_before) / len(latencies) * 1e6
            database_us = (engine.load.database_cpu() - database_before) / len(latencies) * 1e6
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            p99s.append(p99)
            print(
                f"latency on {engine.name} at {args.rate:g} notifications/s for {args.seconds:g} s:"
                f" p50 {p50:.1f} ms, p99 {p99:.1f} ms | CPU per notification: receiver(s) {cpu_us:.0f} us"
                + (f", PostgreSQL {database_us:.0f} us" if engine.database_pid else "")
            )
        if len(engines) == 3:
            one, several = engines[1], engines[2]
            print(f"{several.name} against {one.name}:", end="")
            for alerts, (_, a, b) in by_size.items():
                print(f" {alerts} alert(s) {b.rate / a.rate:.2f},", end="")
            print(f" p99 {p99s[2] / p99s[1]:.2f}")
        for engine in engines:
            assert engine.load is not None
            await engine.load.send_alerts(max(0, RSS_AFTER_ALERTS - engine.stored()))
            rss = [rss_mb(process.pid) for process in engine.processes]
            each = f" ({' + '.join(f'{mb:.0f}' for mb in rss)})" if len(rss) > 1 else ""
            print(f"RSS of {engine.name} after {engine.stored()} alerts: {sum(rss):.0f} MB{each}")
        check(engines)
    finally:
        for _, process in servers:
            process.terminate()
        for _, process in servers:
            process.wait(timeout=30)


def check(engines: list[Engine]) -> None:
    """Every alert sent stored once; the receivers' warnings and errors counted (their logs: one JSON object a line)."""
    failed = []
    for engine in engines:
        assert engine.load is not None
        stored = engine.stored()
        if stored != engine.load.alerts_sent:
            failed.append(f"{engine.name}: {engine.load.alerts_sent} alerts sent, {stored} stored")
        for log in engine.logs:
            levels: Counter[str] = Counter()
            first: list[str] = []
            for line in log.read_text(errors="replace").splitlines():
                try:
                    level = str(json.loads(line).get("level", "?"))
                except (ValueError, AttributeError):
                    level = "not JSON"
                if level not in ("debug", "info"):
                    levels[level] += 1
                    if len(first) < 3:
                        first.append(line[:300])
            if levels:
                said = ", ".join(f"{count} {level}" for level, count in levels.items())
                print(f"log of {engine.name} ({log.name}): {said}; first: " + " | ".join(first))
    if failed:
        raise SystemExit("; ".join(failed))
    print("every alert sent was stored once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per size (default 5)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--rate", type=float, default=200.0, help="offered load for latency (default 200/s)")
    parser.add_argument(
        "--sqlite-only",
        action="store_true",
        help="leave out the receivers on PostgreSQL (one replica, and --replicas on a shared database)",
    )
    parser.add_argument(
        "--replicas", type=int, default=2, help="receivers sharing the second PostgreSQL database (default 2)"
    )
    args = parser.parse_args()
    if args.replicas < 2:
        parser.error("--replicas must be at least 2 (one replica is a row of its own)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
