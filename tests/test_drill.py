"""`amcompanion drill` end to end on loopback: the real console script posts to a real Alertmanager (compiled by
`amcompanion compile`), which posts to the receiver, which pages webhook channels served here. Also: the drill's
labels follow the catalog's routes, quiet hours keep a drill out (and really mute the route in Alertmanager),
--loud, --wait-ack, a channel that refuses, and bad input."""

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.catalog.reader import load_catalog
from amcompanion.cli import main as amcompanion
from amcompanion.compiler.alertmanager import receivers_for
from amcompanion.compiler.build import compile_catalog
from amcompanion.demo.daemons import Daemon, alertmanager, free_port
from amcompanion.drill.plan import choose
from amcompanion.drill.quiet import contains
from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from tests.conftest import require_tool
from tests.receiver_support import FakeChannel, eventually, rows

TOKEN = "drill-token"
CATALOG = """\
version: 1
defaults:
  interval: 1s
  group_wait: 1s
  group_interval: {group_interval}
  repeat_interval: 1h
receiver:
  url: http://127.0.0.1:{receiver_port}
  bearer_token_file: {token_file}
contacts:
  alice: {{email: alice@example.com}}
channels:
  ops: {{type: webhook, url: "http://127.0.0.1:{fake_port}/ops"}}
  pager: {{type: webhook, url: "http://127.0.0.1:{fake_port}/pager"}}
  boss: {{type: webhook, url: "http://127.0.0.1:{fake_port}/boss"}}
  broken: {{type: webhook, url: "http://127.0.0.1:{fake_port}/broken"}}
escalations:
  oncall:
    steps:
      - notify: [ops, {{channel: pager, to: [alice]}}]
      - after: 2s
        notify: [boss]
  flaky:
    steps:
      - notify: [broken]
  nightly:
    steps:
      - notify: [ops]
routes:
  - name: web
    match: {{team: web}}
    escalation: oncall
  - name: storage
    match: {{team: storage}}
    escalation: flaky
  - name: batch
    match: {{team: batch}}
    escalation: nightly
    quiet_hours: always
quiet_hours:
  always:
    - weekdays: ["sunday:saturday"]
groups:
  - name: web
    labels: {{team: web}}
    alerts:
      - alert: WebDown
        expr: up{{job="web"}} == 0
        severity: critical
        summary: web is down
"""


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


@pytest.fixture
async def loop_of_parts(request, tmp_path: Path, aiohttp_server, daemons: list[Daemon]):  # type: ignore[no-untyped-def]
    """The compiled catalog, the receiver (in this process), Alertmanager and the channels; the drill's argv.
    Its routes' group_interval is 1s unless the test asks for another (indirect parametrization)."""
    group_interval = getattr(request, "param", "1s")
    require_tool("prometheus-alertmanager")
    ports = {name: free_port() for name in ("receiver", "fake", "am")}
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    fakes = {name: FakeChannel() for name in ("ops", "pager", "boss", "broken")}
    fakes["broken"].answers = [(400, {}, '{"error": "no such hook"}')] * 10
    side = web.Application()
    for name, fake in fakes.items():
        side.router.add_post(f"/{name}", fake.handle)
    await aiohttp_server(side, port=ports["fake"])
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog.yaml").write_text(
        CATALOG.format(
            receiver_port=ports["receiver"],
            token_file=token_file,
            fake_port=ports["fake"],
            group_interval=group_interval,
        )
    )
    out = tmp_path / "generated"
    assert amcompanion(["compile", str(catalog), "-o", str(out), "-q"]) == 0
    config = load_receiver_config(out / "receiver" / "receiver.yaml")
    receiver = Receiver(config, Settings(str(tmp_path / "history.db"), TOKEN))
    await aiohttp_server(make_app(receiver), port=ports["receiver"])
    daemons.append(alertmanager(out / "alertmanager" / "alertmanager.yml", tmp_path, ports["am"]))
    await daemons[-1].ready()
    argv = ["drill", "--catalog", str(catalog), "--alertmanager", f"http://127.0.0.1:{ports['am']}", "--timeout", "30s"]
    return {"fakes": fakes, "argv": argv, "db": tmp_path / "history.db", "ports": ports, "token": token_file}


