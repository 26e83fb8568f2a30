"""`amcompanion demo`: the whole loop on this machine, narrated.

The bundled catalog is compiled with its waiting times compressed (plan.py) and every address on loopback;
Debian's Prometheus and Alertmanager run it, the receiver runs in this process, the channels' stand-ins print
what each person or group would see, and Datasette shows the history. The script: the exporter's memory gauge
climbs past HighMemory's warning level; the alert fires, pages level 1, escalates to level 2 when nobody
acknowledges, is acknowledged through the link in the level-2 SMS, and resolves when the gauge drops.
"""

import asyncio
import contextlib
import re
import secrets
import signal
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar

import aiohttp
from aiohttp import web

from amcompanion.catalog import load_catalog
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import Catalog
from amcompanion.demo import daemons
from amcompanion.demo.daemons import Daemon
from amcompanion.demo.exporter import Exporter
from amcompanion.demo.plan import Placeholders, compress, on_loopback
from amcompanion.demo.stand_ins import StandIn, base_url, stand_in
from amcompanion.emit.files import write_catalog
from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import ReceiverConfig, load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.validate import find_tool

ALERT, SEVERITY = "HighMemory", "warning"  # the bundled catalog's alert the script drives
NORMAL, LEAK, FIXED = 50.0, 93.0, 45.0  # memory in use, percent
POLL_S = 0.25
T = TypeVar("T")
SHOWN_LINES = 14  # of each message


class DemoError(Exception):
    pass


def warning_level(catalog: Catalog) -> float:
    """HighMemory's warning level: the demo needs the bundled catalog's alert, with that level."""
    for alert in catalog.alerts():
        if alert.name == ALERT:
            for level in alert.levels:
                if level.severity == SEVERITY and level.value is not None and alert.comparison == ">":
                    return level.value
    raise DemoError(
        f"the demo drives the bundled catalog's {ALERT} alert (above a {SEVERITY} level), which this catalog "
        "lacks: run it in a clone of the amcompanion repository, on its rulesets/"
    )


@dataclass
class Progress:
    """What the narration has seen so far, polled from Prometheus, the history and the stand-ins."""

    out: TextIO
    started: float = field(default_factory=time.monotonic)
    prometheus_state: str = "inactive"
    alert: dict | None = None
    printed: dict[str, int] = field(default_factory=dict)  # stand-in → messages printed

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=self.out, flush=True)

    def show(self, stand: StandIn) -> None:
        shown = stand.shown()
        for message in shown[self.printed.get(stand.channel, 0) :]:
            lines = message.text.strip().splitlines()
            cut = lines[:SHOWN_LINES] + (
                [f"… ({len(lines) - SHOWN_LINES} more lines)"] if len(lines) > SHOWN_LINES else []
            )
            body = "\n".join(f"          │ {line}" for line in cut)
            self.say(f"{stand.label} → {message.to}\n{body}")
        self.printed[stand.channel] = len(shown)


@dataclass
class Demo:
    """Everything the demo started, for the narration and for stopping it all."""

    workdir: Path
    speed: int
    level: float  # the alert's warning level, percent
    config: ReceiverConfig
    ports: dict[str, int]
    token: str
    exporter: Exporter
    stand_ins: list[StandIn]
    daemons: list[Daemon] = field(default_factory=list)
    runners: list[web.AppRunner] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def db(self) -> Path:
        return self.workdir / "history.db"

    def alert(self) -> dict | None:
        """The scenario's alert as the history has it (None until the receiver has it)."""
        if not self.db.exists():
            return None
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                "SELECT * FROM alerts WHERE alertname = ? AND severity = ? ORDER BY id DESC LIMIT 1", (ALERT, SEVERITY)
            ).fetchone()
            if row is None:
                return None
            queued = conn.execute(
                "SELECT count(*) FROM notifications WHERE alert_id = ? AND status = 'queued'", (row["id"],)
            )
            return {**dict(row), "queued": queued.fetchone()[0]}


