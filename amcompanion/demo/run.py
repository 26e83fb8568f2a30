"""`amcompanion demo`: the whole loop on this machine, narrated.

The catalog is compiled with its waiting times compressed (plan.py) and every address on loopback; Debian's
Prometheus and Alertmanager run it, the receiver runs in this process, the channels' stand-ins print what each
person or group would see, and Datasette shows the history. The script drives one alert (drive.py): the
exporter's gauges move past its level; the alert fires, pages level 1, escalates to level 2 when nobody
acknowledges (if its policy has a second step), is acknowledged through a link in a message, and resolves
when the gauges are back.
"""

import asyncio
import contextlib
import json
import re
import secrets
import shlex
import signal
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

import aiohttp
from aiohttp import web

from amcompanion.catalog import load_catalog
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import Catalog
from amcompanion.demo import daemons
from amcompanion.demo.daemons import Daemon
from amcompanion.demo.drive import TARGET_LABELS, Drive, choose
from amcompanion.demo.exporter import Exporter
from amcompanion.demo.plan import Placeholders, compress, on_loopback
from amcompanion.demo.stand_ins import StandIn, base_url, place, press_acknowledge, stand_in
from amcompanion.drill.cli import render
from amcompanion.drill.plan import choose as choose_route
from amcompanion.drill.run import Endpoints, Waits, run_drills
from amcompanion.emit.files import write_catalog
from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import ReceiverConfig, load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.schedules import oncall
from amcompanion.validate import find_tool
from amcompanion.wording import plural

POLL_S = 0.25
STILL_WAITING_S = 5.0  # silence longer than this, and the narration says what it is waiting for
T = TypeVar("T")
SHOWN_LINES = 14  # of each message


class DemoError(Exception):
    pass


@dataclass
class Progress:
    """What the narration has seen so far, polled from Prometheus, the history and the stand-ins."""

    out: TextIO
    started: float = field(default_factory=time.monotonic)
    said: float = field(default_factory=time.monotonic)  # when the narration last said something
    prometheus_state: str = "inactive"
    alert: dict | None = None
    acked_via: str = ""
    printed: dict[str, list[str]] = field(default_factory=dict)  # stand-in → the texts of its messages printed

    def say(self, text: str) -> None:
        self.said = time.monotonic()
        print(f"[{self.said - self.started:6.1f}s] {text}", file=self.out, flush=True)

    def show(self, stand: StandIn) -> None:
        """The stand-in's new messages, and those changed since they were printed (a chat message updated in
        place when its button was pressed)."""
        shown, printed = stand.shown(), self.printed.setdefault(stand.channel, [])
        for n, message in enumerate(shown):
            if n < len(printed) and printed[n] == message.text:
                continue
            lines = message.text.strip().splitlines()
            cut = lines[:SHOWN_LINES] + (
                [f"… ({plural(len(lines) - SHOWN_LINES, 'more line')})"] if len(lines) > SHOWN_LINES else []
            )
            body = "\n".join(f"          │ {line}" for line in cut)
            updated = " (updated)" if n < len(printed) else ""
            self.say(f"{stand.label} → {message.to}{updated}\n{body}")
        self.printed[stand.channel] = [message.text for message in shown]


