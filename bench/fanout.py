"""Benchmark fan-out: 1,000 alerts through an escalation step that notifies 8 channels, each to its fake API.

The channel fakes of amcompanion/fakes (DingTalk, WeChat Work, Feishu, Slack, Telegram, Discord, Twilio SMS and an
SMTP server) run in this process on loopback, with their rate limits lifted. The receiver runs as its own
process (`amcompanion serve`); this script posts the alerts to it, as Alertmanager would, in notifications
of `--per-notification` alerts. The policy's first step (after 0s) notifies all 8 channels, so 1,000
alerts make 8,000 messages. It reports:

* notifications/s: the 8,000 messages divided by the time from the first POST until the last outbox row
  is marked sent (ingest, escalation, rendering, sending, and recording each try);
* the peak outbox depth (rows queued, polled from the receiver's database every 10 ms) and the CPU the
  receiver used;
* nothing lost or duplicated: every fake must have accepted exactly one message per alert (each alert
  named in exactly one message per channel), and every outbox row must be sent at the first try, alone
  (no digest: without rate limits there is no storm).

The baseline, measured in the same run: the same channel modules render and send the same 8,000 messages
to the same fakes from a separate process, one sender per channel as in the outbox, with no receiver
(no HTTP ingest, no database, no escalation). The ratio is what durability and escalation cost.
The runs alternate (baseline, receiver, baseline, ...) `--rounds` times, each receiver round with a
new database; the table shows the median.

Two more parts measure what the outbox does when services are slow or down:

* slow services: the 7 HTTP fakes answer every request 100 ms late (email is left out); `--slow-alerts`
  alerts (default 100) make one message each per channel. Messages/s with the default concurrent delivery
  (8 in flight per channel) against the same receiver sending one message at a time per channel
  (`max_in_flight: 1`, how the outbox worked before), measured in the same run. Target: at least 5x.
* recovery: the Slack fake answers 503 for `--outages` seconds (default 60 and 200) while alerts keep
  coming (one every 5 s), then comes back. The time from its return to the first page it accepts, and to
  the last queued page delivered. Target: at most 5 s.

Usage (from the repository root)::

    python bench/fanout.py                      # all three parts: about 8 minutes
    python bench/fanout.py --part fanout --alerts 5000 --per-notification 50
    python bench/fanout.py --part slow          # concurrent against serial delivery
    python bench/fanout.py --part recovery --outages 30

Exit status: 0 when every run delivered every message exactly once; 1 otherwise. The speed targets are
reported (met or not), they do not change it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # amcompanion.fakes

from amcompanion.fakes.dingtalk import FakeDingTalk  # noqa: E402
from amcompanion.fakes.discord import WEBHOOK_ID, WEBHOOK_TOKEN, FakeDiscord  # noqa: E402
from amcompanion.fakes.feishu import FakeFeishu, FeishuBot  # noqa: E402
from amcompanion.fakes.slack import HOOK, FakeSlack  # noqa: E402
from amcompanion.fakes.smtp import FakeSMTP  # noqa: E402
from amcompanion.fakes.telegram import GROUP_CHAT, FakeTelegram  # noqa: E402
from amcompanion.fakes.telegram import TOKEN as TELEGRAM_TOKEN  # noqa: E402
from amcompanion.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio  # noqa: E402
from amcompanion.fakes.wecom import FakeWeCom  # noqa: E402
from amcompanion.receiver.outbox import DEFAULT_IN_FLIGHT  # noqa: E402
from bench.common import cpu_seconds, free_port, wait_ready  # noqa: E402

TOKEN = "bench-token"
UNLIMITED = 10**9
ALERT_NUMBER = re.compile(r"fanout-(\d{6})")
SECRETS = {
    "DINGTALK_SECRET": "SECbench-dingtalk-secret",
    "FEISHU_SECRET": "bench-feishu-secret",
    "TWILIO_TOKEN": AUTH_TOKEN,
    "TELEGRAM_TOKEN": TELEGRAM_TOKEN,
    "SMTP_PASSWORD": "bench-smtp-password",
}
DINGTALK_TOKEN, WECOM_KEY, FEISHU_HOOK = "bench-robot", "bench-wecom-key", "bench-feishu-hook"


@dataclass
class Fakes:
    """The 8 services, rate limits lifted, and how to read back the text of every message each accepted."""

    dingtalk: FakeDingTalk
    wecom: FakeWeCom
    feishu: FakeFeishu
    slack: FakeSlack
    telegram: FakeTelegram
    discord: FakeDiscord
    twilio: FakeTwilio
    smtp: FakeSMTP

    @classmethod
    def fresh(cls, smtp: FakeSMTP) -> Fakes:
        return cls(
            dingtalk=FakeDingTalk(DINGTALK_TOKEN, SECRETS["DINGTALK_SECRET"], per_minute=UNLIMITED),
            wecom=FakeWeCom(WECOM_KEY, per_minute=UNLIMITED),
            feishu=FakeFeishu([FeishuBot(FEISHU_HOOK, SECRETS["FEISHU_SECRET"])], windows=[]),
            slack=FakeSlack(windows=[]),
            telegram=FakeTelegram(per_chat=UNLIMITED),
            discord=FakeDiscord(bucket_limit=UNLIMITED),
            twilio=FakeTwilio(),
            smtp=smtp,
        )

    def apps(self) -> dict[str, web.Application]:
        return {
            "dingtalk": self.dingtalk.app(),
            "wecom": self.wecom.app(),
            "feishu": self.feishu.app(),
            "slack": self.slack.app(),
            "telegram": self.telegram.app(),
            "discord": self.discord.app(),
            "twilio": self.twilio.app,
        }

    def texts(self) -> dict[str, list[str]]:
        """Per channel, one string per accepted message."""
        dump: Callable[[object], str] = lambda body: json.dumps(body, ensure_ascii=False)  # noqa: E731
        return {
            "ops-dingtalk": [dump(b) for b in self.dingtalk.accepted],
            "ops-wecom": [dump(b) for b in self.wecom.accepted],
            "ops-feishu": [dump(b) for b in self.feishu.received],
            "ops-slack": [dump(b) for b in self.slack.received],
            "ops-telegram": [dump(b) for b in self.telegram.received],
            "ops-discord": [dump(b) for b in self.discord.received],
            "sms": [a.form.get("Body", "") for a in self.twilio.accepted if a.api == "Messages"],
            "mail": [r.part("plain") for r in self.smtp.received[self.smtp_seen :]],
        }

    smtp_seen: int = 0  # messages the SMTP server (shared by the rounds) had before this round


def receiver_config(
    ports: dict[str, int], smtp_port: int, without: tuple[str, ...] = (), in_flight: int | None = None
) -> dict:
    """The receiver's config: one step to every channel (but those named in `without`), each with
    `max_in_flight: in_flight` when given."""

    def base(name: str) -> str:
        return f"http://127.0.0.1:{ports[name]}"

    channels = {
        "ops-dingtalk": {
            "type": "dingtalk",
            "url": f"https://oapi.dingtalk.com/robot/send?access_token={DINGTALK_TOKEN}",
            "secret": "${DINGTALK_SECRET}",
            "base_url": base("dingtalk"),
        },
        "ops-wecom": {
            "type": "wecom",
            "url": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}",
            "base_url": base("wecom"),
        },
        "ops-feishu": {
            "type": "feishu",
            "url": f"https://open.feishu.cn/open-apis/bot/v2/hook/{FEISHU_HOOK}",
            "secret": "${FEISHU_SECRET}",
            "base_url": base("feishu"),
        },
        "ops-slack": {"type": "slack", "url": f"https://hooks.slack.com/services/{HOOK}", "base_url": base("slack")},
        "ops-telegram": {
            "type": "telegram",
            "bot_token": "${TELEGRAM_TOKEN}",
            "chat_id": GROUP_CHAT,
            "base_url": base("telegram"),
        },
        "ops-discord": {
            "type": "discord",
            "url": f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}",
            "base_url": base("discord"),
        },
        "sms": {
            "type": "twilio_sms",
            "account_sid": ACCOUNT_SID,
            "auth_token": "${TWILIO_TOKEN}",
            "from": "+15550000000",
            "base_url": base("twilio"),
        },
        "mail": {
            "type": "email",
            "host": "smtp.example.com",
            "from": "alerts@example.com",
            "username": "alerts",
            "password": "${SMTP_PASSWORD}",
            "base_url": f"smtp://127.0.0.1:{smtp_port}",
        },
    }
    channels = {name: settings for name, settings in channels.items() if name not in without}
    if in_flight is not None:
        channels = {name: {**settings, "max_in_flight": in_flight} for name, settings in channels.items()}
    return {
        "version": 1,
        "receiver": {"url": "http://127.0.0.1:1", "external_url": "https://alerts.example.com"},
        "contacts": {"alice": {"phone": "+8613800000001", "email": "alice@example.com"}},
        "channels": channels,
        "escalations": {
            "fanout": {
                "steps": [
                    {
                        "after": "0s",
                        "notify": [
                            {"channel": name, **({"to": ["alice"]} if name in ("sms", "mail") else {})}
                            for name in channels
                        ],
                    }
                ]
            }
        },
    }


def alert(number: int) -> dict:
    instance = f"fanout-{number:06d}"
    return {
        "status": "firing",
        "labels": {"alertname": "FanoutCheck", "instance": instance, "severity": "critical", "service": "bench"},
        "annotations": {"summary": f"{instance} fails its checks", "description": "A benchmark alert."},
        "startsAt": "2026-11-24T08:00:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": f"{number:016x}",
    }


def notifications(numbers: list[int], per_notification: int) -> list[bytes]:
    bodies = []
    for start in range(0, len(numbers), per_notification):
        alerts = [alert(n) for n in numbers[start : start + per_notification]]
        bodies.append(
            json.dumps(
                {
                    "version": "4",
                    "receiver": "fanout",
                    "status": "firing",
                    "groupKey": f'{{}}:{{alertname="FanoutCheck",batch="{start}"}}',
                    "externalURL": "http://127.0.0.1:9093",
                    "truncatedAlerts": 0,
                    "groupLabels": {"alertname": "FanoutCheck"},
                    "commonLabels": {"alertname": "FanoutCheck"},
                    "commonAnnotations": {},
                    "alerts": alerts,
                }
            ).encode()
        )
    return bodies


# -- the baseline: the channel modules alone, in their own process ------------------------------------
@dataclass
class Run:
    """One run of either phase."""

    seconds: float  # first POST (baseline: first send) to last message sent
    cpu_seconds: float  # of the receiver process (baseline: of the sending process)
    peak_depth: int = 0  # rows queued in the outbox at most (receiver only)
    last_channel: str = ""  # the channel that finished last (baseline only)
    rows: str = ""  # what the outbox rows say (receiver only)
    problems: tuple[str, ...] = ()


def direct_sender(config_path: str, numbers: list[int], result: multiprocessing.Queue) -> None:
    os.environ.update(SECRETS)
    result.put(asyncio.run(_send_directly(Path(config_path), numbers)))


async def _send_directly(config_path: Path, numbers: list[int]) -> Run:
    """Render and send one message per alert through every channel (one sender per channel)."""
    from amcompanion.receiver.config import load_receiver_config
    from amcompanion.receiver.messages import Renderer
    from amcompanion.receiver.service import build_channels

    config = load_receiver_config(config_path)
    channels = build_channels(config)
    renderer = Renderer(config.channels, None)
    step = config.policies["fanout"].steps[0]
    rows = [_history_row(n) for n in numbers]

    async def one_channel(session: aiohttp.ClientSession, name: str, to: str) -> tuple[float, str]:
        for row in rows:
            ack_url = f"https://alerts.example.com/ack/{row['id']}.1795000000.c2lnbmF0dXJlLWJlbmNo"
            message = renderer.render(name, "firing", [row], to, config.contacts.get(to, {}), ack_url)
            outcome = channels[name].classify(await channels[name].send(session, message))
            if outcome.result != "ok":
                raise SystemExit(f"baseline: {name} answered {outcome.result}: {outcome.reason}")
        return time.perf_counter() - started, name

    async with aiohttp.ClientSession() as session:
        started, cpu_before = time.perf_counter(), time.process_time()
        finished = await asyncio.gather(*(one_channel(session, n.channel, (n.to or [""])[0]) for n in step.notify))
        return Run(time.perf_counter() - started, time.process_time() - cpu_before, last_channel=max(finished)[1])


def _history_row(number: int) -> dict:
    """The alert as the outbox hands it to the templates."""
    posted = alert(number)
    return {
        "id": number,
        "fingerprint": posted["fingerprint"],
        "alertname": posted["labels"]["alertname"],
        "severity": posted["labels"]["severity"],
        "labels": posted["labels"],
        "annotations": posted["annotations"],
        "policy": "fanout",
        "status": "firing",
        "starts_at": "2026-11-24T08:00:00.000000Z",
        "ends_at": None,
        "resolved_at": None,
        "generator_url": posted["generatorURL"],
    }


# -- the receiver run ----------------------------------------------------------------------------------
def start_receiver(config_path: Path, db: Path) -> tuple[subprocess.Popen, int]:
    """`amcompanion serve` on a free port, ready."""
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "amcompanion", "serve", "--config", str(config_path), "--db", str(db),
         "--listen", f"127.0.0.1:{port}"],
        env={**os.environ, **SECRETS, "AMCOMPANION_TOKEN": TOKEN}, stderr=subprocess.DEVNULL, cwd=REPO_ROOT,
    )  # fmt: skip
    wait_ready(f"http://127.0.0.1:{port}/readyz", receiver)
    return receiver, port


async def through_receiver(
    work: Path, config_path: Path, numbers: list[int], per_notification: int, concurrency: int, channels: int = 8
) -> Run:
    db = work / "history.db"
    receiver, port = await asyncio.to_thread(start_receiver, config_path, db)
    try:
        cpu_before = cpu_seconds(receiver.pid)
        expected = len(numbers) * channels
        bodies = notifications(numbers, per_notification)
        started = time.perf_counter()
        posting = asyncio.create_task(post_all(port, bodies, concurrency))
        peak, sent = 0, 0
        deadline = started + 600
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            while sent < expected:
                if time.perf_counter() > deadline or receiver.poll() is not None:
                    raise SystemExit(f"receiver run: {sent} of {expected} messages sent before giving up")
                counts = dict(conn.execute("SELECT status, COUNT(*) FROM notifications GROUP BY status").fetchall())
                peak = max(peak, counts.get("queued", 0))
                sent = counts.get("sent", 0)
                if counts.get("failed"):
                    break
                await asyncio.sleep(0.01)
            took = time.perf_counter() - started
            await posting
            problems = conn.execute(
                "SELECT COUNT(*), SUM(status <> 'sent'), SUM(attempts <> 1), SUM(digest_id IS NOT NULL),"
                " COUNT(DISTINCT channel || ' ' || alert_id) FROM notifications"
            ).fetchone()
        cpu = cpu_seconds(receiver.pid) - cpu_before
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
    total, not_sent, retried, digested, distinct = problems
    rows = (
        f"{total} rows ({distinct} channel/alert pairs), {not_sent} not sent, {retried} retried, {digested} in digests"
    )
    ok = total == distinct == expected and not (not_sent or retried or digested)
    return Run(took, cpu, peak_depth=peak, rows=rows, problems=() if ok else (f"outbox rows: {rows}",))


async def post_all(port: int, bodies: list[bytes], concurrency: int) -> None:
    url = f"http://127.0.0.1:{port}/webhook/fanout"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    pending = iter(bodies)
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            for body in pending:
                async with session.post(url, data=body, headers=headers) as response:
                    if response.status != 200:
                        raise SystemExit(f"HTTP {response.status} from {url}: {await response.text()}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def exactly_once(texts: dict[str, list[str]], numbers: Iterable[int]) -> list[str]:
    """What each channel's fake got wrong: messages naming no alert or several, alerts missed or repeated."""
    wanted = set(numbers)
    problems = []
    for channel, messages in texts.items():
        seen: Counter[int] = Counter()
        for text in messages:
            named = {int(n) for n in ALERT_NUMBER.findall(text)}
            if len(named) != 1:
                problems.append(f"{channel}: a message names {len(named)} alerts")
            seen.update(named)
        missing = wanted - seen.keys()
        repeated = [n for n, count in seen.items() if count > 1]
        stray = seen.keys() - wanted
        if missing or repeated or stray:
            problems.append(f"{channel}: {len(missing)} alerts missing, {len(repeated)} repeated, {len(stray)} unknown")
    return problems


