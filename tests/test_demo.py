"""`amcompanion demo`: its catalog transformation (pure), and the command itself end to end, as a person runs it:
real Prometheus and Alertmanager, the receiver, the channels' stand-ins and Datasette, all on loopback."""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amcompanion.catalog import load_catalog
from amcompanion.cli import main as amcompanion
from amcompanion.compiler import selfmon
from amcompanion.compiler.build import compile_catalog
from amcompanion.demo.drive import Undrivable, choose
from amcompanion.demo.plan import Placeholders, compress, on_loopback
from amcompanion.demo.stand_ins import BUILDERS, Unsupported, base_url, place, stand_in
from amcompanion.emit.files import write_catalog
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.probe import probe
from amcompanion.schedules.oncall import on_call
from tests.conftest import ROOT, require_tool

RULESETS = ROOT / "rulesets"
DEMO = [sys.executable, "-m", "amcompanion", "demo", str(RULESETS)]
DEMO_TIMEOUT_S = 240  # the script takes about 30 s at speed 60; a slow CI machine gets far more


def demo_catalog(tmp_path: Path):  # type: ignore[no-untyped-def]
    catalog = load_catalog(RULESETS)
    urls = {name: base_url(str(s["type"]), 10_000 + i) for i, (name, s) in enumerate(catalog.channels.items())}
    return catalog, on_loopback(compress(catalog, 60), "http://127.0.0.1:9999", str(tmp_path / "token"), urls)


def test_compress_divides_every_wait_and_keeps_what_promql_measures(tmp_path: Path) -> None:
    catalog, fast = demo_catalog(tmp_path)
    assert (fast.defaults.for_ms, fast.defaults.interval_ms) == (5_000, 1_000)  # 5m and 1m
    # what the catalog leaves to Alertmanager's defaults (30s, 5m, 4h) is sped up too
    assert fast.defaults.group_wait == {"emergency": 0, "critical": 0, "warning": 500, "info": 1_000, "*": 500}
    assert fast.defaults.group_interval == {"*": 5_000}
    assert fast.defaults.repeat_interval["critical"] == 60_000  # 1h
    assert fast.defaults.repeat_interval["*"] == 240_000  # 4h
    # quiet hours are wall-clock times no speed shortens: the demo pages now
    assert [r.quiet_hours for r in catalog.routes if r.quiet_hours] == [["nights"], ["weekends"]]
    assert not [r.name for r in fast.routes if r.quiet_hours or r.active_hours]
    assert fast.defaults.sla == {"critical": (5_000, 30_000), "warning": (15_000, 120_000)}
    steps = [(s.after_ms, [n.channel for n in s.notify]) for s in fast.policies["infra-oncall"].steps]
    assert steps == [
        (0, ["ops-dingtalk", "ops-wecom"]),
        (10_000, ["sms", "mail", "ops-slack"]),
        (20_000, ["voice", "voice", "ops-feishu"]),
    ]
    assert fast.policies["infra-oncall"].repeat_every_ms == 30_000
    assert fast.self_monitoring.channel_failing_for_ms == 10_000  # 10m
    before = {a.name: a for a in catalog.alerts()}
    for alert in fast.alerts():
        assert alert.for_ms == before[alert.name].for_ms // 60
        assert (alert.expr, alert.lookback_ms, alert.baseline_ms) == (
            before[alert.name].expr,
            before[alert.name].lookback_ms,
            before[alert.name].baseline_ms,
        )
    high_cpu = next(a for a in fast.alerts() if a.name == "HighCPU")
    assert high_cpu.escalate is not None and high_cpu.escalate.after_ms == 30_000
    assert catalog.defaults.for_ms == 300_000, "the input catalog is left as it was"
    # the history counts in whole seconds: no SLA target under 1 s however fast the demo runs
    assert compress(catalog, 600).defaults.sla == {"critical": (1_000, 3_000), "warning": (1_500, 12_000)}