@dataclass
class Demo:
    """Everything the demo started, for the narration and for stopping it all."""

    workdir: Path
    speed: int
    drive: Drive
    config: ReceiverConfig
    ports: dict[str, int]
    token: str
    exporter: Exporter
    stand_ins: list[StandIn]
    person_tokens: dict[str, str] = field(default_factory=dict)  # each contact's console token
    routing: dict = field(default_factory=dict)  # the compiled Alertmanager config, where drills find their labels
    severities: list[str] = field(default_factory=list)
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
                "SELECT * FROM alerts WHERE alertname = ? AND coalesce(severity, '') = ? ORDER BY id DESC LIMIT 1",
                (self.drive.alert.name, self.drive.severity or ""),
            ).fetchone()
            if row is None:
                return None
            queued = conn.execute(
                "SELECT count(*) FROM notifications WHERE alert_id = ? AND status = 'queued'", (row["id"],)
            )
            pages: dict[int, list[tuple[str, str]]] = {}
            for page in conn.execute(
                "SELECT step, channel, recipient FROM notifications WHERE alert_id = ? AND kind = 'firing' ORDER BY id",
                (row["id"],),
            ):
                pages.setdefault(page["step"], []).append((page["channel"], page["recipient"]))
            named = {
                step["step"]: json.loads(step["oncall"])
                for step in conn.execute("SELECT step, oncall FROM escalations WHERE alert_id = ?", (row["id"],))
                if step["oncall"]
            }
            return {**dict(row), "queued": queued.fetchone()[0], "pages": pages, "named": named}


async def start(rulesets: Path, workdir: Path, speed: int, alert: str | None, out: TextIO) -> Demo:
    """Compile, choose the alert to drive, then start the stand-ins, the exporter, the receiver, Alertmanager,
    Prometheus and Datasette."""
    catalog = load_catalog(rulesets)
    # this process's servers listen from now on, so their ports stay theirs; the child daemons retry if need be
    reserved = {"receiver": daemons.reserve(), "exporter": daemons.reserve()}
    ports = {name: int(sock.getsockname()[1]) for name, sock in reserved.items()}
    ports.update({name: daemons.free_port() for name in ("alertmanager", "prometheus", "history")})
    channel_urls, places = {}, {}
    for name, settings in catalog.channels.items():
        places[name] = place(str(settings["type"]))
        ports[f"channel {name}"] = places[name][0]
        channel_urls[name] = base_url(str(settings["type"]), places[name][0])
    token = secrets.token_urlsafe(18)
    token_file = workdir / "token"
    token_file.write_text(token + "\n")
    receiver_url = f"http://127.0.0.1:{ports['receiver']}"
    generated = workdir / "generated"
    person_tokens = {name: secrets.token_urlsafe(12) for name in catalog.contacts}
    (workdir / "tokens").write_text("".join(f"{name} {token}\n" for name, token in person_tokens.items()))
    fast = on_loopback(compress(catalog, speed), receiver_url, str(token_file), channel_urls, person_tokens)
    _, output = write_catalog(
        fast, generated, 1, shlex.join(["amcompanion", "demo", str(rulesets), f"--speed={speed}"])
    )
    drive = choose(fast, output.documents["alertmanager/routes.test.yml"].data, alert)  # type: ignore[arg-type]
    for binary in ("prometheus", "prometheus-alertmanager"):
        find_tool(binary)
    config = load_receiver_config(generated / "receiver" / "receiver.yaml", Placeholders())
    stands = [stand_in(name, s, config.contacts, *places[name]) for name, s in config.channels.items()]
    demo = Demo(workdir, speed, drive, config, ports, token, Exporter(drive.labels), stands, person_tokens)
    demo.routing = output.documents["alertmanager/alertmanager.yml"].data  # type: ignore[assignment]
    demo.severities = fast.defaults.severities
    print(
        f"amcompanion demo: {rulesets}/ compiled into {generated}/ with time {speed}× faster "
        f"(a catalog minute lasts {60 / speed:g} s); everything listens on 127.0.0.1\n"
        f"It drives {drive.alert.name}{f' ({drive.severity})' if drive.severity else ''}, routed to the escalation "
        f"policy {drive.policy}, through the gauges its expression reads.",
        file=out,
        flush=True,
    )
    try:
        for stand in stands:
            await stand.start()
        demo.runners.append(await daemons.serve_app(demo.exporter.app(), reserved["exporter"]))
        receiver = Receiver(config, Settings(str(demo.db), token))
        demo.runners.append(await daemons.serve_app(make_app(receiver), reserved["receiver"]))
        alertmanager_yml = generated / "alertmanager" / "alertmanager.yml"
        await running(demo, "alertmanager", lambda port: daemons.alertmanager(alertmanager_yml, workdir, port))
        prometheus_yml = workdir / "prometheus.yml"  # written once Alertmanager has its port
        target = {"targets": [f"127.0.0.1:{ports['exporter']}"], "labels": {"instance": TARGET_LABELS["instance"]}}
        jobs = {TARGET_LABELS["job"]: target}
        if catalog.self_monitoring.enabled:  # its rules are live, and silent while the receiver is healthy
            jobs[catalog.self_monitoring.job] = {"targets": [f"127.0.0.1:{ports['receiver']}"]}
        prometheus_yml.write_text(
            daemons.prometheus_config(
                sorted((generated / "prometheus" / "rules").glob("*.yml")), ports["alertmanager"], jobs
            )
        )
        await running(demo, "prometheus", lambda port: daemons.prometheus(prometheus_yml, workdir, port))
        await running(demo, "history", lambda port: daemons.datasette(demo.db, workdir, port))
    except BaseException:
        await stop(demo)
        raise
    names = ", ".join(stand.label for stand in stands)
    gauges = ", ".join(sorted(drive.served(drive.calm)))
    print(
        f"{_look_around(demo)}"
        f"  the receiver              {demo.url('receiver')}  (Bearer token in {token_file}){_scraped_as(catalog)}\n"
        f"{_console(demo)}"
        f"  the exporter              {demo.url('exporter')}/metrics  ({gauges})\n"
        f"  stand-ins                 {names}\n"
        "(Debian's Prometheus and Alertmanager packages have no web pages: their APIs and amtool answer.)\n",
        file=out,
        flush=True,
    )
    return demo