class FakeServers:
    """A new set of fakes (empty records), their aiohttp apps on free ports; each answers `delay` seconds late,
    and answers 503 while its name is in `down` (the time of each one's first answer after that is kept)."""

    def __init__(self, smtp: FakeSMTP, delay: float = 0.0):
        self.smtp = smtp
        self.fakes = Fakes.fresh(smtp)
        self._apps = self.fakes.apps()
        self.ports = {name: free_port() for name in self._apps}
        self._runners: list[web.AppRunner] = []
        self.down: set[str] = set()
        self.answered: dict[str, float] = {}  # fake → perf_counter of its last 2xx
        for name, app in self._apps.items():
            app.middlewares.append(self._middleware(name, delay))

    def _middleware(self, name: str, delay: float):  # type: ignore[no-untyped-def]
        @web.middleware
        async def late_or_down(request: web.Request, handler):  # type: ignore[no-untyped-def]
            if delay:
                await asyncio.sleep(delay)
            if name in self.down:
                return web.Response(status=503, text="down for the benchmark")
            response = await handler(request)
            if response.status < 300:
                self.answered.setdefault(name, time.perf_counter())
            return response

        return late_or_down

    async def start(self) -> None:
        for name, app in self._apps.items():
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.ports[name]).start()
            self._runners.append(runner)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()