async def drill(*argv: str) -> tuple[int, str, str]:
    """The real console script, beside the servers of this event loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amcompanion", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_a_drill_proves_the_path_and_takes_only_the_first_step(loop_of_parts) -> None:  # type: ignore[no-untyped-def]
    parts = loop_of_parts
    code, out, err = await drill(*parts["argv"], "oncall", "--json")
    assert code == 0, out + err
    (outcome,) = json.loads(out)
    assert outcome["status"] == "passed", outcome
    assert outcome["labels"]["team"] == "web" and outcome["labels"]["drill"] == "true"  # the route `web`
    hops = {hop["what"]: hop for hop in outcome["hops"]}
    assert hops["Alertmanager"]["ok"] and hops["receiver"]["ok"]
    assert hops["channel ops"]["detail"].startswith("delivered: HTTP 200")
    assert hops["pager → alice"]["detail"].startswith("delivered: HTTP 200")
    times = [hop["after_s"] for hop in outcome["hops"]]
    assert times == sorted(times) and 0 <= times[-1] < 30
    # what the channels got says it is a drill
    (page,) = parts["fakes"]["ops"].received
    assert page["title"].startswith("DRILL — no action needed")
    assert "DRILL — no action needed" in page["text"]
    # the history has it as a drill, resolved by the drill through Alertmanager; step 2 never came
    (alert,) = rows(parts["db"], "SELECT * FROM alerts")
    assert json.loads(alert["labels"])["drill"] == "true"
    await eventually(
        lambda: rows(parts["db"], "SELECT status FROM alerts")[0]["status"] == "resolved", 30, "the drill resolved"
    )
    await asyncio.sleep(2.5)  # past step 2's deadline
    assert parts["fakes"]["boss"].received == []
    assert rows(parts["db"], "SELECT escalation_level FROM alerts")[0]["escalation_level"] == 1


@pytest.mark.parametrize("loop_of_parts", ["6s"], indirect=True)
async def test_a_second_drill_waits_while_alertmanager_holds_its_group(loop_of_parts) -> None:  # type: ignore[no-untyped-def]
    """Alertmanager holds a new alert of a group still open (the first drill's, resolved a moment ago) until the
    group's next interval: the second drill waits for that on top of --timeout, instead of failing at 2 s."""
    for _ in range(2):
        code, out, err = await drill(*loop_of_parts["argv"], "oncall", "--timeout", "2s")
        assert code == 0 and "oncall: PASSED" in out, out + err
    assert len([m for m in loop_of_parts["fakes"]["ops"].received if m["kind"] == "firing"]) == 2


async def test_a_page_that_fails_fails_the_drill_with_the_channels_answer(loop_of_parts) -> None:  # type: ignore[no-untyped-def]
    code, out, err = await drill(*loop_of_parts["argv"], "flaky")
    assert code == 1, out + err
    assert "flaky: FAILED" in out and "not delivered: channel broken" in out
    assert "HTTP 400" in out and "no such hook" in out  # the channel's answer, as the receiver recorded it
    assert "0 passed, 1 failed, 0 skipped." in out


async def test_quiet_hours_keep_a_drill_out_unless_loud(loop_of_parts) -> None:  # type: ignore[no-untyped-def]
    parts = loop_of_parts
    code, out, err = await drill(*parts["argv"], "nightly")
    assert code == 0, out + err
    assert "nightly: SKIPPED" in out and "quiet hours now (always)" in out
    # and Alertmanager really mutes that route: an ordinary alert for it never reaches the receiver
    ports = parts["ports"]
    async with aiohttp.ClientSession() as session:
        alert = {"labels": {"alertname": "BatchLate", "team": "batch", "severity": "warning"}}
        async with session.post(f"http://127.0.0.1:{ports['am']}/api/v2/alerts", json=[alert]) as response:
            assert response.status == 200
        await asyncio.sleep(4)  # group_wait 1s, group_interval 1s: it would have come by now
    assert rows(parts["db"], "SELECT * FROM alerts") == []
    code, out, err = await drill(*parts["argv"], "nightly", "--loud", "--json")
    assert code == 0, out + err
    (outcome,) = json.loads(out)
    assert outcome["status"] == "passed" and "straight to the receiver" in outcome["hops"][0]["detail"]
    received = parts["fakes"]["ops"].received
    await eventually(lambda: len(received) == 2, 10, "the resolve notice")  # the drill resolves itself at once
    firing, resolved = received
    assert (firing["kind"], resolved["kind"]) == ("firing", "resolved")
    assert resolved["title"].startswith("DRILL — no action needed: [RESOLVED]")


async def test_wait_ack_reports_who_acknowledged(loop_of_parts) -> None:  # type: ignore[no-untyped-def]
    parts = loop_of_parts
    running = asyncio.create_task(drill(*parts["argv"], "oncall", "--wait-ack", "--ack-timeout", "60s"))
    await eventually(lambda: rows(parts["db"], "SELECT id FROM alerts"), 30, "the drill recorded")
    alert_id = rows(parts["db"], "SELECT id FROM alerts")[0]["id"]
    await eventually(lambda: parts["fakes"]["pager"].received, 30, "the page")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"http://127.0.0.1:{parts['ports']['receiver']}/api/v1/alerts/{alert_id}/ack"
    async with aiohttp.ClientSession() as session, session.post(url, json={"by": "alice"}, headers=headers) as answer:
        assert answer.status == 200
    code, out, err = await running
    assert code == 0, out + err
    (line,) = [line for line in out.splitlines() if "by alice via api" in line]
    assert " ok " in line and " acknowledged " in line


async def test_a_drill_without_the_token_says_so(loop_of_parts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it")
    code, out, _ = await drill(*loop_of_parts["argv"], "oncall", "--token-file", str(wrong))
    assert code == 1
    assert "refused the API token (HTTP 401)" in out


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert amcompanion(["drill", "--catalog", str(tmp_path / "none")]) == 1
    assert "none" in capsys.readouterr().err
    assert amcompanion(["drill", "nosuch", "--catalog", "rulesets"]) == 2
    assert "no escalation policy nosuch" in capsys.readouterr().err
    assert amcompanion(["drill", "--timeout", "soon", "--catalog", "rulesets"]) == 2
    assert "--timeout: expected a duration" in capsys.readouterr().err
    assert amcompanion(["drill", "--alertmanager", "alertmanager:9093", "--catalog", "rulesets"]) == 2
    assert "--alertmanager: expected an http:// or https:// URL" in capsys.readouterr().err


# -- which labels: the catalog's own routes, checked against the routing walk -------------------------------
def rulesets_config() -> tuple[dict, list[str], list[str]]:
    catalog = load_catalog(Path("rulesets"))
    config = compile_catalog(catalog).documents["alertmanager/alertmanager.yml"].data
    return config, catalog.defaults.severities, list(catalog.policies)  # type: ignore[return-value]


@pytest.mark.parametrize("hour", range(0, 24, 3))
def test_every_policy_of_the_example_catalog_is_reached_by_its_drill_labels(hour: int) -> None:
    config, severities, policies = rulesets_config()
    moment = datetime(2026, 12, 2, hour, 30, tzinfo=UTC)
    for policy in policies:
        found = choose(config, policy, severities, moment)
        assert found, policy
        for target in found:
            assert policy in receivers_for(config["route"], target.labels), target
            assert target.labels["drill"] == "true"


def test_the_database_drill_avoids_the_night_muted_route() -> None:
    config, severities, _ = rulesets_config()
    night = datetime(2026, 12, 2, 16, 30, tzinfo=UTC)  # 00:30 in Asia/Shanghai: `nights` mutes db-business-hours
    first, *rest = choose(config, "db-oncall", severities, night)
    assert first.muted is None and first.labels["severity"] == "critical"  # db-pages: any hour
    # Alertmanager may hold a drill for the route's group_interval (the root's 5m: critical's group_wait is 0s)
    # when a drill of the same labels ran a moment before: the drill waits that long on top of --timeout
    assert first.held_s == 300
    assert any(t.muted == "nights" for t in rest)


@pytest.mark.parametrize(
    ("interval", "moment", "expected"),
    [
        ({"times": [{"start_time": "22:00", "end_time": "24:00"}], "location": "Asia/Shanghai"}, "14:30", True),
        ({"times": [{"start_time": "22:00", "end_time": "24:00"}], "location": "Asia/Shanghai"}, "13:59", False),
        ({"weekdays": ["saturday", "sunday"]}, "2026-12-05T10:00", True),  # a Saturday
        ({"weekdays": ["monday:friday"]}, "2026-12-05T10:00", False),
        ({"days_of_month": ["-1"]}, "2026-12-31T10:00", True),  # the month's last day
        ({"days_of_month": ["-1"]}, "2026-12-30T10:00", False),
        ({"months": ["december"], "years": ["2026"]}, "2026-12-05T10:00", True),
        ({"months": ["1:11"]}, "2026-12-05T10:00", False),
    ],
)
def test_time_intervals_as_alertmanager_reads_them(interval: dict, moment: str, expected: bool) -> None:
    at = datetime.fromisoformat(moment if "T" in moment else f"2026-12-02T{moment}").replace(tzinfo=UTC)
    assert contains(interval, at) is expected


def test_compiled_quiet_hours_reach_the_routes_alerts_end_in() -> None:
    """Alertmanager does not hand a route's time intervals to its children: each timing child must carry them."""
    config = yaml.safe_load(Path("generated/alertmanager/alertmanager.yml").read_text())
    for route in config["route"]["routes"]:
        for child in route.get("routes", []):
            assert child.get("mute_time_intervals") == route.get("mute_time_intervals"), route


def test_a_backwards_weekday_range_is_refused_where_it_is_written(tmp_path: Path) -> None:
    """Alertmanager refuses its whole config for "monday:sunday" (its weeks start on Sunday): say so at the line."""
    (tmp_path / "quiet.yaml").write_text(
        'version: 1\nquiet_hours:\n  always:\n    - weekdays: ["monday:sunday"]\n'
        "escalations:\n  p:\n    steps: [{notify: [c]}]\nchannels:\n  c: {type: webhook, url: http://127.0.0.1:9/}\n"
    )
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    (diag,) = [str(d) for d in caught.value.diagnostics]
    assert "quiet.yaml:4:18: quiet_hours.always[0].weekdays[0]:" in diag and '"monday:sunday" runs backwards' in diag
    assert '["monday:saturday", "sunday:sunday"]' in diag


# -- the weekly drill the compiler writes ------------------------------------------------------------------
WEEKLY = """\
version: 1
channels:
  ops: {type: webhook, url: "http://127.0.0.1:9/ops"}
escalations:
  oncall: {steps: [{notify: [ops]}]}
  nightly: {steps: [{notify: [ops]}]}
routes:
  - {match: {team: web}, escalation: oncall}
  - {match: {team: batch}, escalation: nightly, quiet_hours: nights}
quiet_hours:
  nights:
    - times: [{start_time: "22:00", end_time: "07:00"}]
      location: Europe/Berlin
drills:
"""


def compiled(tmp_path: Path, drills: str) -> tuple[Path, str]:
    catalog = tmp_path / "catalog"
    catalog.mkdir(exist_ok=True)
    (catalog / "catalog.yaml").write_text(WEEKLY + drills)
    out = tmp_path / "generated"
    result = subprocess.run(
        [sys.executable, "-m", "amcompanion", "compile", str(catalog), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return out, result.stderr


@pytest.mark.parametrize("at", ["monday 10:00", "saturday 23:58", "sunday 00:00"])
def test_the_weekly_drill_fires_at_its_minute_as_promtool_proves(tmp_path: Path, at: str) -> None:
    promtool = require_tool("promtool")
    out, _ = compiled(tmp_path, f'  at: "{at}"\n  lasts: 5m\n  escalations: [oncall]\n')
    test_file = out / "prometheus" / "tests" / "amcompanion-drills.test.yml"
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((out / "prometheus" / "rules" / "amcompanion-drills.yml").read_text())
    (rule,) = rules["groups"][0]["rules"]
    assert rule["labels"]["drill"] == "true" and rule["labels"]["team"] == "web"
    assert rule["annotations"]["summary"].startswith("DRILL — no action needed")
    # the same rule, a minute late, fails its tests: they pin the minute
    late = rule["expr"].replace(">= ", ">= 1 + ", 1)
    (out / "prometheus" / "rules" / "amcompanion-drills.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "amcompanion-drills", "rules": [{**rule, "expr": late}]}]})
    )
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1


def test_the_weekly_drill_routes_to_its_policy_as_amtool_checks(tmp_path: Path) -> None:
    amtool = require_tool("amtool")
    out, _ = compiled(tmp_path, '  at: "tuesday 09:30"\n')
    config = out / "alertmanager" / "alertmanager.yml"
    cases = yaml.safe_load((out / "alertmanager" / "routes.test.yml").read_text())["tests"]
    drills = [case for case in cases if case["labels"].get("drill") == "true"]
    assert {case["labels"]["drill_policy"] for case in drills} == {"oncall", "nightly"}
    for case in drills:
        labels = [f"{k}={v}" for k, v in case["labels"].items()]
        result = subprocess.run(
            [
                amtool,
                "config",
                "routes",
                "test",
                f"--config.file={config}",
                "--verify.receivers=" + ",".join(case["receivers"]),
                *labels,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert case["receivers"] == [case["labels"]["drill_policy"]]


def test_a_drill_time_in_every_routes_quiet_hours_is_left_out_with_a_warning(tmp_path: Path) -> None:
    out, stderr = compiled(tmp_path, '  at: "wednesday 23:00"\n')  # 00:00 in Berlin in winter, 01:00 in summer
    assert "the weekly drill leaves out nightly: every route to it is muted at Wednesday 23:00 UTC (nights)" in stderr
    rules = yaml.safe_load((out / "prometheus" / "rules" / "amcompanion-drills.yml").read_text())
    assert [r["labels"]["drill_policy"] for r in rules["groups"][0]["rules"]] == ["oncall"]


@pytest.mark.parametrize(
    ("drills", "message"),
    [
        ('  at: "someday 10:00"\n', 'drills.at: expected a weekday and a UTC time such as "monday 10:00"'),
        ('  at: "monday 25:00"\n', "drills.at: expected a weekday"),
        ('  at: "monday 10:00"\n  lasts: 90s\n', "drills.lasts: expected whole minutes"),
        ('  at: "monday 10:00"\n  escalations: [nosuch]\n', "nosuch"),
        ("  lasts: 5m\n", "at"),
    ],
)
def test_bad_drills_are_refused_where_they_are_written(tmp_path: Path, drills: str, message: str) -> None:
    (tmp_path / "catalog.yaml").write_text(WEEKLY + drills)
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    text = "\n".join(str(d) for d in caught.value.diagnostics)
    assert "catalog.yaml:" in text and message in text, text