async def running(demo: Demo, name: str, spawn: Callable[[int], daemons.Daemon]) -> None:
    """Start a child daemon and wait until it is ready, keeping the port it got in the demo's ports."""
    daemon, demo.ports[name] = await daemons.started(spawn, demo.ports[name])
    demo.daemons.append(daemon)


def _console(demo: Demo) -> str:
    """Where the live console is, and how to sign in as whoever the policy's schedules name now (everyone's
    token is in a file)."""
    now = datetime.now(UTC)
    policy = demo.config.policies[demo.drive.policy]
    on_call = {
        name: oncall.on_call(demo.config.schedules[name], now, {}, demo.config.contacts)
        for name in dict.fromkeys(t.schedule for step in policy.steps for t in step.notify if t.schedule)
    }
    person = next((p for people in on_call.values() for p in people), next(iter(demo.person_tokens), None))
    if person is None:
        return ""
    receiver = demo.url("receiver")
    lines = [
        f"  the console               {receiver}/console  (sign in as {person} with {demo.person_tokens[person]};"
        f" everyone's tokens: {demo.workdir}/tokens)"
    ]
    lines += [
        f"  on call for {name:<13} {', '.join(people) or 'nobody'}  (amcompanion oncall {name}: the next hand-offs)"
        for name, people in on_call.items()
    ]
    return "".join(line + "\n" for line in lines)


def _look_around(demo: Demo) -> str:
    """Where to look, as addresses that answer: Datasette's pages, Prometheus's and Alertmanager's APIs."""
    prometheus, alertmanager = demo.url("prometheus"), demo.url("alertmanager")
    return (
        f"  the history's dashboard   {demo.url('history')}/-/dashboards/weekly\n"
        f"  Prometheus's alerts       {prometheus}/api/v1/alerts  (JSON; its rules: {prometheus}/api/v1/rules)\n"
        f"  Alertmanager's alerts     {alertmanager}/api/v2/alerts  (JSON)\n"
        f"                            amtool alert query --alertmanager.url={alertmanager}\n"
    )


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
    name, severity = demo.drive.alert.name, demo.drive.severity
    states = [
        a["state"] for a in alerts if a["labels"].get("alertname") == name and a["labels"].get("severity") == severity
    ]
    return states[0] if states else "inactive"


