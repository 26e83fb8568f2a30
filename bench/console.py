"""Benchmark the live console's event stream (`GET /api/v1/events`) under webhook load, against the same
receiver with no console open, in the same run.

The receiver (`amcompanion serve`) runs as its own process on loopback. The console clients run in a second
process of their own (this script, started with `--serve-consoles`): `--clients` Server-Sent Events
connections, one aiohttp session and connection each, parsing the stream (`id:`, `event:`, `data:` lines, a
blank line ends an event), decoding each event's JSON and checking that the ids follow one another (none
missed, none twice). A client the receiver drops resumes with `Last-Event-ID`, as a browser does. This
process posts the alerts (aiohttp, keep-alive). All three share the machine's CPUs, so the clients' work
(their CPU time is printed) is taken from the receiver's; real consoles run on other machines.

It measures:

* the time from `POST /webhook` to the alert's `alert.firing` event reaching every client: `--alerts`
  notifications of 1 new alert each (label `bench_seq` = its number, which the clients read from the card),
  first at a steady `--rate` (sent on a schedule, not back to back), then as a burst (`--concurrency` in
  flight). An alert's latency is the latest of the clients' arrival times less its send time (arrival: when
  the chunk holding the event was read, on the same monotonic clock); printed as p50/p99/max over alerts, and
  the range of the clients' own p50 and p99;
* the webhook's throughput (1-alert notifications back to back, `--concurrency` in flight) with no client
  connected and with the `--clients` connected and consuming, in `--rounds` alternating rounds so that a
  machine whose speed drifts slows both alike; with clients, how long after the last POST every client had
  the last event, and how many subscribers the receiver dropped as too slow;
* the receiver's CPU time per alert in each case (with clients: until every client has caught up).

The policy takes its first step after 1h, so the run measures ingest and fan-out, not channel deliveries.

Usage (from the repository root)::

    python bench/console.py                          # 1,000 alerts, 50 clients, 5 s per throughput case
    python bench/console.py --alerts 1000 --clients 50 --rate 200 --seconds 10 --rounds 5

Exit status: 0 on success (targets met or not; the figures say), 1 when the receiver does not start, a
request fails, or a client misses an event or gets one twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sqlite3
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
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
CONFIG = {
    "version": 1,
    "receiver": {"url": "http://127.0.0.1:1"},
    "channels": {"sink": {"type": "webhook", "url": "http://127.0.0.1:9/never"}},
    "escalations": {"bench": {"steps": [{"after": "1h", "notify": [{"channel": "sink"}]}]}},
}
WARM_UP_SECONDS = 1.0
CATCH_UP_SECONDS = 120.0  # how long the clients may take to get the last event before the run fails
TARGET_P99_S, TARGET_RATIO = 1.0, 0.8


def notification(seq: int) -> bytes:
    """One new alert, numbered `seq` in its labels (the clients read it back) and its fingerprint."""
    return json.dumps(
        {
            "version": "4",
            "receiver": "bench",
            "status": "firing",
            "groupKey": f'{{}}:{{alertname="ConsoleBench",bench_seq="{seq}"}}',
            "externalURL": "http://127.0.0.1:9093",
            "truncatedAlerts": 0,
            "groupLabels": {"alertname": "ConsoleBench"},
            "commonLabels": {},
            "commonAnnotations": {},
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "ConsoleBench",
                        "bench_seq": str(seq),
                        "instance": f"host-{seq}",
                        "severity": "critical",
                    },
                    "annotations": {"summary": f"console bench alert {seq}"},
                    "startsAt": "2026-11-22T22:47:24.568Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://127.0.0.1:9090/graph",
                    "fingerprint": f"c0{seq:014x}",
                }
            ],
        }
    ).encode()


# -- the console clients (their own process) ------------------------------------------------------------
class Console:
    """One console: a connection to the event stream, resumed with Last-Event-ID when the receiver ends it."""

    def __init__(self, url: str, timing: bool):
        self.url = url
        self.timing = timing  # keep each bench_seq's arrival time (the latency runs)
        self.received: dict[int, float] = {}
        self.events = self.missed = self.repeats = self.drops = 0
        self.errors: list[str] = []
        self.last_id: int | None = None
        self.last_at = 0.0
        self.connected = asyncio.Event()

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while len(self.errors) < 10:
                headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "text/event-stream"}
                if self.last_id is not None:
                    headers["Last-Event-ID"] = str(self.last_id)
                try:
                    async with session.get(self.url, headers=headers) as response:
                        if response.status != 200:
                            self.errors.append(f"HTTP {response.status}: {await response.text()}")
                            self.connected.set()
                            return
                        self.connected.set()
                        await self.read(response)
                    self.drops += 1  # the receiver ended the stream: it dropped this subscriber as too slow
                except aiohttp.ClientError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.1)

    async def read(self, response: aiohttp.ClientResponse) -> None:
        pending = b""
        event_id: int | None = None
        kind = data = b""
        async for chunk in response.content.iter_any():
            now = time.monotonic()
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for raw in lines:
                line = raw[:-1] if raw.endswith(b"\r") else raw
                if not line:  # the event is complete (a ping, ": ping", has no id)
                    if event_id is not None:
                        self.dispatch(event_id, kind, data, now)
                    event_id, kind, data = None, b"", b""
                elif line.startswith(b"id:"):
                    event_id = int(line[3:])
                elif line.startswith(b"event:"):
                    kind = line[6:].strip()
                elif line.startswith(b"data:"):
                    value = line[6:] if line.startswith(b"data: ") else line[5:]
                    data = data + b"\n" + value if data else value

    def dispatch(self, event_id: int, kind: bytes, data: bytes, now: float) -> None:
        self.events += 1
        if self.last_id is not None:
            if event_id <= self.last_id:
                self.repeats += 1
                return
            self.missed += event_id - self.last_id - 1  # every event goes to every subscriber: ids follow on
        self.last_id, self.last_at = event_id, now
        payload = json.loads(data)  # as a console does with every event
        if self.timing and kind == b"alert.firing":
            seq = payload["alert"]["labels"].get("bench_seq")
            if seq is not None:
                self.received.setdefault(int(seq), now)

    def stats(self) -> dict:
        return {
            "received": self.received,
            "events": self.events,
            "missed": self.missed,
            "repeats": self.repeats,
            "drops": self.drops,
            "errors": self.errors,
        }


async def serve_consoles(url: str, clients: int) -> None:
    """Commands on stdin, one JSON answer a line on stdout: `connect timing|count`, `wait ID`, `disconnect`."""
    consoles: list[Console] = []
    tasks: list[asyncio.Task] = []

    def answer(value: dict) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    while line := await asyncio.to_thread(sys.stdin.readline):
        command, *args = line.split()
        if command == "connect":
            consoles = [Console(url, args[0] == "timing") for _ in range(clients)]
            tasks = [asyncio.create_task(console.run()) for console in consoles]
            with contextlib.suppress(TimeoutError):  # the answer counts who did not connect
                await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in consoles)), 30)
            answer({"connected": sum(c.connected.is_set() and not c.errors for c in consoles),
                    "errors": [e for c in consoles for e in c.errors]})  # fmt: skip
        elif command == "wait":  # until every client has event ID; when the last one got it
            target, deadline = int(args[0]), time.monotonic() + CATCH_UP_SECONDS
            while any(c.last_id is None or c.last_id < target for c in consoles) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            caught_up = all(c.last_id is not None and c.last_id >= target for c in consoles)
            answer({"caught_up": caught_up, "at": max((c.last_at for c in consoles), default=0.0)})
        elif command == "disconnect":
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            answer({"clients": [c.stats() for c in consoles]})
            consoles, tasks = [], []


# -- this process: the load, and the figures -------------------------------------------------------------
class Consoles:
    """The console clients' process, driven over its stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process

    @classmethod
    async def start(cls, url: str, clients: int, niceness: int) -> Consoles:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--serve-consoles", url, "--clients", str(clients),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=1 << 28,
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None,  # its CPUs: this process's (--pin)
        )  # fmt: skip
        return cls(process)

    async def ask(self, command: str) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the console clients' process exited (code {await self.process.wait()})")
        return json.loads(line)

    async def connect(self, clients: int, timing: bool) -> None:
        answer = await self.ask("connect " + ("timing" if timing else "count"))
        if answer["connected"] != clients:
            raise SystemExit(f"{answer['connected']} of {clients} console clients connected: {answer['errors'][:3]}")

    async def caught_up(self, last_event: int) -> float:
        """When the last client got event `last_event` (monotonic clock); exit if one has not within the limit."""
        answer = await self.ask(f"wait {last_event}")
        if not answer["caught_up"]:
            raise SystemExit(f"a console client did not get event {last_event} within {CATCH_UP_SECONDS:g} s")
        return answer["at"]

    async def disconnect(self) -> list[dict]:
        """Each client's figures; exit if one missed an event, got one twice or failed."""
        clients = (await self.ask("disconnect"))["clients"]
        for number, client in enumerate(clients):
            if client["missed"] or client["repeats"] or client["errors"]:
                raise SystemExit(
                    f"console client {number}: {client['missed']} events missed, {client['repeats']} repeated,"
                    f" errors {client['errors'][:3]}"
                )
        return clients

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


