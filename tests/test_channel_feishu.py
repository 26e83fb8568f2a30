"""The Feishu / Lark channel against a fake of the custom-bot API: signing, cards, errors, limits, template."""

import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.feishu import FakeFeishu, FeishuBot, error
from amcompanion.receiver.channels.base import TRUNCATED, Message, Response
from amcompanion.receiver.channels.feishu import BODY_LIMIT, FeishuChannel, sign
from amcompanion.receiver.messages import Renderer
from tests.channel_support import ACK_URL, assert_golden, delivery, render_default, sample_alert

TOKEN = "0a1b2c3d-feed-4bee-8cab-000000000001"
SECRET = "feishu-secret"
URL = f"https://open.feishu.cn/open-apis/bot/v2/hook/{TOKEN}"


async def start(aiohttp_server, fake: FakeFeishu) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("/"))


def settings(base_url: str, **extra: object) -> dict:
    return {"type": "feishu", "url": URL, "secret": SECRET, "base_url": base_url, **extra}


@pytest.fixture(autouse=True)
def secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver takes secrets only as ${VAR}."""
    monkeypatch.setenv("FEISHU_SECRET", SECRET)
    monkeypatch.setenv("FEISHU_WRONG_SECRET", "not-the-bot-secret")


def configured(base_url: str, secret: str = "FEISHU_SECRET", **extra: object) -> dict:
    """The channel's settings as the receiver's config has them (the secret from the environment)."""
    return {**settings(base_url, **extra), "secret": "${" + secret + "}"}


async def send(channel: FeishuChannel, message: Message) -> Response:
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


def test_the_signature_is_feishus_not_dingtalks() -> None:
    # the known answer from the docs' sample inputs (CHANNELS.md §5); DingTalk's computation gives DkEDUy…
    assert sign("demo", 1599360473) == "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
    fake = FakeFeishu([], now=lambda: 1599360473 + 10)
    assert fake._signed("demo", {"timestamp": "1599360473", "sign": "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="})
    assert not fake._signed("demo", {"timestamp": "1599360473", "sign": "DkEDUyVoOOJ539qBvUgMyzkzIdRWlf4e/V3Rq+ONJnQ="})


async def test_a_firing_alert_is_a_signed_card_with_an_ack_button(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeFeishu([FeishuBot(TOKEN, SECRET)])
    channel = FeishuChannel("ops-feishu", settings(await start(aiohttp_server, fake)))
    message = render_default("feishu", "firing", recipient="")
    before = int(time.time())
    response = await send(channel, message)
    assert channel.classify(response).result == "ok"
    assert fake.verified == 1  # the fake checked the signature and it matched
    (body,) = fake.received
    timestamp = int(body.pop("timestamp"))
    assert before <= timestamp <= time.time() and body.pop("sign") == sign(SECRET, timestamp)
    assert body == {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"template": "red", "title": {"tag": "plain_text", "content": "[CRITICAL] HighErrorRate"}},
            "elements": [
                {"tag": "markdown", "content": message.text},
                {
                    "tag": "action",
                    "actions": [
                        {
                            "tag": "button",
                            "text": {"tag": "plain_text", "content": "Acknowledge"},
                            "type": "danger",
                            "url": ACK_URL,
                        }
                    ],
                },
            ],
        },
    }


async def test_a_contact_is_mentioned_by_open_id_and_other_message_types_are_accepted(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeFeishu([FeishuBot(TOKEN, SECRET)])
    base = await start(aiohttp_server, fake)
    message = render_default("feishu", "firing", recipient="")
    carol = replace(message, recipient={"feishu_open_id": "ou_c0ffee"}, recipient_name="carol")
    for msg_type in ("interactive", "post", "text"):
        channel = FeishuChannel("ops-feishu", settings(base, msg_type=msg_type))
        assert channel.classify(await send(channel, carol)).result == "ok", fake.answers[-1]
    card, post, text = fake.received
    assert card["card"]["elements"][0]["content"].startswith("<at id=ou_c0ffee></at> ")
    paragraphs = post["content"]["post"]["en_us"]["content"]
    assert paragraphs[0] == [{"tag": "at", "user_id": "ou_c0ffee"}]
    assert paragraphs[-1] == [{"tag": "a", "text": "Acknowledge", "href": ACK_URL}]
    assert text["content"]["text"].startswith('<at user_id="ou_c0ffee">carol</at> [CRITICAL] HighErrorRate\n')
    with pytest.raises(ValueError, match="msg_type"):
        FeishuChannel("ops-feishu", settings(base, msg_type="markdown"))


def test_answers_are_classified_on_the_code_not_the_http_status() -> None:
    channel = FeishuChannel("ops-feishu", {"url": URL})

    def outcome(status: int, body: bytes) -> tuple[str, str]:
        result = channel.classify(Response(status, {}, body))
        return result.result, result.reason

    assert outcome(200, b'{"code":0,"msg":"success","data":{}}')[0] == "ok"
    assert outcome(200, b'{"StatusCode":0,"StatusMessage":"success"}')[0] == "ok"  # the older answer
    assert outcome(200, b'{"code":11232,"msg":"frequency limited psm[x]"}')[0] == "retry"
    assert outcome(400, b'{"code":9499,"msg":"too many request"}')[0] == "retry"
    assert outcome(200, b'{"code":9499,"msg":"Bad Request: fail to parse content"}')[0] == "permanent"
    assert outcome(400, b'{"code":9499,"msg":"Bad Request"}')[0] == "permanent"
    for code in (19021, 19022, 19024, 19001, 19007, 19036):
        assert outcome(200, b'{"code":%d,"msg":"x"}' % code)[0] == "permanent"
    assert outcome(200, b'{"code":19021,"msg":"sign match fail"}')[1].endswith("(bad signature or timestamp)")
    assert outcome(502, b"<html>Bad Gateway</html>")[0] == "retry"
    assert outcome(429, b"")[0] == "retry"
    assert outcome(200, b"<html>a captive portal</html>")[0] == "permanent"  # 200 without a code is not a delivery


@pytest.mark.parametrize(
    ("answer", "delay"),
    [
        (error(11232, "frequency limited psm[lark.oapi.app]"), 0.0),
        (error(9499, "too many request", status=400), 0.0),
        ((500, {"code": 1, "msg": "internal error"}), 0.0),
        (None, 0.5),  # slower than the channel's timeout
    ],
    ids=["11232", "9499-too-many", "http-500", "timeout"],
)
async def test_transient_failures_are_retried(tmp_path: Path, aiohttp_server, aiohttp_client, answer, delay) -> None:  # type: ignore[no-untyped-def]
    fake = FakeFeishu([FeishuBot(TOKEN, SECRET)], script=[answer] if answer else [], delays=[delay] if delay else [])
    channel = configured(await start(aiohttp_server, fake), timeout="200ms")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)]
    assert len(fake.received) == 1 and fake.verified == 1


@pytest.mark.parametrize(
    ("bot", "channel_extra", "clock_skew", "error_code"),
    [
        (FeishuBot(TOKEN, SECRET), {"secret": "FEISHU_WRONG_SECRET"}, 0, 19021),
        (FeishuBot(TOKEN, SECRET), {}, 7200, 19021),  # our clock two hours off: outside the one-hour window
        (FeishuBot(TOKEN, SECRET, keywords=["告警"]), {}, 0, 19024),
        (FeishuBot(TOKEN, SECRET, allowed_ips=["10.0.0.1"]), {}, 0, 19022),
        (FeishuBot("another-token", SECRET), {}, 0, 19001),
        (FeishuBot(TOKEN, SECRET, enabled=False), {}, 0, 19007),
    ],
    ids=["bad-signature", "clock-skew", "keyword", "ip", "token", "disabled"],
)
async def test_permanent_failures_are_not_retried(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client, bot, channel_extra, clock_skew, error_code
) -> None:
    fake = FakeFeishu([bot], now=lambda: time.time() + clock_skew)
    channel = configured(await start(aiohttp_server, fake), **channel_extra)
    async with delivery(tmp_path, aiohttp_client, channel, give_up_after_s=60) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert notes[0]["error"].startswith(f"Feishu code {error_code}: ")
    assert fake.received == []


async def test_a_keyword_in_the_template_text_passes_the_keyword_check(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeFeishu([FeishuBot(TOKEN, SECRET, keywords=["HighErrorRate"])])
    channel = FeishuChannel("ops-feishu", settings(await start(aiohttp_server, fake)))
    assert channel.classify(await send(channel, render_default("feishu", "resolved", recipient=""))).result == "ok"


async def test_a_burst_within_the_rate_limit_is_delivered_and_a_larger_one_digested(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:
    fake = FakeFeishu([FeishuBot(TOKEN, SECRET)], windows=[(20, 60.0)])
    channel = configured(await start(aiohttp_server, fake), rate_limit="20/min")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(20)
        notes = await run.settled()
        assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 1)] * 20
        assert len(fake.received) == 20 and all(a["code"] == 0 for a in fake.answers)
    fake = FakeFeishu([FeishuBot(TOKEN, SECRET)], windows=[(20, 60.0)])
    channel = configured(await start(aiohttp_server, fake), rate_limit="20/min")
    (tmp_path / "storm").mkdir()
    async with delivery(tmp_path / "storm", aiohttp_client, channel) as run:
        await run.fire(25)
        notes = await run.settled()
    assert len(notes) == 25 and all(n["status"] == "sent" for n in notes)
    assert all(a["code"] == 0 for a in fake.answers) and 1 <= len(fake.received) < 25
    digests = [b for b in fake.received if b["card"]["header"]["title"]["content"].endswith(" alerts")]
    assert digests and all(e["tag"] == "markdown" for d in digests for e in d["card"]["elements"])  # no ack button


async def test_feishus_own_limits_of_5_per_second_are_kept_by_a_5_per_second_rate_limit(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:
    fake = FakeFeishu([FeishuBot(TOKEN, SECRET)])  # 5/s and 100/min, as Feishu
    channel = configured(await start(aiohttp_server, fake), rate_limit="5/s")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire(12)
        notes = await run.settled()
    assert all(n["status"] == "sent" and n["attempts"] == 1 for n in notes) and len(notes) == 12
    assert all(a["code"] == 0 for a in fake.answers)


async def test_the_fake_enforces_5_per_second(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeFeishu([FeishuBot(TOKEN, SECRET)])
    channel = FeishuChannel("ops-feishu", settings(await start(aiohttp_server, fake)))
    message = render_default("feishu", "resolved", recipient="")
    outcomes = [channel.classify(await send(channel, message)) for _ in range(6)]
    assert [o.result for o in outcomes] == ["ok"] * 5 + ["retry"]
    assert outcomes[-1].reason.startswith("Feishu code 11232: frequency limited")


def test_the_default_template_renders_as_the_golden_text() -> None:
    for kind in ("firing", "resolved"):
        assert_golden(f"feishu-{kind}.txt", render_default("feishu", kind, recipient="").text + "\n")
    assert_golden("feishu-digest.txt", render_default("feishu", alerts=3, recipient="").text + "\n")


def test_untrusted_label_values_cannot_mention_everyone() -> None:
    renderer = Renderer({"f": {"type": "feishu"}}, None)
    alert = sample_alert(annotations={"summary": '<at id=all></at> & <font color="red">x</font>'})
    text = renderer.render("f", "firing", [alert], "", {}, ACK_URL).text
    assert "<at" not in text and "&lt;at id=all&gt;&lt;/at&gt; &amp; &lt;font" in text


async def test_an_oversized_alert_is_truncated_to_fit_the_body_limit(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeFeishu([FeishuBot(TOKEN, SECRET)])
    channel = FeishuChannel("ops-feishu", settings(await start(aiohttp_server, fake)))
    description = '告警 "quoted"\n' * 4000  # ~64 KB, and JSON escaping makes it longer still
    alert = sample_alert(annotations={"summary": "huge", "description": description})
    message = Renderer({"f": {"type": "feishu"}}, None).render("f", "firing", [alert], "", {}, ACK_URL)
    response = await send(channel, message)
    assert channel.classify(response).result == "ok", fake.answers
    assert BODY_LIMIT - 100 < fake.largest <= BODY_LIMIT
    (body,) = fake.received
    markdown, action = body["card"]["elements"]
    assert markdown["content"].endswith(TRUNCATED) and action["actions"][0]["url"] == ACK_URL