async def _watch(
    session: aiohttp.ClientSession, demo: Demo, progress: Progress, done: Callable[[], bool], what: str, timeout: float
) -> None:
    """Narrate every change until `done()`, and what it waits for when nothing changes for a while; a DemoError
    naming `what` after `timeout` seconds."""
    started = time.monotonic()
    while True:
        state = await _prometheus_state(session, demo)
        if state != progress.prometheus_state and state != "unknown":
            progress.prometheus_state = state
            progress.say(f"Prometheus: {_named(demo.drive)} is {state}" + _state_note(state))
        alert = await asyncio.to_thread(demo.alert)
        if alert is not None:
            _narrate_alert(progress, demo, alert)
        for stand in demo.stand_ins:
            progress.show(stand)
        if done():
            return
        waited = time.monotonic() - started
        if waited > timeout:
            raise DemoError(f"no {what} after {timeout:g} s; the daemons' logs are in {demo.workdir}")
        if time.monotonic() - progress.said > STILL_WAITING_S:
            progress.say(f"… still waiting for {what} ({waited:.0f} s; the demo gives up after {timeout:.0f} s)")
        await asyncio.sleep(POLL_S)


def _named(drive: Drive) -> str:
    return drive.alert.name + (f" ({drive.severity})" if drive.severity else "")


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
        why = "" if level == 1 else f" (nobody acknowledged within {format_duration(step.after_ms * demo.speed)})"
        named = "".join(f"; {_oncall_said(record)}" for record in alert["named"].get(level, []))
        progress.say(f"receiver: escalation level {level}{why}: {_pages_said(alert['pages'].get(level, []))}{named}")
    if alert["acked_at"] and not before.get("acked_at"):
        progress.say(f"receiver: acknowledged by {alert['acked_by']}; no further escalation")
    if alert["status"] == "resolved" and before.get("status") != "resolved":
        progress.say(f"receiver: resolved; {alert['policy']} sends resolve notices ({policy.on_resolve})")


def _pages_said(pages: list[tuple[str, str]]) -> str:
    """`ops-dingtalk, sms to bob, mail to alice, bob`: each channel once, with whom it reached."""
    by_channel: dict[str, list[str]] = {}
    for channel, recipient in pages:
        by_channel.setdefault(channel, []).extend([recipient] if recipient else [])
    return ", ".join(channel + (f" to {', '.join(people)}" if people else "") for channel, people in by_channel.items())


def _oncall_said(record: dict) -> str:
    """Whom a schedule named, as the step recorded it: `bob is on call for infra-primary`."""
    people = " and ".join(record["people"]) or "nobody"
    role = {"oncall": "on call", "next_oncall": "next on call", "everyone": "on the schedule"}[record["who"]]
    verb = "is" if len(record["people"]) == 1 else "are"
    return f"{people} {verb} {role} for {record['schedule']}" + (
        f" ({record['fallback']})" if record.get("fallback") else ""
    )


def _ack_link(demo: Demo, alert_id: int, pages: list[tuple[str, str]]) -> tuple[str, str] | None:
    """An ack link of the alert and who the script has acknowledge through it: the first person `step` pages
    (then of the contacts) who was sent one, so that the story does not depend on which message arrived first;
    else the first contact, through a link in a group's message (its page asks who, among the contacts)."""
    pattern = re.compile(re.escape(demo.url("receiver")) + rf"/ack/{alert_id}\.[\w.=-]+")
    personal: dict[str, str] = {}
    group = None
    for stand in demo.stand_ins:
        for message in stand.shown():
            link = pattern.search(message.text)
            person = next(
                (name for name, c in demo.config.contacts.items() if any(a and a in message.to for a in c.values())),
                None,
            )
            if link and person:
                personal.setdefault(person, link.group(0))
            elif link:
                group = group or link.group(0)
    people = [recipient for _, recipient in pages if recipient] + list(demo.config.contacts)
    person = next((name for name in people if name in personal), None)
    if person is not None:
        return personal[person], person
    first = next(iter(demo.config.contacts), None)
    return (group, first) if group and first else None