async def start(rulesets: Path, workdir: Path, speed: int, out: TextIO) -> Demo:
    """Compile, then start the stand-ins, the exporter, the receiver, Alertmanager, Prometheus and Datasette."""
    catalog = load_catalog(rulesets)
    level = warning_level(catalog)
    for binary in ("prometheus", "prometheus-alertmanager"):
        find_tool(binary)
    ports = {name: daemons.free_port() for name in ("receiver", "alertmanager", "prometheus", "exporter", "history")}
    channel_urls = {}
    for name, settings in catalog.channels.items():
        ports[f"channel {name}"] = daemons.free_port()
        channel_urls[name] = base_url(str(settings["type"]), ports[f"channel {name}"])
    token = secrets.token_urlsafe(18)
    token_file = workdir / "token"
    token_file.write_text(token + "\n")
    receiver_url = f"http://127.0.0.1:{ports['receiver']}"
    generated = workdir / "generated"
    write_catalog(on_loopback(compress(catalog, speed), receiver_url, str(token_file), channel_urls), generated, 1)
    config = load_receiver_config(generated / "receiver" / "receiver.yaml", Placeholders())
    stands = [stand_in(name, s, config.contacts, ports[f"channel {name}"]) for name, s in config.channels.items()]
    demo = Demo(workdir, speed, level, config, ports, token, Exporter(), stands)
    print(
        f"amcompanion demo: {rulesets}/ compiled into {generated}/ with time {speed}× faster "
        f"(a catalog minute lasts {60 / speed:g} s); everything listens on 127.0.0.1",
        file=out,
        flush=True,
    )
    try:
        for stand in stands:
            await stand.start()
        demo.runners.append(await daemons.serve_app(demo.exporter.app(), ports["exporter"]))
        receiver = Receiver(config, Settings(str(demo.db), token))
        demo.runners.append(await daemons.serve_app(make_app(receiver), ports["receiver"]))
        demo.daemons.append(
            daemons.alertmanager(generated / "alertmanager" / "alertmanager.yml", workdir, ports["alertmanager"])
        )
        prometheus_yml = workdir / "prometheus.yml"
        jobs = {"node": {"targets": [f"127.0.0.1:{ports['exporter']}"], "labels": {"instance": "demo-node"}}}
        if catalog.self_monitoring.enabled:  # its rules are live, and silent while the receiver is healthy
            jobs[catalog.self_monitoring.job] = {"targets": [f"127.0.0.1:{ports['receiver']}"]}
        prometheus_yml.write_text(
            daemons.prometheus_config(
                sorted((generated / "prometheus" / "rules").glob("*.yml")), ports["alertmanager"], jobs
            )
        )
        demo.daemons.append(daemons.prometheus(prometheus_yml, workdir, ports["prometheus"]))
        demo.daemons.append(daemons.datasette(demo.db, workdir, ports["history"]))
        for daemon in demo.daemons:
            await daemon.ready()
    except BaseException:
        await stop(demo)
        raise
    names = ", ".join(stand.label for stand in stands)
    print(
        f"  Prometheus    {demo.url('prometheus')}/alerts\n"
        f"  Alertmanager  {demo.url('alertmanager')}\n"
        f"  receiver      {demo.url('receiver')}  (Bearer token in {token_file}){_scraped_as(catalog)}\n"
        f"  history       {demo.url('history')}/-/dashboards/weekly\n"
        f"  exporter      {demo.url('exporter')}/metrics  (node_exporter's memory gauges, instance demo-node)\n"
        f"  stand-ins     {names}\n",
        file=out,
        flush=True,
    )
    return demo


def _scraped_as(catalog: Catalog) -> str:
    """Where the self-monitoring rules get their metrics: they stay silent only while the receiver is scraped."""
    config = catalog.self_monitoring
    return f"; Prometheus scrapes its /metrics as job {config.job}" if config.enabled else ""


async def stop(demo: Demo) -> None:
    """Stop everything that was started, the last first."""
    for daemon in reversed(demo.daemons):
        await asyncio.to_thread(daemon.stop)
    for runner in reversed(demo.runners):
        await runner.cleanup()
    for stand in demo.stand_ins:
        await stand.stop()


