"""`amcompanion serve` as a process: start-up checks, SIGHUP, SIGTERM, SIGKILL in a burst, `amcompanion ack`."""

import asyncio
import contextlib
import json
import os
import pty
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from amcompanion.demo.daemons import free_port
from amcompanion.receiver.outbox import DEFAULT_IN_FLIGHT
from tests.receiver_support import AUTH, TOKEN, FakeChannel, alert_payload, eventually, rows, write_config

PROCESS_TIMEOUT = 20.0


@asynccontextmanager
async def serving(
    config: Path, db: Path | str, port: int, *extra: str, log: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`amcompanion serve`, once it is ready; its log in the file `log` (a busy receiver's would fill a pipe nobody
    reads, and block it), else on `process.stderr`."""
    with log.open("wb") if log else contextlib.nullcontext(asyncio.subprocess.PIPE) as stderr:  # the child keeps it
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "amcompanion", "serve", "--config", str(config), "--db", str(db),
            "--listen", f"127.0.0.1:{port}", *extra,
            env={**os.environ, "AMCOMPANION_TOKEN": TOKEN},
            stderr=stderr,
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
                    said = log.read_text() if log else (await process.stderr.read()).decode()  # type: ignore[union-attr]
                    raise AssertionError(f"serve exited: {said}")
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
    tmp_path: Path, history_db: Path | str, aiohttp_server
) -> None:  # type: ignore[no-untyped-def]
    fake = FakeChannel(delay=0.02)
    config = write_config(tmp_path, {"ops": await fake_server(aiohttp_server, fake)})
    db, port = history_db, free_port()
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
    # A channel has at most max_in_flight messages out at once, so that is at most as many duplicates.
    assert duplicates <= DEFAULT_IN_FLIGHT


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


async def test_amcompanion_ack_stops_the_escalation_of_a_running_receiver(  # type: ignore[no-untyped-def]
    tmp_path: Path, history_db: Path | str, aiohttp_server
) -> None:
    fake = FakeChannel()
    config = write_config(tmp_path, {"ops": await fake_server(aiohttp_server, fake)})
    db, port = history_db, free_port()
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


async def _read_until(read: Callable[[], Awaitable[str]], needles: list[str], timeout: float = PROCESS_TIMEOUT) -> str:
    """What `read` gave until every needle has appeared (in any order)."""
    seen = ""
    deadline = asyncio.get_running_loop().time() + timeout
    while not all(n in seen for n in needles):
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"never saw {[n for n in needles if n not in seen]} in:\n{seen}")
        try:
            seen += await asyncio.wait_for(read(), left)
        except TimeoutError:
            continue
    return seen


async def _page_ack_resolve(session: aiohttp.ClientSession, port: int, fake: FakeChannel) -> None:
    """An alert fires and is paged; once the page is out, alice acknowledges it; then it resolves."""
    url = f"http://127.0.0.1:{port}"
    async with session.post(f"{url}/webhook/oncall", json=alert_payload("firing", "3" * 16), headers=AUTH) as r:
        assert r.status == 200
    await eventually(lambda: fake.received, what="the page")
    async with session.post(f"{url}/api/v1/alerts/1/ack", json={"by": "alice"}, headers=AUTH) as r:
        assert r.status == 200
    async with session.post(f"{url}/webhook/oncall", json=alert_payload("resolved", "3" * 16), headers=AUTH) as r:
        assert r.status == 200


async def test_serve_on_a_terminal_tells_each_event_in_a_line(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeChannel()
    config = write_config(tmp_path, {"ops": await fake_server(aiohttp_server, fake)})
    port = free_port()
    leader, follower = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amcompanion", "serve", "--config", str(config), "--db", str(tmp_path / "h.db"),
        "--listen", f"127.0.0.1:{port}", env={**os.environ, "AMCOMPANION_TOKEN": TOKEN}, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[str] = asyncio.Queue()
    loop.add_reader(leader, lambda: chunks.put_nowait(os.read(leader, 65536).decode("utf-8", "replace")))
    try:
        await _read_until(chunks.get, ["listening on"])
        async with aiohttp.ClientSession() as session:
            await _page_ack_resolve(session, port, fake)
        text = await _read_until(
            chunks.get,
            [
                "received DemoGaugeHigh (critical) #1 from Alertmanager, policy oncall",
                "DemoGaugeHigh (critical) #1: escalation step 1 (first notice): ops → its group",
                "sent page for DemoGaugeHigh (critical) #1: ops → its group (HTTP 200)",
                "DemoGaugeHigh (critical) #1 acknowledged by alice (via api): escalation stopped",
                "resolved DemoGaugeHigh (critical) #1 (Alertmanager says so)",
            ],
        )
        assert "{" not in text  # sentences, not JSON
        assert all(line[:8].count(":") == 2 for line in text.splitlines() if line.strip())  # each starts HH:MM:SS
    finally:
        loop.remove_reader(leader)
        os.close(leader)
        process.kill()
        await process.wait()


async def test_serve_writes_json_lines_when_not_on_a_terminal(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeChannel()
    config = write_config(tmp_path, {"ops": await fake_server(aiohttp_server, fake)})
    port = free_port()
    async with serving(config, tmp_path / "h.db", port) as process, aiohttp.ClientSession() as session:
        await _page_ack_resolve(session, port, fake)
        assert process.stderr is not None

        async def line() -> str:
            return (await process.stderr.readline()).decode()  # type: ignore[union-attr]

        text = await _read_until(line, ['"event": "resolved"'])
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    by_event = {e["event"]: e for e in events if "event" in e}
    assert {"received", "step", "sent", "acknowledged", "resolved"} <= set(by_event)
    assert by_event["received"]["alert_id"] == 1 and by_event["received"]["policy"] == "oncall"
    assert by_event["sent"]["channel"] == "ops" and by_event["sent"]["answer"] == "HTTP 200"
    assert by_event["acknowledged"]["by"] == "alice" and by_event["acknowledged"]["via"] == "api"
    assert by_event["step"]["targets"] == [{"channel": "ops", "recipient": ""}]


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amcompanion", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class RefusesBob(FakeChannel):
    """Pages to bob fail, whatever order the two alerts' pages arrive in (the answers of a FakeChannel go by
    arrival: a step-2 page could take the refusal meant for the other alert's first page)."""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body)
        if body["recipient"] == "bob":
            return web.Response(status=403, text="robot disabled")
        return web.Response(text="ok")


async def test_amcompanion_alerts_lists_ids_state_step_and_failed_pages(  # type: ignore[no-untyped-def]
    tmp_path: Path, history_db: Path | str, aiohttp_server
) -> None:
    good, broken = FakeChannel(), RefusesBob()
    config = write_config(
        tmp_path, {"ops": await fake_server(aiohttp_server, good), "pager": await fake_server(aiohttp_server, broken)}
    )
    data = json.loads(config.read_text())
    data["escalations"]["oncall"]["steps"][0]["notify"] = [{"channel": "ops"}, {"channel": "pager", "to": ["bob"]}]
    config.write_text(json.dumps(data))
    db, port = history_db, free_port()
    async with serving(config, db, port), aiohttp.ClientSession() as session:
        for n, name in ((1, "DiskFull"), (2, "HighLatency")):
            body = alert_payload("firing", f"{n:016x}", alertname=name, starts_at=f"2026-11-22T2{n}:00:00Z")
            async with session.post(f"http://127.0.0.1:{port}/webhook/oncall", json=body, headers=AUTH) as r:
                assert r.status == 200
        await eventually(lambda: rows(db, "SELECT COUNT(*) FROM notifications WHERE status = 'queued'")[0][0] == 0)
    code, out, _ = await _cli("alerts", "--db", str(db))
    assert code == 0
    header, second, *rest = out.splitlines()
    assert header.split() == ["ID", "STATE", "AGE", "STEP", "ALERT", "PAGED"]
    assert second.split()[:2] == ["2", "firing"] and "HighLatency" in second and "ops" in second
    assert any("FAILED pager → bob: HTTP 403: robot disabled" in line for line in rest)
    code, out, _ = await _cli("alerts", "--db", str(db), "--failed", "--json", "--limit", "1")
    (alert,) = json.loads(out)
    assert alert["alertname"] == "HighLatency" and alert["escalation_level"] >= 1
    # bob's page failed, so the escalation moved on to step 2 at once: alice was paged
    assert alert["paged"] == [{"channel": "ops", "recipient": ""}, {"channel": "pager", "recipient": "alice"}]
    assert alert["escalation_level"] == 2
    assert alert["failed"] == [{"channel": "pager", "recipient": "bob", "error": "HTTP 403: robot disabled"}]
    assert alert["age_seconds"] > 0
    code, out, _ = await _cli("alerts", "--db", str(db), "--state", "acknowledged")
    assert (code, out) == (0, "no alerts acknowledged\n")
    code, _, err = await _cli("alerts", "--db", str(tmp_path / "nope.db"))
    assert code == 1 and "no history database" in err


async def test_acknowledging_twice_says_who_did_it_first_and_writes_one_ack(tmp_path: Path) -> None:
    from amcompanion.receiver.config import load_receiver_config
    from amcompanion.receiver.payload import parse_notification
    from amcompanion.receiver.service import Receiver, Settings

    config = load_receiver_config(write_config(tmp_path, {"ops": "http://127.0.0.1:9/hook"}))
    receiver = Receiver(config, Settings(str(tmp_path / "h.db"), TOKEN))
    await receiver.db.open()
    note = parse_notification(json.dumps(alert_payload("firing", "4" * 16)).encode())
    await receiver.db.run(receiver.store.ingest, "oncall", note, receiver.clock.now())
    await receiver.db.close()
    db = str(tmp_path / "h.db")
    code, first, _ = await _cli("ack", "1", "--by", "wang", "--db", db)
    assert code == 0 and "(DemoGaugeHigh) acknowledged by wang at " in first
    code, second, _ = await _cli("ack", "1", "--by", "li", "--db", db, "--comment", "me too")
    assert code == 0 and "(DemoGaugeHigh) was already acknowledged by wang at " in second
    assert first.split(" at ")[1] == second.split(" at ")[1]  # the first ack's time
    assert rows(tmp_path / "h.db", "SELECT COUNT(*) FROM acks")[0][0] == 1


async def test_serve_refuses_a_template_that_does_not_compile(tmp_path: Path) -> None:
    (tmp_path / "broken.j2").write_text("{{ alert.alertname }}\n{% if %}\n")
    config = write_config(tmp_path, {"ops": "http://127.0.0.1:9/hook"}, ops={"template": "broken.j2"})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amcompanion", "serve", "--config", str(config), "--db", str(tmp_path / "h.db"),
        "--listen", f"127.0.0.1:{free_port()}", env={**os.environ, "AMCOMPANION_TOKEN": TOKEN},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT)
    assert process.returncode == 1
    assert "channel ops: template broken.j2:2: Expected an expression" in err.decode()
    assert "Traceback" not in err.decode()