async def _acknowledge(session: aiohttp.ClientSession, demo: Demo, progress: Progress, alert: dict) -> None:
    """As a person would: with the button of a chat message that has one, else through the link in a message;
    through the receiver's API when no message has either."""
    alert_id = alert["id"]
    pages = alert["pages"].get(alert["escalation_level"], [])
    people = list(dict.fromkeys([recipient for _, recipient in pages if recipient] + list(demo.config.contacts)))
    for stand in demo.stand_ins:
        settings = demo.config.channels[stand.channel]
        pressed = await press_acknowledge(stand, session, demo.url("receiver"), people, demo.config.contacts, settings)
        if pressed is not None:
            person, status = pressed
            progress.acked_via = f"the {stand.label} button"
            progress.say(f"{person} presses Acknowledge on the message in {stand.label}: the chat's signed call to"
                         f" the receiver is answered HTTP {status}")  # fmt: skip
            return
    found = _ack_link(demo, alert_id, pages)
    if found is None:
        url = f"{demo.url('receiver')}/api/v1/alerts/{alert_id}/ack"
        headers = {"Authorization": f"Bearer {demo.token}"}
        async with session.post(url, json={"by": "demo"}, headers=headers) as response:
            progress.acked_via = "the API"
            progress.say(f"no message has an ack link: the demo acknowledges through {url}: HTTP {response.status}")
        return
    link, person = found
    async with session.post(link, data={"by": person}) as response:
        page = " ".join(re.findall(r"<p>(.*?)</p>", await response.text(), re.S))
    progress.acked_via = "the link"
    progress.say(f"{person} opens the link in the message and presses Acknowledge: HTTP {response.status}, “{page}”")


def _waits(demo: Demo) -> str:
    """What stands between the gauges' move and the receiver, in the catalog's time and in the demo's."""
    for_ms = demo.drive.rule.for_ms
    held = f"Prometheus holds it pending for its `for` ({_both(demo, for_ms)}), then " if for_ms else ""
    return f"{held}Alertmanager waits the route's group_wait before it posts to the receiver"


def _both(demo: Demo, ms: int) -> str:
    return f"{format_duration(ms * demo.speed)}, here {ms / 1000:g} s"


async def scenario(demo: Demo, out: TextIO) -> Progress:
    """The script, narrated; returns what it saw."""
    progress = Progress(out)
    drive, minute = demo.drive, 60 / demo.speed
    timeout = 60 + 120 * minute
    policy = demo.config.policies[drive.policy]
    ack_level = min(2, len(policy.steps))  # the second step shows the escalation; a policy may have one only
    step = policy.steps[ack_level - 1]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        demo.exporter.serve(drive.served(drive.calm))
        served = "; ".join(drive.series(metric, value) for metric, value in drive.served(drive.calm).items())
        progress.say(f"exporter: {served}: {drive.explain(drive.calm)}")
        progress.say(f"waiting 3 catalog minutes ({3 * minute:g} s): Prometheus scrapes the calm values first")
        await asyncio.sleep(3 * minute)
        demo.exporter.serve(drive.served(drive.fire))
        progress.say(f"exporter: {drive.series(drive.metric, drive.fire)}: {drive.explain(drive.fire)}")
        progress.say(f"waiting for {drive.alert.name} to reach the receiver: {_waits(demo)}")
        await _watch(
            session,
            demo,
            progress,
            lambda: progress.alert is not None,
            "the alert at the receiver",
            timeout + drive.rule.for_ms / 1000,
        )
        if ack_level > 1:
            progress.say(f"waiting for level 2: nobody acknowledges within {_both(demo, step.after_ms)}")
        await _watch(
            session,
            demo,
            progress,
            # once every message of the step is out, so that the person who acknowledges is always the same
            lambda: (
                (progress.alert or {}).get("escalation_level", 0) >= ack_level and progress.alert["queued"] == 0  # type: ignore[index]
            ),
            f"escalation level {ack_level}'s messages",
            timeout + step.after_ms / 1000,
        )
        await _acknowledge(session, demo, progress, progress.alert)  # type: ignore[arg-type]
        await _watch(session, demo, progress, lambda: bool((progress.alert or {}).get("acked_at")), "ack", timeout)
        progress.say(f"waiting 2 catalog minutes ({2 * minute:g} s) while the fix is made")
        await asyncio.sleep(2 * minute)
        demo.exporter.serve(drive.served(drive.calm))
        progress.say(f"exporter: back to {drive.series(drive.metric, drive.calm)}: {drive.explain(drive.calm)}")
        progress.say("waiting for the resolve: Alertmanager sends it at the route's next group_interval")
        await _watch(
            session,
            demo,
            progress,
            lambda: (progress.alert or {}).get("status") == "resolved" and progress.alert["queued"] == 0,  # type: ignore[index]
            "resolve",
            timeout,
        )
    return progress


