"""End to end on loopback: real Prometheus and Alertmanager (Debian packages), configured by `amcompanion
compile`, posting to the receiver; escalation in compressed time, an ack, a resolve."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from amcompanion.cli import main as amcompanion
from amcompanion.demo.daemons import Daemon, alertmanager, free_port, prometheus, prometheus_config
from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from tests.conftest import require_tool
from tests.receiver_support import FakeChannel, eventually, rows

CATALOG = """\
version: 1
defaults:
  for: 0s
  interval: 1s
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  escalation: oncall
receiver:
  url: http://127.0.0.1:{receiver_port}
  bearer_token_file: {token_file}
contacts:
  alice: {{email: alice@example.com}}
channels:
  ops: {{type: webhook, url: "http://127.0.0.1:{fake_port}/ops"}}
  pager: {{type: webhook, url: "http://127.0.0.1:{fake_port}/pager"}}
escalations:
  oncall:
    steps:
      - notify: [ops]
      - after: 3s
        notify: [{{channel: pager, to: [alice]}}]
      - after: 8s
        notify: [{{channel: pager, to: [alice]}}]
groups:
  - name: demo
    alerts:
      - alert: DemoGaugeHigh
        kind: threshold
        expr: demo_gauge
        above: 5
        severity: critical
        summary: "demo_gauge is {{{{ $value }}}} on {{{{ $labels.instance }}}}"
"""


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop()


async def test_prometheus_alertmanager_receiver_escalate_ack_resolve(
    tmp_path: Path,
    aiohttp_server,
    daemons: list[Daemon],  # type: ignore[no-untyped-def]
) -> None:
    require_tool("prometheus")
    require_tool("prometheus-alertmanager")
    ports = {name: free_port() for name in ("receiver", "fake", "am", "prom", "exporter")}
    token_file = tmp_path / "token"
    token_file.write_text("e2e-token\n")

    # the channels and the metric Prometheus scrapes
    fakes = {"ops": FakeChannel(), "pager": FakeChannel()}
    gauge = {"value": 9.0}
    side = web.Application()
    for name, fake in fakes.items():
        side.router.add_post(f"/{name}", fake.handle)
    await aiohttp_server(side, port=ports["fake"])

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(text=f'demo_gauge{{site="lab"}} {gauge["value"]}\n')

    exporter = web.Application()
    exporter.router.add_get("/metrics", scrape)
    await aiohttp_server(exporter, port=ports["exporter"])

    # compile the catalog: the rules, the Alertmanager config, the receiver's config
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "demo.yaml").write_text(
        CATALOG.format(receiver_port=ports["receiver"], token_file=token_file, fake_port=ports["fake"])
    )
    out = tmp_path / "generated"
    assert amcompanion(["compile", str(catalog), "-o", str(out), "-q"]) == 0

    # the receiver, in this process, on the port the catalog names
    config = load_receiver_config(out / "receiver" / "receiver.yaml")
    receiver = Receiver(config, Settings(str(tmp_path / "history.db"), token_file.read_text().strip()))
    await aiohttp_server(make_app(receiver), port=ports["receiver"])

    daemons.append(alertmanager(out / "alertmanager" / "alertmanager.yml", tmp_path, ports["am"]))
    (tmp_path / "prometheus.yml").write_text(
        prometheus_config(
            [out / "prometheus" / "rules" / "demo.yml"],
            ports["am"],
            {"demo": {"targets": [f"127.0.0.1:{ports['exporter']}"]}},
        )
    )
    daemons.append(prometheus(tmp_path / "prometheus.yml", tmp_path, ports["prom"]))

    db = tmp_path / "history.db"
    try:
        # the gauge is over 5: Prometheus fires, Alertmanager posts, step 1 goes out, then step 2 after 3 s
        await eventually(lambda: fakes["ops"].received, timeout=60, what="Alertmanager's first notification")
        (alert,) = rows(db, "SELECT * FROM alerts")
        assert alert["alertname"] == "DemoGaugeHigh" and alert["severity"] == "critical"
        assert alert["status"] == "firing" and alert["policy"] == "oncall"
        assert "demo_gauge is 9 on 127.0.0.1" in fakes["ops"].received[0]["text"]
        await eventually(lambda: fakes["pager"].received, timeout=15, what="escalation step 2")
        assert rows(db, "SELECT escalation_level FROM alerts")[0][0] == 2

        # alice acknowledges: step 3 (due at 8 s) never comes
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{ports['receiver']}/api/v1/alerts/{alert['id']}/ack"
            headers = {"Authorization": "Bearer e2e-token"}
            async with session.post(url, json={"by": "alice"}, headers=headers) as response:
                assert response.status == 200
        await asyncio.sleep(7)
        assert len(fakes["pager"].received) == 1

        # the gauge drops: Alertmanager sends the resolve, the history closes the alert
        gauge["value"] = 1.0
        await eventually(
            lambda: rows(db, "SELECT status FROM alerts")[0][0] == "resolved", timeout=60, what="the resolve"
        )
        (alert,) = rows(db, "SELECT * FROM alerts")
        assert alert["acked_by"] == "alice" and alert["resolved_at"] and alert["ends_at"]
        statuses = [r["status"] for r in rows(db, "SELECT status FROM alert_events ORDER BY id")]
        assert statuses == ["firing", "resolved"]
        await eventually(lambda: any(m["kind"] == "resolved" for m in fakes["ops"].received), what="resolve notice")
    except AssertionError:
        for daemon in daemons:
            print(f"{daemon.name}:\n{daemon.tail()}")
        raise