async def test_sigterm_ends_the_event_streams_instead_of_waiting_for_them(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """A console's stream never finishes by itself: shutting down must end it, not wait out the grace period."""
    config = write_config(tmp_path, {"ops": await fake_server(aiohttp_server, FakeChannel())})
    db, port = tmp_path / "history.db", free_port()
    async with serving(config, db, port) as process, aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/api/v1/events", headers=AUTH) as stream:
            assert stream.status == 200
            process.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(stream.content.read(), 5)  # the server closes it: end of stream
            assert b"event:" not in rest
        assert await asyncio.wait_for(process.wait(), 5) == 0  # well inside the 15 s grace for requests


async def test_serve_on_postgresql_says_why_it_cannot_start(tmp_path: Path) -> None:
    """An unreachable server is named without its password, and without a traceback."""
    config = write_config(tmp_path, {"ops": "http://127.0.0.1:9/unused"})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amcompanion", "serve", "--config", str(config),
        "--db", f"postgresql://amc:hunter2@127.0.0.1:{free_port()}/postgres", "--listen", f"127.0.0.1:{free_port()}",
        env={**os.environ, "AMCOMPANION_TOKEN": TOKEN}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, raw = await asyncio.wait_for(process.communicate(), PROCESS_TIMEOUT * 2)
    err = raw.decode()
    assert process.returncode == 1 and "error: cannot open the history at postgresql://amc:***@127.0.0.1:" in err, err
    assert "hunter2" not in err and "Connection refused" in err and "Traceback" not in err