async def drill_every_policy(demo: Demo) -> str:
    """`amcompanion drill` of every policy, as its report prints: the path to each first step, proven. A policy in
    its quiet hours now is drilled all the same (as --loud), straight to the receiver."""
    now = datetime.now(UTC)
    found = {policy: choose_route(demo.routing, policy, demo.severities, now) for policy in demo.config.policies}
    endpoints = Endpoints(demo.url("alertmanager"), demo.url("receiver"), demo.token)
    outcomes = await run_drills(endpoints, [routes[0] for routes in found.values() if routes], False, Waits(60.0))
    return render(outcomes, endpoints)


def summary(demo: Demo, progress: Progress) -> str:
    """The alert's life as the history recorded it, and where to look next."""
    with contextlib.closing(sqlite3.connect(f"file:{demo.db}?mode=ro", uri=True)) as conn:
        alert = conn.execute(
            "SELECT id, ack_seconds, resolve_seconds, acked_by, escalation_level FROM alerts WHERE id = ?",
            (progress.alert["id"],),  # type: ignore[index]
        ).fetchone()
        sent = conn.execute(
            "SELECT channel, count(*) FROM notifications WHERE alert_id = ? AND status = 'sent' GROUP BY channel "
            "ORDER BY channel",
            (alert[0],),
        ).fetchall()
    alert_id, ack_s, resolve_s, by, level = alert
    deliveries = ", ".join(f"{channel} {count}" for channel, count in sent)
    paged = f"escalated to level {level}" if level > 1 else "paged level 1"
    return (
        f"\ndone: {_named(demo.drive)} fired, {paged}, was acknowledged by {by} through {progress.acked_via} "
        f"{ack_s:.1f} s after the first page, and resolved {resolve_s:.1f} s after it started.\n"
        f"messages delivered: {deliveries}\n\n"
        "Look around:\n"
        f"{_look_around(demo)}"
        f"{_console(demo)}"
        f"  this alert's row          {demo.url('history')}/history/alerts/{alert_id}\n"
        f"  its deliveries            {demo.url('history')}/history/notifications?alert_id={alert_id}\n"
        f"  the receiver's API        curl -H 'Authorization: Bearer {demo.token}' "
        f"{demo.url('receiver')}/api/v1/alerts\n"
        f"  the compiled files, logs  {demo.workdir}/  (removed on exit unless you gave --workdir)\n"
    )


async def run(rulesets: Path, workdir: Path, speed: int, once: bool, alert: str | None, out: TextIO) -> None:
    """Start everything, play the script, then (unless `once`) keep it all up until Ctrl-C or SIGTERM."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        demo = await _until(stopping, start(rulesets, workdir, speed, alert, out))
        if demo is None:
            return
        try:
            progress = await _until(stopping, scenario(demo, out))
            if progress is not None:
                print(summary(demo, progress), file=out, flush=True)
                print("Then a drill of every escalation policy (amcompanion drill):", file=out, flush=True)
                report = await _until(stopping, drill_every_policy(demo))
                print(report or "", file=out, flush=True)
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