def fresh_config(work: Path, phase: str, config: dict) -> Path:
    """`config` as work/phase/receiver.yaml, beside no database of an earlier round."""
    config_path = work / phase / "receiver.yaml"
    config_path.parent.mkdir(exist_ok=True)
    for stale in config_path.parent.glob("history.db*"):
        stale.unlink()
    config_path.write_text(json.dumps(config, indent=1))
    return config_path


async def one_round(args: argparse.Namespace, work: Path, smtp: FakeSMTP, numbers: list[int], phase: str) -> Run:
    """One run of `phase` ("baseline" or "receiver") against new fakes."""
    servers = FakeServers(smtp)
    servers.fakes.smtp_seen = len(smtp.received)
    await servers.start()
    try:
        config_path = fresh_config(work, phase, receiver_config(servers.ports, smtp.port))
        if phase == "baseline":
            run = await asyncio.to_thread(run_baseline, config_path, numbers)
        else:
            run = await through_receiver(
                config_path.parent, config_path, numbers, args.per_notification, args.concurrency
            )
        return replace(run, problems=(*run.problems, *exactly_once(servers.fakes.texts(), numbers)))
    finally:
        await servers.stop()


# -- slow services: concurrent delivery against one message at a time ----------------------------------
SLOW_S = 0.1