class Load:
    """The webhook's client: numbered 1-alert notifications, each alert new."""

    def __init__(self, port: int, concurrency: int, db: Path, server_pid: int):
        self.url = f"http://127.0.0.1:{port}/webhook/bench"
        self.server_pid = server_pid
        self.concurrency = concurrency
        self.db = db
        self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def post(self, session: aiohttp.ClientSession, seq: int) -> None:
        async with session.post(self.url, data=notification(seq), headers=HEADERS) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status} from {self.url}")

    async def throughput(self, seconds: float) -> tuple[int, float, float]:
        """Notifications sent back to back from `concurrency` workers: how many, the seconds, when it ended."""
        done = 0
        stop = time.monotonic() + seconds
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.concurrency)) as session:

            async def worker() -> None:
                nonlocal done
                while time.monotonic() < stop:
                    await self.post(session, self.next_seq())
                    done += 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
            ended = time.monotonic()
            return done, ended - started, ended

    async def steady(self, count: int, rate: float) -> tuple[dict[int, float], list[float]]:
        """`count` alerts at `rate` a second on a fixed schedule: each one's send time, and the POSTs' latencies."""
        sent: dict[int, float] = {}
        answered: list[float] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(seq: int) -> None:
                sent[seq] = started = time.monotonic()
                await self.post(session, seq)
                answered.append(time.monotonic() - started)

            tasks = []
            start = time.monotonic()
            for i in range(count):
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
                tasks.append(asyncio.create_task(one(self.next_seq())))
            await asyncio.gather(*tasks)
        return sent, answered

    async def burst(self, count: int) -> tuple[dict[int, float], list[float]]:
        """`count` alerts back to back from `concurrency` workers: each one's send time, and the POSTs' latencies."""
        sent: dict[int, float] = {}
        answered: list[float] = []
        seqs = iter([self.next_seq() for _ in range(count)])
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.concurrency)) as session:

            async def worker() -> None:
                for seq in seqs:
                    sent[seq] = started = time.monotonic()
                    await self.post(session, seq)
                    answered.append(time.monotonic() - started)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return sent, answered

    def last_event(self) -> int:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        finally:
            conn.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