async def _prometheus_state(session: aiohttp.ClientSession, demo: Demo) -> str:
    try:
        async with session.get(demo.url("prometheus") + "/api/v1/alerts") as response:
            alerts = (await response.json())["data"]["alerts"]
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
        return "unknown"
    states = [
        a["state"] for a in alerts if a["labels"].get("alertname") == ALERT and a["labels"].get("severity") == SEVERITY
    ]
    return states[0] if states else "inactive"


async def _watch(
    session: aiohttp.ClientSession, demo: Demo, progress: Progress, done: Callable[[], bool], what: str, timeout: float
) -> None:
    """Narrate every change until `done()`; a DemoError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        state = await _prometheus_state(session, demo)
        if state != progress.prometheus_state and state != "unknown":
            progress.prometheus_state = state
            progress.say(f"Prometheus: {ALERT} ({SEVERITY}) is {state}" + _state_note(state))
        alert = await asyncio.to_thread(demo.alert)
        if alert is not None:
            _narrate_alert(progress, demo, alert)
        for stand in demo.stand_ins:
            progress.show(stand)
        if done():
            return
        if time.monotonic() > deadline:
            raise DemoError(f"no {what} after {timeout:g} s; the daemons' logs are in {demo.workdir}")
        await asyncio.sleep(POLL_S)


def _state_note(state: str) -> str:
    if state == "pending":
        return " (it must hold for the rule's `for`)"
    if state == "firing":
        return ": sent to Alertmanager, which routes it to the receiver's webhook"
    return ""


def _narrate_alert(progress: Progress, demo: Demo, alert: dict) -> None:
    before, progress.alert = progress.alert or {}, alert
    policy = demo.config.policies[alert["policy"]]
    if not before:
        progress.say(f"receiver: alert #{alert['id']} recorded in the history; escalation policy {alert['policy']}")
    if alert["escalation_level"] > before.get("escalation_level", 0):
        level = alert["escalation_level"]
        step = policy.steps[level - 1]
        targets = ", ".join(f"{n.channel}" + (f" to {', '.join(n.to)}" if n.to else "") for n in step.notify)
        why = "" if level == 1 else f" (nobody acknowledged within {format_duration(step.after_ms * demo.speed)})"
        progress.say(f"receiver: escalation level {level}{why}: {targets}")
    if alert["acked_at"] and not before.get("acked_at"):
        progress.say(f"receiver: acknowledged by {alert['acked_by']}; no further escalation")
    if alert["status"] == "resolved" and before.get("status") != "resolved":
        progress.say(f"receiver: resolved; {alert['policy']} sends resolve notices ({policy.on_resolve})")


def _ack_link(demo: Demo) -> tuple[str, str] | None:
    """An ack link in a message to a person (level 1's robots post to groups), and that person: who the script
    has acknowledge. The first person of the contacts who has one, so that the story does not depend on which
    of a step's messages arrived first."""
    pattern = re.compile(re.escape(demo.url("receiver")) + r"/ack/[\w.=-]+")
    found: dict[str, str] = {}
    for stand in demo.stand_ins:
        for message in stand.shown():
            link = pattern.search(message.text)
            person = next(
                (name for name, c in demo.config.contacts.items() if any(a and a in message.to for a in c.values())),
                None,
            )
            if link and person:
                found.setdefault(person, link.group(0))
    person = next((name for name in demo.config.contacts if name in found), None)
    return (found[person], person) if person else None


async def scenario(demo: Demo, out: TextIO) -> Progress:
    """The script, narrated; returns what it saw."""
    progress = Progress(out)
    minute = 60 / demo.speed
    timeout = 60 + 120 * minute
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        demo.exporter.set_used(NORMAL)
        progress.say(f"exporter: memory in use on demo-node is {NORMAL:g}%")
        await asyncio.sleep(3 * minute)
        demo.exporter.set_used(LEAK)
        progress.say(f"exporter: a leak: memory climbs to {LEAK:g}%, over {ALERT}'s {SEVERITY} level ({demo.level:g}%)")
        await _watch(session, demo, progress, lambda: progress.alert is not None, "alert at the receiver", timeout)
        await _watch(
            session,
            demo,
            progress,
            # once every level-2 message is out, so that the person who acknowledges is always the same
            lambda: (
                (progress.alert or {}).get("escalation_level", 0) >= 2
                and progress.alert["queued"] == 0  # type: ignore[index]
                and _ack_link(demo) is not None
            ),
            "escalation to level 2",
            timeout,
        )
        link, person = _ack_link(demo)  # type: ignore[misc]
        async with session.post(link, data={"by": person}) as response:
            page = " ".join(re.findall(r"<p>(.*?)</p>", await response.text(), re.S))
        progress.say(
            f"{person} opens the link in the message and presses Acknowledge: HTTP {response.status}, “{page}”"
        )
        await _watch(session, demo, progress, lambda: bool((progress.alert or {}).get("acked_at")), "ack", timeout)
        await asyncio.sleep(2 * minute)
        demo.exporter.set_used(FIXED)
        progress.say(f"exporter: the leak is fixed: memory back to {FIXED:g}%")
        await _watch(
            session,
            demo,
            progress,
            lambda: (progress.alert or {}).get("status") == "resolved" and progress.alert["queued"] == 0,  # type: ignore[index]
            "resolve",
            timeout,
        )
    return progress


def summary(demo: Demo, progress: Progress) -> str:
    """The alert's life as the history recorded it, and where to look next."""
    with contextlib.closing(sqlite3.connect(f"file:{demo.db}?mode=ro", uri=True)) as conn:
        alert = conn.execute(
            "SELECT id, ack_seconds, resolve_seconds, acked_by FROM alerts WHERE id = ?",
            (progress.alert["id"],),  # type: ignore[index]
        ).fetchone()
        sent = conn.execute(
            "SELECT channel, count(*) FROM notifications WHERE alert_id = ? AND status = 'sent' GROUP BY channel "
            "ORDER BY channel",
            (alert[0],),
        ).fetchall()
    alert_id, ack_s, resolve_s, by = alert
    deliveries = ", ".join(f"{channel} {count}" for channel, count in sent)
    return (
        f"\ndone: {ALERT} fired, escalated to level 2, was acknowledged by {by} through the link "
        f"{ack_s:.1f} s after the first page, and resolved {resolve_s:.1f} s after it started.\n"
        f"messages delivered: {deliveries}\n\n"
        "Look around:\n"
        f"  the history's dashboard   {demo.url('history')}/-/dashboards/weekly\n"
        f"  this alert's row          {demo.url('history')}/history/alerts/{alert_id}\n"
        f"  its deliveries            {demo.url('history')}/history/notifications?alert_id={alert_id}\n"
        f"  Prometheus's alerts       {demo.url('prometheus')}/alerts\n"
        f"  Alertmanager              {demo.url('alertmanager')}\n"
        f"  the receiver's API        curl -H 'Authorization: Bearer {demo.token}' "
        f"{demo.url('receiver')}/api/v1/alerts\n"
        f"  the compiled files, logs  {demo.workdir}/  (removed on exit unless you gave --workdir)\n"
    )


async def run(rulesets: Path, workdir: Path, speed: int, once: bool, out: TextIO) -> None:
    """Start everything, play the script, then (unless `once`) keep it all up until Ctrl-C or SIGTERM."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        demo = await _until(stopping, start(rulesets, workdir, speed, out))
        if demo is None:
            return
        try:
            progress = await _until(stopping, scenario(demo, out))
            if progress is not None:
                print(summary(demo, progress), file=out, flush=True)
                if not once:
                    print("Everything keeps running: press Ctrl-C to stop it.", file=out, flush=True)
                    await stopping.wait()
        finally:
            print("stopping Prometheus, Alertmanager, Datasette, the receiver and the stand-ins", file=out, flush=True)
            await stop(demo)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _until(stopping: asyncio.Event, work: Coroutine[object, object, T]) -> T | None:
    """`work`'s result, or None when a stop signal comes first (then `work` is cancelled and cleans up)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stopping.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