async def slow_round(args: argparse.Namespace, work: Path, smtp: FakeSMTP, in_flight: int) -> Run:
    """The slow alerts through the receiver to the 7 HTTP fakes, each answering SLOW_S late."""
    numbers = list(range(1, args.slow_alerts + 1))
    servers = FakeServers(smtp, delay=SLOW_S)
    await servers.start()
    try:
        config = receiver_config(servers.ports, smtp.port, without=("mail",), in_flight=in_flight)
        config_path = fresh_config(work, f"slow-{in_flight}", config)
        run = await through_receiver(config_path.parent, config_path, numbers, 10, 4, channels=7)
        texts = {name: got for name, got in servers.fakes.texts().items() if name != "mail"}
        return replace(run, problems=(*run.problems, *exactly_once(texts, numbers)))
    finally:
        await servers.stop()


async def slow_part(args: argparse.Namespace, work: Path, smtp: FakeSMTP) -> list[str]:
    messages = args.slow_alerts * 7
    print(f"\n== slow services: 7 HTTP fakes answering {SLOW_S * 1000:.0f} ms late, {messages} messages ==")
    rates: dict[int, list[float]] = {1: [], DEFAULT_IN_FLIGHT: []}
    failures = []
    for number in range(1, args.rounds + 1):
        for in_flight in rates:
            run = await slow_round(args, work, smtp, in_flight)
            rates[in_flight].append(messages / run.seconds)
            failures += [f"slow round {number}, {in_flight} in flight: {p}" for p in run.problems]
            print(f"round {number}: {in_flight} in flight per channel: {messages / run.seconds:6.1f} messages/s")
    serial, concurrent = statistics.median(rates[1]), statistics.median(rates[DEFAULT_IN_FLIGHT])
    ratio = concurrent / serial
    print(
        f"median: concurrent ({DEFAULT_IN_FLIGHT} in flight) {concurrent:.1f} messages/s | serial {serial:.1f}"
        f" messages/s | ratio {ratio:.1f} (target: at least 5: {'met' if ratio >= 5 else 'NOT MET'})"
    )
    return failures