def test_the_demo_catalog_compiles_to_files_that_reach_only_loopback_and_amtool_accepts(tmp_path: Path) -> None:
    amtool = require_tool("amtool")
    _, fast = demo_catalog(tmp_path)
    out = tmp_path / "generated"
    write_catalog(fast, out, 1)
    alertmanager = (out / "alertmanager" / "alertmanager.yml").read_text()
    hosts = set(re.findall(r"://([^/:\s'\"]+)", alertmanager))
    hosts -= {"runbooks.example.com", "grafana.example.com"}  # links in annotations, which nothing fetches
    assert hosts == {"127.0.0.1"}
    assert "smarthost" not in alertmanager, "the native e-mail receiver is emptied"
    config = load_receiver_config(out / "receiver" / "receiver.yaml", Placeholders())
    for name, settings in config.channels.items():  # `base_url` overrides the service's host in every channel
        assert str(settings["base_url"]).startswith(("http://127.0.0.1:", "smtp://127.0.0.1:")), name
    check = subprocess.run(
        [amtool, "check-config", str(out / "alertmanager" / "alertmanager.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "group_wait: 500ms" in alertmanager


def test_a_channel_type_without_a_stand_in_is_refused_rather_than_reached() -> None:
    with pytest.raises(Unsupported, match='type "webhook" have no stand-in'):
        base_url("webhook", 1234)


def test_without_prometheus_the_demo_says_how_to_install_it(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # nothing to find there
    run = subprocess.run([*DEMO, "--once"], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1
    assert (
        "prometheus is not installed (not on PATH); Debian/Ubuntu: apt-get install --no-install-recommends prometheus"
        in run.stderr
    )


def _demo_tools() -> None:
    require_tool("prometheus")
    require_tool("prometheus-alertmanager")


def test_demo_fires_escalates_is_acknowledged_with_a_chat_button_and_resolves(tmp_path: Path) -> None:
    """HighMemory: an expression over two gauges, one of them driven, with three levels."""
    _demo_tools()
    workdir = tmp_path / "demo"
    # step 2 texts whoever infra-primary has on call, computed here from the catalog (alice or bob this week)
    schedule = load_catalog(RULESETS).schedules["infra-primary"]
    (person,) = on_call(schedule, datetime.now(UTC), {}, {})
    phone = {"alice": "+8613800000001", "bob": "+8613800000002"}[person]
    run = subprocess.run(
        [*DEMO, "--once", "--alert", "HighMemory", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    out = run.stdout
    assert "  the console               http://127.0.0.1:" in out and f"/console  (sign in as {person} with " in out
    assert f"  on call for infra-primary {person}  (amcompanion oncall infra-primary: the next hand-offs)" in out

    # the narration, in order
    memory = 'node_memory_MemAvailable_bytes{instance="demo-node",job="node"}'
    stages = [
        "It drives HighMemory (warning), routed to the escalation policy infra-oncall",
        f'exporter: {memory} 28; node_memory_MemTotal_bytes{{instance="demo-node",job="node"}} 100: HighMemory\'s '
        "expression is 72, past none of its levels (info 80, warning 90, critical 95)",
        f"exporter: {memory} 7: HighMemory's expression is 93, over its warning level (90)",
        "waiting for HighMemory to reach the receiver: Prometheus holds it pending for its `for` (5m, here 5 s)",
        "Prometheus: HighMemory (warning) is pending",
        "Prometheus: HighMemory (warning) is firing",
        "receiver: alert #1 recorded in the history; escalation policy infra-oncall",
        "receiver: escalation level 1: ops-dingtalk, ops-wecom",
        "waiting for level 2: nobody acknowledges within 10m, here 10 s",
        "… still waiting for escalation level 2's messages (5 s; the demo gives up after",
        f"receiver: escalation level 2 (nobody acknowledged within 10m): sms to {person}, mail to alice, bob,"
        f" ops-slack; {person} is on call for infra-primary",
        f"{person} presses Acknowledge on the message in Slack app ops-slack: the chat's signed call to the receiver"
        " is answered HTTP 200",
        f"receiver: acknowledged by {person}; no further escalation",
        "Slack app ops-slack → #C0OPS0001 (updated)",
        f"Acknowledged by {person} (via Slack) at 20",
        f"exporter: back to {memory} 28: HighMemory's expression is 72",
        "receiver: resolved; infra-oncall sends resolve notices",
        f"done: HighMemory (warning) fired, escalated to level 2, was acknowledged by {person} through the Slack app"
        " ops-slack button",
        "Then a drill of every escalation policy (amcompanion drill):",
        "3 passed, 0 failed, 0 skipped.",
        "stopping Prometheus, Alertmanager, Datasette",
    ]
    positions = [out.find(stage) for stage in stages]
    assert -1 not in positions, [s for s, p in zip(stages, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    report = out[out.find("Then a drill") : out.find("3 passed, 0 failed")]
    for policy in ("infra-oncall", "db-oncall", "payments-oncall"):
        assert f"{policy}: PASSED — 2 first-step pages delivered" in report, report
    assert "FAIL" not in report, report

    # the stand-ins printed each message as its reader sees it
    assert re.search(r"DingTalk ops-dingtalk → the group\n\s+│ ### \[WARNING\] HighMemory", out)
    assert re.search(rf"Twilio SMS sms → SMS to \{phone}\n\s+│ \[WARNING\] HighMemory on demo-node", out)
    assert re.search(r"email mail → bob@example.com\n\s+│ Subject: \[RESOLVED\] HighMemory", out)
    assert "Twilio voice voice →" not in out, f"level 3 never came: {person} acknowledged"

    # the history has the whole life of the alert
    conn = sqlite3.connect(workdir / "history.db")
    conn.row_factory = sqlite3.Row
    (alert,) = conn.execute("SELECT * FROM alerts WHERE severity = 'warning'").fetchall()
    assert (alert["alertname"], alert["status"], alert["policy"]) == ("HighMemory", "resolved", "infra-oncall")
    assert alert["escalation_level"] == 2 and alert["acked_by"] == person and alert["resolved_at"]
    assert alert["ack_seconds"] > 0 and alert["resolve_seconds"] > alert["ack_seconds"]
    events = [
        r[0] for r in conn.execute("SELECT status FROM alert_events WHERE alert_id = ? ORDER BY id", [alert["id"]])
    ]
    assert events == ["firing", "resolved"]
    acks = conn.execute("SELECT by, via FROM acks WHERE alert_id = ?", [alert["id"]]).fetchall()
    assert [tuple(a) for a in acks] == [(person, "chat")]
    sent = conn.execute(
        "SELECT kind, step, channel, recipient, status FROM notifications WHERE alert_id = ? ORDER BY kind, step, "
        "channel, recipient",
        [alert["id"]],
    ).fetchall()
    assert [tuple(n) for n in sent] == [
        ("firing", 1, "ops-dingtalk", "", "sent"),
        ("firing", 1, "ops-wecom", "", "sent"),
        ("firing", 2, "mail", "alice", "sent"),
        ("firing", 2, "mail", "bob", "sent"),
        ("firing", 2, "ops-slack", "", "sent"),
        ("firing", 2, "sms", person, "sent"),
        ("resolved", 0, "mail", "alice", "sent"),
        ("resolved", 0, "mail", "bob", "sent"),
        ("resolved", 0, "ops-dingtalk", "", "sent"),
        ("resolved", 0, "ops-slack", "", "sent"),
        ("resolved", 0, "ops-wecom", "", "sent"),
        ("resolved", 0, "sms", person, "sent"),
    ]
    (named,) = conn.execute("SELECT oncall FROM escalations WHERE alert_id = ? AND step = 2", [alert["id"]]).fetchone()
    assert json.loads(named) == [{"schedule": "infra-primary", "who": "oncall", "people": [person]}]
    assert "voice" not in {n["channel"] for n in sent}

    # the receiver's own alerts were live (Prometheus scraped it under their job) and never fired
    prometheus_yml = json.loads((workdir / "prometheus.yml").read_text())
    assert "amcompanion" in {job["job_name"] for job in prometheus_yml["scrape_configs"]}
    assert "Prometheus scrapes its /metrics as job amcompanion" in out
    assert conn.execute("SELECT count(*) FROM alerts WHERE alertname LIKE 'Amcompanion%'").fetchone()[0] == 3
    drills = conn.execute("SELECT labels, escalation_level FROM alerts WHERE alertname = 'AmcompanionDrill'")
    for labels, level in drills:  # the drills, one per policy, each its first step only
        assert json.loads(labels)["drill"] == "true" and level == 1
    # each drill's report line for a page names the channel's answer, as the receiver recorded it
    assert re.search(r"ok    channel ops-dingtalk\s+delivered: HTTP 200 \(1 try\)", out), out[-3000:]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _assert_self_monitoring_is_live(prometheus: str) -> None:
    """The demo's Prometheus scrapes the receiver under the rules' job, and evaluates them without errors."""

    def api(path: str) -> dict:
        with urllib.request.urlopen(prometheus + path, timeout=5) as response:
            return json.load(response)["data"]

    names = [alert.name for alert in selfmon.ALERTS]
    deadline = time.monotonic() + 30
    while True:  # until the first scrape and evaluation
        targets = [t["health"] for t in api("/api/v1/targets")["activeTargets"] if t["labels"]["job"] == "amcompanion"]
        groups = [g for g in api("/api/v1/rules")["groups"] if g["name"] == "amcompanion"]
        health = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
        if (targets == ["up"] and health == dict.fromkeys(names, "ok")) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert targets == ["up"] and health == dict.fromkeys(names, "ok"), (targets, health)


def _assert_what_the_banner_shows_answers(banner: str) -> None:
    """Debian's packages have no web UI: every page or API the banner shows answers 200 (the receiver's root
    is no page: the Bearer token's line names it), and its amtool command line works."""
    urls = re.findall(r"http://127\.0\.0\.1:\d+/[^\s)]+", banner)
    assert {re.sub(r":\d+", "", url) for url in urls} == {
        "http://127.0.0.1/-/dashboards/weekly",
        "http://127.0.0.1/api/v1/alerts",
        "http://127.0.0.1/api/v1/rules",
        "http://127.0.0.1/api/v2/alerts",
        "http://127.0.0.1/metrics",
        "http://127.0.0.1/console",  # its sign-in page: the banner gives the token
    }, banner
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200, url
    command = re.search(r"amtool alert query --alertmanager\.url=\S+", banner)
    assert command, banner
    query = subprocess.run(
        [require_tool("amtool"), *command.group(0).split()[1:]], capture_output=True, text=True, timeout=30
    )
    assert query.returncode == 0 and query.stdout.startswith("Alertname"), query.stdout + query.stderr


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    _demo_tools()
    demo = subprocess.Popen(
        [*DEMO, "--workdir", str(tmp_path / "demo")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until everything is up: the stand-ins line comes last
            line = demo.stdout.readline()  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("  stand-ins") or not line:
                break
        banner = "".join(lines)
        ports = {int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", banner)}
        assert len(ports) == 5 and all(_listening(p) for p in ports), banner
        _assert_what_the_banner_shows_answers(banner)
        prometheus = re.search(r"Prometheus's alerts +(http://127\.0\.0\.1:\d+)", banner)
        assert prometheus, banner
        _assert_self_monitoring_is_live(prometheus.group(1))
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:  # failed before its Ctrl-C: the demo stops its daemons itself, as on Ctrl-C
            demo.send_signal(signal.SIGINT)
            try:
                demo.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()  # its daemons run in sessions of their own and outlive it: only a stuck demo gets here
    assert demo.returncode == 0, rest
    assert "stopping Prometheus, Alertmanager, Datasette, the receiver and the stand-ins" in rest
    assert "Traceback" not in rest
    assert not [p for p in ports if _listening(p)]


EXTRA_CHANNELS = {  # types the bundled catalog does not use, as a catalog would set them
    "team-slack": {"type": "slack", "url": "https://hooks.slack.com/services/T0001/B0001/demo-slack-secret"},
    "team-discord": {"type": "discord", "url": "https://discord.com/api/webhooks/1234567890/demo-discord-token"},
    "team-teams": {
        "type": "teams",
        "url": "https://prod-00.westus.logic.azure.com:443/workflows/0123abcd/triggers/manual/paths/invoke"
        "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=demo-teams-signature",
    },
    "incidents": {"type": "pagerduty", "routing_key": Placeholders()["PD_ROUTING_KEY"]},
    "wecom-app": {
        "type": "wecom_app",
        "corp_id": "ww0demo",
        "corp_secret": "demo-secret",
        "agent_id": "1000002",
        "toparty": "2",
    },
    "feishu-app": {
        "type": "feishu_app",
        "app_id": "cli_demo",
        "app_secret": "demo-secret",
        "verification_token": "demo-token",
        "encrypt_key": "demo-key",
        "chat_id": "oc_demo",
    },
    "aliyun-sms": {
        "type": "aliyun_sms",
        "access_key_id": "LTAIdemo",
        "access_key_secret": "demo-secret",
        "sign_name": "amcompanion",
        "template_code": "SMS_100000001",
    },
    "aliyun-voice": {
        "type": "aliyun_voice",
        "access_key_id": "LTAIdemo",
        "access_key_secret": "demo-secret",
        "tts_code": "TTS_100000001",
    },
    "tencent-sms": {
        "type": "tencent_sms",
        "secret_id": "AKIDdemo",
        "secret_key": "demo-key",
        "sdk_app_id": "1400000001",
        "sign_name": "amcompanion",
        "template_id": "100001",
    },
    "tencent-voice": {
        "type": "tencent_voice",
        "secret_id": "AKIDdemo",
        "secret_key": "demo-key",
        "sdk_app_id": "1400000002",
        "template_id": "200001",
    },
}
PERSONAL = {
    "twilio_sms",
    "twilio_voice",
    "email",
    "telegram",
    "tencent_sms",
    "tencent_voice",
    "aliyun_sms",
    "aliyun_voice",
}  # reach alice herself


async def test_channels_test_reaches_every_stand_in_and_it_shows_the_message(tmp_path: Path) -> None:
    """What `amcompanion channels test` does (the channel's own code: signatures, credentials, wire format, its
    default template), against the stand-in of every type the demo supports: the stand-in accepts it, and
    shown() is what the reader sees."""
    _, fast = demo_catalog(tmp_path)
    out = tmp_path / "generated"
    write_catalog(fast, out, 1)
    config = load_receiver_config(out / "receiver" / "receiver.yaml", Placeholders())
    settings = {**config.channels, **EXTRA_CHANNELS}
    assert {str(s["type"]) for s in settings.values()} == set(BUILDERS)
    alice = dict(config.contacts["alice"])
    for name, channel_settings in settings.items():
        kind = str(channel_settings["type"])
        port, listening = place(kind)
        stand = stand_in(name, channel_settings, config.contacts, port, listening)
        on_loopback = {name: {**channel_settings, "base_url": base_url(kind, port)}}
        # to a person where the channel can address one (telegram: alice's own chat, which the stand-in knows
        # from the contacts), else to the channel's group
        personal = kind in PERSONAL
        await stand.start()
        try:
            result = await probe(replace(config, channels=on_loopback), name, "alice" if personal else None, 10)
        finally:
            await stand.stop()
        assert result.outcome.result == "ok", (name, result)
        (shown,) = stand.shown()
        assert "Amcompanion" in shown.text, (name, shown)  # AmcompanionChannelTest, cut by the SMS services
        reached = {
            "twilio_sms": f"SMS to {alice['phone']}",
            "twilio_voice": f"call to {alice['phone']}",
            "aliyun_sms": f"SMS to {alice['phone'].removeprefix('+86')}",  # as Aliyun takes mainland numbers
            "aliyun_voice": f"call to {alice['phone'].removeprefix('+86')}",
            "tencent_sms": f"SMS to {alice['phone']}",
            "tencent_voice": f"call to {alice['phone']}",
            "email": alice["email"],
            "telegram": f"chat {alice['telegram_chat_id']}",
            "dingtalk": "the group",
            "wecom": "the group",
            "feishu": "the group",
            "slack": "the channel",
            "discord": "the channel",
            "teams": "the channel",
            "slack_app": "#C0OPS0001",
            "pagerduty": "PagerDuty",
            "wecom_app": "department 2",
            "feishu_app": "the group oc_demo",
        }
        assert shown.to == reached[kind], (name, shown)


def test_bad_options_are_refused_before_anything_starts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    cases = {
        ("--speed", "0"): "--speed: expected 1 to 600, got 0",
        ("--workdir", str(tmp_path / "used")): "is not empty; name a new directory",
        (str(tmp_path / "nowhere"),): "no such catalog directory: name yours (amcompanion demo teams/payments)",
    }
    for argv, message in cases.items():
        assert amcompanion(["demo", *argv]) == 2, argv
        assert message in capsys.readouterr().err
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine"


def test_the_demo_drives_the_first_alert_it_can_and_says_why_it_cannot_drive_the_others() -> None:
    catalog = load_catalog(RULESETS)
    routes = compile_catalog(catalog).documents["alertmanager/routes.test.yml"].data
    first = choose(catalog, routes)  # type: ignore[arg-type]
    assert (first.alert.name, first.severity, first.policy) == ("DatabaseDown", "critical", "db-oncall")
    assert (first.served(first.calm), first.served(first.fire)) == ({"mysql_up": 1.0}, {"mysql_up": 0.0})
    assert first.labels == {"instance": "demo-node", "job": "node"}
    memory = choose(catalog, routes, "HighMemory")  # type: ignore[arg-type]
    assert memory.severity == "warning", "info goes to a native receiver, which the receiver never hears of"
    assert memory.served(memory.fire) == {"node_memory_MemAvailable_bytes": 7.0, "node_memory_MemTotal_bytes": 100.0}
    assert (memory.signal(memory.calm), memory.signal(memory.fire)) == (pytest.approx(72), pytest.approx(93))
    reasons = {
        "HighCPU": "its expression uses rate()",
        "NodeDown": "it reads up, which Prometheus writes itself",
        "KubeRolloutBroken": "a composite alert fires on other alerts: drive one of them",
        "KubeHpaMaxedOut": "info reaches no escalation policy (only info-native)",
    }
    for name, reason in reasons.items():
        with pytest.raises(Undrivable) as refused:
            choose(catalog, routes, name)  # type: ignore[arg-type]
        assert str(refused.value).startswith(f"the demo cannot drive {name}:\n  {name}: {reason}\n"), refused.value
        assert str(refused.value).endswith("--alert takes the name of one.")


OWN_CATALOG = """\
version: 1
contacts:
  erin: {phone: "+15550000001"}
channels:
  team-wecom: {type: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${WECOM_KEY}"}
  sms: {type: twilio_sms, account_sid: "${TWILIO_SID}", auth_token: "${TWILIO_TOKEN}", from: "+15550000000"}
escalations:
  queue-oncall:
    steps:
      - notify: [team-wecom]
      - after: 5m
        notify: [{channel: sms, to: [erin]}]
routes:
  - name: queue
    match: {team: queue}
    escalation: queue-oncall
    quiet_hours: always          # the demo pages anyway: wall-clock windows do not speed up
quiet_hours:
  always:
    - times: [{start_time: "00:00", end_time: "24:00"}]
groups:
  - name: queue
    labels: {team: queue}
    alerts:
      - alert: ConsumersSlow
        kind: threshold
        expr: sum(rate(queue_consumed_total[5m]))
        below: {warning: 1}
        summary: "Consumers are slow"
      - alert: InstanceDown
        kind: expr
        expr: up == 0
        severity: warning
        summary: "{{ $labels.instance }} is down"
"""
QUEUE_BACKLOG = """\
      - alert: QueueBacklog
        kind: threshold
        expr: queue_depth{queue="orders", env=~"prod|staging"}
        above: {warning: 100}
        for: 1m
        summary: "{{ $value }} messages wait in {{ $labels.queue }}"
"""


def _own_catalog(tmp_path: Path, alerts: str = "") -> Path:
    """A team's catalog, not the bundled one: no HighMemory, no Alertmanager timings of its own."""
    root = tmp_path / "team"
    root.mkdir()
    (root / "catalog.yaml").write_text(OWN_CATALOG + alerts)
    return root


def test_a_catalog_with_no_alert_the_demo_can_drive_is_refused_with_each_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = _own_catalog(tmp_path)
    assert amcompanion(["demo", str(root), "--once"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "error: the demo cannot drive any alert of this catalog:\n"
        "  ConsumersSlow: its expression uses rate()\n"
        "  InstanceDown: it reads up, which Prometheus writes itself\n"
        "An alert the demo can drive reads only gauges: plain selectors"
    ), err
    assert err.endswith("--alert takes the name of one.\n")
    assert amcompanion(["demo", str(root), "--alert", "Nope"]) == 1
    assert "--alert Nope: no such alert in this catalog (its alerts: ConsumersSlow, InstanceDown)" in (
        capsys.readouterr().err
    )


def test_the_demo_plays_a_catalog_of_ones_own(tmp_path: Path) -> None:
    """The first alert it can drive, through a selector's matchers; Alertmanager's defaults and quiet hours
    would otherwise hold the page back."""
    _demo_tools()
    workdir = tmp_path / "demo"
    catalog = str(_own_catalog(tmp_path, QUEUE_BACKLOG))
    run = subprocess.run(
        [sys.executable, "-m", "amcompanion", "demo", catalog, "--once", "--speed", "600", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    stages = [
        "It drives QueueBacklog (warning), routed to the escalation policy queue-oncall",
        'exporter: queue_depth{env="prod",instance="demo-node",job="node",queue="orders"} 110: QueueBacklog\'s '
        "expression is 110, over its warning level (100)",
        "Prometheus holds it pending for its `for` (1m, here 0.1 s)",
        "receiver: escalation level 1: team-wecom",
        "receiver: escalation level 2 (nobody acknowledged within 5m): sms to erin",
        "erin opens the link in the message and presses Acknowledge: HTTP 200",
        'exporter: back to queue_depth{env="prod",instance="demo-node",job="node",queue="orders"} 90',
        "done: QueueBacklog (warning) fired, escalated to level 2, was acknowledged by erin through the link",
    ]
    positions = [run.stdout.find(stage) for stage in stages]
    assert -1 not in positions and positions == sorted(positions), run.stdout
    alertmanager = (workdir / "generated" / "alertmanager" / "alertmanager.yml").read_text()
    # Alertmanager's defaults (30s, 5m, 4h), which the catalog leaves alone, at 600×; and no mute
    timings = [
        line.strip() for line in alertmanager.splitlines() if re.match(r"  (group_wait|group_interval|repeat)", line)
    ]
    assert timings == ["group_wait: 100ms", "group_interval: 500ms", "repeat_interval: 24s"]
    assert "mute_time_intervals" not in alertmanager
    conn = sqlite3.connect(workdir / "history.db")
    alert = conn.execute(
        "SELECT alertname, status, escalation_level, acked_by FROM alerts WHERE alertname <> 'AmcompanionDrill'"
    ).fetchall()
    assert alert == [("QueueBacklog", "resolved", 2, "erin")]
    # then the drill of its one policy, through its one route, its first step only
    assert "queue-oncall: PASSED — 1 first-step page delivered" in run.stdout
    (drill,) = conn.execute("SELECT labels, escalation_level FROM alerts WHERE alertname = 'AmcompanionDrill'")
    assert json.loads(drill[0])["drill_policy"] == "queue-oncall" and drill[1] == 1


def test_a_daemon_whose_port_was_taken_meanwhile_starts_on_another(tmp_path: Path) -> None:
    """Another process may bind a port between the demo choosing it and the child binding it (demos run side by
    side in the tests): the child that finds it in use is started again on a fresh port, and is ready there."""
    import asyncio

    from amcompanion.demo import daemons

    require_tool("prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: x}\nreceivers: [{name: x}]\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        daemon, port = asyncio.run(daemons.started(lambda p: daemons.alertmanager(config, tmp_path, p), busy))
        try:
            assert port != busy and daemon.url == f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(f"{daemon.url}/-/ready", timeout=5) as answer:
                assert answer.status == 200
        finally:
            daemon.stop()
