"""What every channel shares: the registry, size limits, base URLs, template blocks, the webhook channel."""

import asyncio
import json
import os
import sys
from pathlib import Path

from aiohttp import web

from amcompanion.catalog.reader import CHANNEL_FIELDS
from amcompanion.receiver.channels import CHANNEL_TYPES
from amcompanion.receiver.channels.base import TRUNCATED, Response, json_answer, rebase, truncate
from amcompanion.receiver.messages import Renderer
from tests.channel_support import assert_golden, delivery, render_default, sample_alert
from tests.receiver_support import FakeChannel, write_config


def test_every_channel_type_the_catalog_accepts_has_a_sender() -> None:
    assert set(CHANNEL_TYPES) == set(CHANNEL_FIELDS)


def test_truncate_keeps_text_that_fits_and_marks_what_it_cuts() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("x" * 50, 30)
    assert len(cut) == 30 and cut.endswith(TRUNCATED)
    # in bytes, a multi-byte character is never split
    chinese = "告警" * 100
    cut = truncate(chinese, 100, measure="bytes")
    assert len(cut.encode()) <= 100 and cut.endswith(TRUNCATED)
    assert cut.removesuffix(TRUNCATED).strip("告警") == ""


def test_rebase_points_a_url_elsewhere_keeping_path_and_credentials() -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    assert rebase(url, None) == url
    assert rebase(url, "http://127.0.0.1:8123") == "http://127.0.0.1:8123/robot/send?access_token=abc"
    assert (
        rebase(url, "http://proxy.internal/dingtalk/") == "http://proxy.internal/dingtalk/robot/send?access_token=abc"
    )


def test_json_answer_is_empty_for_a_body_that_is_not_a_json_object() -> None:
    assert json_answer(Response(200, {}, b'{"errcode": 0}')) == {"errcode": 0}
    assert json_answer(Response(502, {}, b"<html>Bad Gateway</html>")) == {}
    assert json_answer(Response(200, {}, b"[1]")) == {}


def test_a_template_with_text_and_html_blocks_gives_both(tmp_path: Path) -> None:
    (tmp_path / "mine.j2").write_text(
        "{% block text %}{{ alert.alertname }} plain{% endblock %}"
        "{% block html %}<b>{{ alert.alertname }}</b>{% endblock %}"
    )
    renderer = Renderer({"mail": {"type": "email", "template": "mine.j2"}}, tmp_path)
    message = renderer.render("mail", "firing", [sample_alert()], "alice", {}, "https://ack")
    assert (message.text, message.html) == ("HighErrorRate plain", "<b>HighErrorRate</b>")


def test_the_default_template_renders_as_the_golden_text() -> None:
    for kind in ("firing", "resolved"):
        assert_golden(f"default-{kind}.txt", render_default("webhook", kind).text + "\n")
    assert_golden("default-digest.txt", render_default("webhook", alerts=3).text + "\n")


async def test_the_webhook_channel_delivers_through_a_receiver(tmp_path: Path, aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    fake = FakeChannel(answers=[(503, {}, "busy")])
    app = web.Application()
    app.router.add_post("/hook", fake.handle)
    server = await aiohttp_server(app)
    async with delivery(tmp_path, aiohttp_client, {"type": "webhook", "url": str(server.make_url("/hook"))}) as run:
        await run.fire(2)
        notes = await run.settled()
    assert sorted((n["status"], n["attempts"]) for n in notes) == [("sent", 1), ("sent", 2)]  # one 503, retried
    assert sorted(body["alerts"][0]["labels"]["instance"] for body in fake.received[1:]) == ["web-1", "web-2"]
    assert all(body["ack_url"].startswith("https://alerts.example.com/ack/") for body in fake.received)


async def _channels_test(config: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amcompanion", "channels", "test", *args, "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, output.decode()


async def test_channels_test_prints_what_the_api_answered_and_its_verdict(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeChannel(answers=[(200, {"X-Api": "yes"}, '{"accepted": true}'), (400, {}, '{"error": "bad"}')])
    app = web.Application()
    app.router.add_post("/hook", fake.handle)
    server = await aiohttp_server(app)
    config = write_config(tmp_path, {"hook": str(server.make_url("/hook"))})

    code, output = await _channels_test(config, "hook", "--to", "alice")
    assert code == 0, output
    assert "HTTP 200" in output and "X-Api: yes" in output and '{"accepted": true}' in output
    assert output.rstrip().endswith("=> ok")
    assert fake.received[0]["recipient"] == "alice"
    assert fake.received[0]["alerts"][0]["alertname"] == "AmcompanionChannelTest"

    code, output = await _channels_test(config, "hook")
    assert code == 1
    assert "HTTP 400" in output and output.rstrip().endswith('=> permanent: HTTP 400: {"error": "bad"}')

    code, output = await _channels_test(config, "nope")
    assert code == 1 and 'no channel "nope"' in output


async def _channels(config: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "amcompanion", "channels", *args, "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, output.decode()


async def test_channels_list_needs_no_secret_and_test_needs_only_the_channels_own(tmp_path: Path) -> None:
    config = tmp_path / "receiver.yaml"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "receiver": {"url": "http://127.0.0.1:1"},
                "contacts": {"alice": {"phone": "+8613800000001"}, "nophone": {"email": "n@example.com"}},
                "channels": {
                    "sms": {"type": "twilio_sms", "account_sid": "AC1", "auth_token": "${TWILIO_TOKEN}",
                            "from": "+15550000000", "base_url": "http://127.0.0.1:9"},
                    "hook": {"type": "webhook", "url": "http://127.0.0.1:9/${HOOK_PATH}"},
                },
                "escalations": {"p": {"steps": [{"notify": ["hook"]}]}},
            }
        )
    )  # fmt: skip
    bare = {k: v for k, v in os.environ.items() if k not in ("TWILIO_TOKEN", "HOOK_PATH")}
    code, output = await _channels(config, bare, "list")
    assert code == 0, output
    assert "sms                      twilio_sms" in output and "hook                     webhook" in output
    assert "not set in this environment: TWILIO_TOKEN, HOOK_PATH" in output
    code, output = await _channels(config, bare, "test", "sms", "--to", "alice")
    assert code == 1 and "nothing was sent: channel sms needs TWILIO_TOKEN set in the environment" in output
    with_token = {**bare, "TWILIO_TOKEN": "t0ken"}
    code, output = await _channels(config, with_token, "test", "sms")  # HOOK_PATH is another channel's
    assert code == 1 and 'nothing was sent: channel "sms" (twilio_sms) sends to a person; say whom with --to' in output
    code, output = await _channels(config, with_token, "test", "sms", "--to", "nophone")
    assert (
        code == 1 and output.strip() == "nothing was sent: nophone has no phone number to text (contact field `phone`)"
    )
    assert "HTTP 400" not in output and "X-Amcompanion" not in output
    code, output = await _channels(config, with_token, "test", "smss", "--to", "alice")
    assert code == 1 and 'no channel "smss"' in output and 'did you mean "sms"?' in output
    code, output = await _channels(config, with_token, "test", "sms", "--to", "alise")
    assert code == 1 and 'no contact "alise"; did you mean "alice"?' in output