# -- recovery after an outage -----------------------------------------------------------------------------
async def recovery_run(work: Path, smtp: FakeSMTP, outage_s: float) -> tuple[float, float, list[str]]:
    """The Slack fake down for `outage_s` while an alert comes every 5 s; seconds from its return to the first
    page it accepted and to the last queued page delivered."""
    servers = FakeServers(smtp)
    await servers.start()
    others = ("ops-dingtalk", "ops-wecom", "ops-feishu", "ops-telegram", "ops-discord", "sms", "mail")
    config = receiver_config(servers.ports, smtp.port, without=others)
    config_path = fresh_config(work, f"outage-{outage_s:g}", config)
    db = config_path.parent / "history.db"
    receiver, port = await asyncio.to_thread(start_receiver, config_path, db)
    try:
        servers.down.add("slack")
        bodies = iter(notifications(list(range(1, 10_000)), 1))
        posted = 0
        started = time.perf_counter()
        while time.perf_counter() - started < outage_s:
            await post_all(port, [next(bodies)], 1)
            posted += 1
            await asyncio.sleep(min(5.0, max(0.0, outage_s - (time.perf_counter() - started))))
        servers.down.clear()
        back = time.perf_counter()
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            while conn.execute("SELECT COUNT(*) FROM notifications WHERE status = 'sent'").fetchone()[0] < posted:
                if time.perf_counter() - back > 120 or receiver.poll() is not None:
                    raise SystemExit(f"recovery after {outage_s:g} s: pages still queued 120 s after the return")
                await asyncio.sleep(0.01)
            done = time.perf_counter()
            failed = conn.execute("SELECT COUNT(*) FROM notifications WHERE status <> 'sent'").fetchone()[0]
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
        await servers.stop()
    problems = [f"{failed} pages not sent"] if failed else []
    return servers.answered["slack"] - back, done - back, problems