@dataclass
class Latency:
    every: list[float]  # per alert: the last client's arrival less the send time
    per_client: list[list[float]]
    posts: list[float]  # the POSTs' own latencies
    first_sent: float
    last_arrival: float
    drops: int
    receiver_cpu: float
    clients_cpu: float


async def latency_run(load: Load, consoles: Consoles, clients: int, count: int, rate: float | None) -> Latency:
    """Alerts to connected clients, steadily at `rate` (None: a burst); how long each took to reach every one."""
    await consoles.connect(clients, timing=True)
    cpu_before, clients_cpu_before = cpu_seconds(load.server_pid), consoles.cpu()
    sent, posts = await (load.steady(count, rate) if rate is not None else load.burst(count))
    await consoles.caught_up(load.last_event())
    cpu, clients_cpu = cpu_seconds(load.server_pid) - cpu_before, consoles.cpu() - clients_cpu_before
    clients_seen = await consoles.disconnect()
    received = [{int(seq): at for seq, at in client["received"].items()} for client in clients_seen]
    missing = sum(seq not in got for got in received for seq in sent)
    if missing:
        raise SystemExit(f"{missing} alert.firing events never reached their client")
    return Latency(
        every=[max(got[seq] for got in received) - at for seq, at in sent.items()],
        per_client=[[got[seq] - at for seq, at in sent.items()] for got in received],
        posts=posts,
        first_sent=min(sent.values()),
        last_arrival=max(max(got.values()) for got in received),
        drops=sum(client["drops"] for client in clients_seen),
        receiver_cpu=cpu,
        clients_cpu=clients_cpu,
    )


