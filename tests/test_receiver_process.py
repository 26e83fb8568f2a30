"""`amcompanion serve` as a process: start-up checks, SIGHUP, SIGTERM, SIGKILL in a burst, `amcompanion ack`."""

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from amcompanion.demo.daemons import free_port
from tests.receiver_support import AUTH, TOKEN, FakeChannel, alert_payload, eventually, rows, write_config

PROCESS_TIMEOUT = 20.0


@asynccontextmanager
async def serving(config: Path, db: Path, port: int, *extra: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amcompanion", "serve", "--config", str(config), "--db", str(db),
        "--listen", f"127.0.0.1:{port}", *extra,
        env={**os.environ, "AMCOMPANION_TOKEN": TOKEN},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            for _ in range(int(PROCESS_TIMEOUT / 0.05)):
                if process.returncode is not None:
                    raise AssertionError(f"serve exited: {(await process.stderr.read()).decode()}")  # type: ignore[union-attr]
                if await ready():
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("serve did not become ready")
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def fake_server(aiohttp_server, fake: FakeChannel) -> str:  # type: ignore[no-untyped-def]
    app = web.Application()
    app.router.add_post("/hook", fake.handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook"))


async def test_sigkill_in_a_burst_loses_no_accepted_alert_and_every_page_goes_out(
    tmp_path: Path, aiohttp_server
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeChannel(delay=0.02)
    config = write_config(tmp_path, {"ops": await fake_server(aiohttp_server, fake)})
    db, port = tmp_path / "history.db", free_port()
    accepted: list[str] = []
    async with serving(config, db, port) as process, aiohttp.ClientSession() as session:

        async def post(i: int) -> None:
            body = alert_payload("firing", f"{i:016x}", alertname=f"Burst{i}")
            try:
                async with session.post(f"http://127.0.0.1:{port}/webhook/oncall", json=body, headers=AUTH) as r:
                    if r.status == 200:
                        accepted.append(f"{i:016x}")
            except aiohttp.ClientError:
                pass  # the process died under this request: not accepted, Alertmanager would retry it

        first = [asyncio.create_task(post(i)) for i in range(150)]
        await eventually(lambda: len(fake.received) >= 10, timeout=10, what="deliveries under way")
        process.send_signal(signal.SIGKILL)
        await asyncio.gather(*first)
        await process.wait()
    assert len(accepted) >= 10
    async with serving(config, db, port):
        await eventually(
            lambda: rows(db, "SELECT COUNT(*) FROM notifications WHERE status = 'queued'")[0][0] == 0,
            timeout=PROCESS_TIMEOUT,
            what="the outbox to drain after the restart",
        )
    stored = {r["fingerprint"] for r in rows(db, "SELECT fingerprint FROM alerts")}
    assert set(accepted) <= stored  # every alert answered 200 is in the history
    sent = rows(
        db, "SELECT a.fingerprint FROM notifications n JOIN alerts a ON a.id = n.alert_id WHERE n.status = 'sent'"
    )
    assert {r["fingerprint"] for r in sent} == stored  # and was paged
    delivered = [m["alerts"][0]["fingerprint"] for m in fake.received]
    assert set(delivered) == stored
    duplicates = len(delivered) - len(set(delivered))
    # At-least-once: a message the channel got but whose `sent` was not committed before the kill goes out again.
    # A channel sends one message at a time, so that is at most one duplicate per channel.
    assert duplicates <= 1


async def test_sighup_reloads_and_sigterm_exits_zero(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeChannel()
    config = write_config(tmp_path, {"ops": await fake_server(aiohttp_server, fake)})
    db, port = tmp_path / "history.db", free_port()
    url = f"http://127.0.0.1:{port}/webhook/"
    async with serving(config, db, port) as process, aiohttp.ClientSession() as session:
        async with session.post(url + "night", json=alert_payload("firing", "1" * 16), headers=AUTH) as r:
            assert r.status == 404
        data = json.loads(config.read_text())
        data["escalations"]["night"] = data["escalations"]["oncall"]
        config.write_text(json.dumps(data))
        process.send_signal(signal.SIGHUP)

        async def night_known() -> bool:
            async with session.post(url + "night", json=alert_payload("firing", "1" * 16), headers=AUTH) as r:
                return r.status == 200

        for _ in range(100):
            if await night_known():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("SIGHUP did not load the new policy")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), PROCESS_TIMEOUT) == 0


async def test_serve_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"ops": "http://127.0.0.1:9/hook"})
    env = {k: v for k, v in os.environ.items() if k != "AMCOMPANION_TOKEN"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amcompanion", "serve", "--config", str(config), "--db", str(tmp_path / "h.db"),
        "--listen", f"127.0.0.1:{free_port()}", env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT)
    assert process.returncode == 1
    assert "no token: set receiver.bearer_token_file in the catalog or AMCOMPANION_TOKEN" in err.decode()


async def test_amcompanion_ack_stops_the_escalation_of_a_running_receiver(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeChannel()
    config = write_config(tmp_path, {"ops": await fake_server(aiohttp_server, fake)})
    db, port = tmp_path / "history.db", free_port()
    async with serving(config, db, port), aiohttp.ClientSession() as session:
        body = alert_payload("firing", "2" * 16)
        async with session.post(f"http://127.0.0.1:{port}/webhook/oncall", json=body, headers=AUTH) as r:
            assert r.status == 200
        ack = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "amcompanion", "ack", "1", "--by", "carol", "--db", str(db),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(ack.communicate(), PROCESS_TIMEOUT)
        assert ack.returncode == 0 and "acknowledged by carol" in out.decode()
        async with session.get(f"http://127.0.0.1:{port}/api/v1/alerts/1", headers=AUTH) as r:
            alert = await r.json()
        assert alert["status"] == "acknowledged" and alert["next_step_at"] is None
        assert alert["acks"][0]["via"] == "cli"