async def recovery_part(args: argparse.Namespace, work: Path, smtp: FakeSMTP) -> list[str]:
    print("\n== recovery: the Slack fake answers 503, an alert every 5 s, then it comes back ==")
    failures = []
    for outage_s in args.outages:
        first, last, problems = await recovery_run(work, smtp, outage_s)
        print(
            f"outage of {outage_s:g} s: first page delivered {first:.2f} s after the return, every queued page"
            f" {last:.2f} s after it (target: at most 5 s: {'met' if first <= 5 else 'NOT MET'})"
        )
        failures += [f"outage {outage_s:g} s: {p}" for p in problems]
    return failures


def run_baseline(config_path: Path, numbers: list[int]) -> Run:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    process = context.Process(target=direct_sender, args=(str(config_path), numbers, result))
    process.start()
    try:
        return result.get(timeout=600)
    finally:
        process.join(timeout=30)


def median_run(runs: list[Run]) -> Run:
    return Run(statistics.median(r.seconds for r in runs), statistics.median(r.cpu_seconds for r in runs))


async def run(args: argparse.Namespace) -> int:
    failures: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="amcompanion-fanout-") as work,
        FakeSMTP("alerts", SECRETS["SMTP_PASSWORD"]) as smtp,
    ):
        if args.part in ("all", "fanout"):
            failures += await fanout_part(args, Path(work), smtp)
        if args.part in ("all", "slow"):
            failures += await slow_part(args, Path(work), smtp)
        if args.part in ("all", "recovery"):
            failures += await recovery_part(args, Path(work), smtp)
    if failures:
        print("\nLOST, DUPLICATED OR NOT SENT:", *failures, sep="\n  ")
        return 1
    return 0