def print_latency(title: str, result: Latency, count: int) -> None:
    p99 = percentile(result.every, 0.99)
    verdict = "met" if p99 < TARGET_P99_S else "MISSED"
    p50s = [percentile(lat, 0.5) for lat in result.per_client]
    p99s = [percentile(lat, 0.99) for lat in result.per_client]
    print(
        f"{title}: to every client p50 {ms(percentile(result.every, 0.5))}, p99 {ms(p99)},"
        f" max {ms(max(result.every))} (target p99 < {TARGET_P99_S:g} s: {verdict})"
    )
    print(
        f"    per client: p50 {ms(min(p50s))} to {ms(max(p50s))}, p99 {ms(min(p99s))} to {ms(max(p99s))}"
        f" | POST p50 {ms(percentile(result.posts, 0.5))}, p99 {ms(percentile(result.posts, 0.99))}"
        f" | last event at every client {result.last_arrival - result.first_sent:.2f} s after the first POST"
        f" | subscribers dropped: {result.drops}"
    )
    print(
        f"    CPU per alert: receiver {result.receiver_cpu / count * 1e6:.0f} us,"
        f" clients {result.clients_cpu / count * 1e6:.0f} us"
    )


@dataclass
class Measured:
    alerts: int = 0
    seconds: float = 0.0
    receiver_cpu: float = 0.0
    clients_cpu: float = 0.0
    catch_up: list[float] = field(default_factory=list)  # per round: last POST answered → every client has it
    drops: int = 0

    @property
    def rate(self) -> float:
        return self.alerts / self.seconds

    def cpu_us(self, cpu: float) -> float:
        return cpu / self.alerts * 1e6


async def alternating(load: Load, consoles: Consoles, clients: int, seconds: float, rounds: int) -> list[Measured]:
    """Throughput without clients and with them, in alternating rounds of seconds/rounds each."""
    alone, watched = Measured(), Measured()
    for _ in range(rounds):
        cpu_before = cpu_seconds(load.server_pid)
        done, took, _ended = await load.throughput(seconds / rounds)
        alone.alerts += done
        alone.seconds += took
        alone.receiver_cpu += cpu_seconds(load.server_pid) - cpu_before

        await consoles.connect(clients, timing=False)
        cpu_before, clients_cpu_before = cpu_seconds(load.server_pid), consoles.cpu()
        done, took, ended = await load.throughput(seconds / rounds)
        watched.catch_up.append(max(0.0, await consoles.caught_up(load.last_event()) - ended))
        watched.alerts += done
        watched.seconds += took
        watched.receiver_cpu += cpu_seconds(load.server_pid) - cpu_before
        watched.clients_cpu += consoles.cpu() - clients_cpu_before
        watched.drops += sum(client["drops"] for client in await consoles.disconnect())
    return [alone, watched]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="amcompanion-bench-") as work:
        await measure(args, Path(work))


def pin(pid: int, cpus: list[int]) -> None:
    """Every thread of process `pid` on `cpus` (a process's affinity is its threads')."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


async def measure(args: argparse.Namespace, work: Path) -> None:
    (work / "receiver.yaml").write_text(json.dumps(CONFIG))
    port = free_port()
    env = {**os.environ, "AMCOMPANION_TOKEN": TOKEN}
    with (work / "receiver.log").open("wb") as log_file:
        cpus = sorted(os.sched_getaffinity(0))
        pinned = args.pin and len(cpus) >= 2
        receiver = subprocess.Popen(
            [sys.executable, "-m", "amcompanion", "serve", "--config", str(work / "receiver.yaml"),
             "--db", str(work / "history.db"), "--listen", f"127.0.0.1:{port}"],
            env=env, stderr=log_file, cwd=REPO_ROOT,
        )  # fmt: skip
    consoles: Consoles | None = None
    try:
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}/readyz", receiver)
        events_url = f"http://127.0.0.1:{port}/api/v1/events"
        consoles = await Consoles.start(events_url, args.clients, 0)  # latency: clients as fast as they can be
        load = Load(port, args.concurrency, work / "history.db", receiver.pid)
        where = f"; for throughput the receiver has CPU {cpus[0]} to itself" if pinned else ""
        print(f"== console event stream benchmark (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs{where}) ==")
        print(
            f"{args.clients} console clients in a process of their own (for throughput at nice {args.clients_nice}),"
            " one connection each;"
            f" 1 alert per notification; {args.concurrency} requests in flight for bursts and throughput"
        )
        await load.throughput(WARM_UP_SECONDS)  # the receiver's first writes also create its WAL file
        await consoles.connect(args.clients, timing=False)
        await load.throughput(WARM_UP_SECONDS)
        await consoles.caught_up(load.last_event())
        await consoles.disconnect()

        steady = await latency_run(load, consoles, args.clients, args.alerts, args.rate)
        print_latency(f"{args.alerts} alerts at {args.rate:g}/s", steady, args.alerts)
        burst = await latency_run(load, consoles, args.clients, args.alerts, None)
        print_latency(f"{args.alerts} alerts in a burst", burst, args.alerts)

        await consoles.stop()
        if pinned:  # the receiver gets a CPU to itself; the poster and the clients it starts share the others
            pin(receiver.pid, cpus[:1])
            os.sched_setaffinity(0, cpus[1:])
        consoles = await Consoles.start(events_url, args.clients, args.clients_nice)
        alone, watched = await alternating(load, consoles, args.clients, args.seconds, args.rounds)
        ratio = watched.rate / alone.rate
        print(
            f"throughput ({args.seconds:g} s each, {args.rounds} alternating rounds): no clients {alone.rate:.0f}"
            f" alerts/s | {args.clients} clients {watched.rate:.0f} alerts/s | ratio {ratio:.2f}"
            f" (target >= {TARGET_RATIO:g}: {'met' if ratio >= TARGET_RATIO else 'MISSED'})"
        )
        alone_us, watched_us = alone.cpu_us(alone.receiver_cpu), watched.cpu_us(watched.receiver_cpu)
        clients_us = watched.cpu_us(watched.clients_cpu)
        print(
            f"    receiver CPU per alert: no clients {alone_us:.0f} us, {args.clients} clients {watched_us:.0f} us"
            f" (until they caught up; ratio {alone_us / watched_us:.2f}); clients {clients_us:.0f} us"
        )
        print(
            f"    every client had the last event {min(watched.catch_up):.2f} to {max(watched.catch_up):.2f} s"
            f" after the last POST was answered; subscribers dropped as too slow: {watched.drops}"
        )
        print(f"    {load.seq} alerts in the history at the end, every one firing")
    finally:
        if consoles is not None:
            await consoles.stop()
        receiver.terminate()
        receiver.wait(timeout=30)
        print(f"receiver log: {log_summary(work / 'receiver.log')}")


def log_summary(path: Path) -> str:
    """Lines by level, and the first warning or error: what the receiver said under the load."""
    levels: Counter[str] = Counter()
    first: str | None = None
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
            level = str(record.get("level", "?"))
        except (ValueError, AttributeError):
            record, level = {"message": line}, "unparsed"
        levels[level] += 1
        if first is None and level not in ("info", "debug"):
            first = str(record.get("message", line))[:200]
    counts = ", ".join(f"{n} {level}" for level, n in sorted(levels.items()))
    return counts + (f"; first not info: {first}" if first else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=1000, help="alerts per latency run (default 1000)")
    parser.add_argument("--clients", type=int, default=50, help="console clients (default 50)")
    parser.add_argument("--rate", type=float, default=200.0, help="notifications/s of the steady run (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per throughput case (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating throughput rounds (default 5)")
    parser.add_argument(
        "--clients-nice",
        type=int,
        default=19,
        metavar="N",
        help="the clients' niceness while throughput is measured (default 19: they take the CPU the receiver leaves, "
        "as consoles on other machines would; 0: they compete with it); latency is measured at 0",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="while throughput is measured, let the receiver share every CPU with the clients and the poster "
        "(default: it has one to itself, as on a server whose consoles are browsers elsewhere)",
    )
    parser.add_argument("--serve-consoles", metavar="URL", help=argparse.SUPPRESS)  # the clients' own process
    args = parser.parse_args()
    if args.serve_consoles:
        asyncio.run(serve_consoles(args.serve_consoles, args.clients))
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