async def fanout_part(args: argparse.Namespace, work: Path, smtp: FakeSMTP) -> list[str]:
    numbers = list(range(1, args.alerts + 1))
    messages = len(numbers) * 8
    print(f"== fan-out benchmark (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs) ==")
    print(
        f"{args.alerts} alerts in notifications of {args.per_notification} ({args.concurrency} in flight),"
        f" one step to 8 channels = {messages} messages; {args.rounds} alternating rounds"
    )
    runs: dict[str, list[Run]] = {"baseline": [], "receiver": []}
    failures: list[str] = []
    for number in range(1, args.rounds + 1):
        for phase in ("baseline", "receiver"):
            run = await one_round(args, work, smtp, numbers, phase)
            runs[phase].append(run)
            failures += [f"round {number}, {phase}: {p}" for p in run.problems]
            cpu = f"CPU {run.cpu_seconds / messages * 1e6:.0f} us/message"
            if phase == "baseline":
                detail = f"{cpu}; {run.last_channel} finished last"
            else:
                detail = f"receiver {cpu}, peak outbox depth {run.peak_depth}; {run.rows}"
            rate = f"{messages / run.seconds:5.0f} messages/s ({run.seconds:.2f} s)"
            print(f"round {number}: {phase:<8} {rate}, {detail}")
    base, ours = (median_run(runs[phase]) for phase in ("baseline", "receiver"))
    print(
        f"median: receiver {messages / ours.seconds:.0f} notifications/s | baseline {messages / base.seconds:.0f}"
        f" messages/s | ratio {base.seconds / ours.seconds:.2f} | peak outbox depth"
        f" {max(r.peak_depth for r in runs['receiver'])} | CPU per message: receiver"
        f" {ours.cpu_seconds / messages * 1e6:.0f} us, baseline {base.cpu_seconds / messages * 1e6:.0f} us"
    )
    if not failures:
        print(f"every run: each of the 8 fakes accepted each of the {args.alerts} alerts exactly once")
    return failures


def main() -> None:
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd notes plain AUTH on loopback per message
    warnings.filterwarnings("ignore", "Session.login_data is deprecated")  # aiosmtpd's own use of it
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python bench/fanout.py --alerts 1000 --rounds 3",
    )  # fmt: skip
    parser.add_argument("--alerts", type=int, default=1000, help="alerts to fire (default 1000)")
    parser.add_argument("--per-notification", type=int, default=10, help="alerts per webhook POST (default 10)")
    parser.add_argument("--concurrency", type=int, default=4, help="POSTs in flight (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--part", choices=("all", "fanout", "slow", "recovery"), default="all", help="what to run")
    parser.add_argument("--slow-alerts", type=int, default=100, help="alerts of the slow part (default 100)")
    parser.add_argument(
        "--outages",
        type=lambda text: [float(s) for s in text.split(",")],
        default=[60.0, 200.0],
        help="outage lengths in seconds, comma-separated (default 60,200)",
    )
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
