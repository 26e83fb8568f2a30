"""The WeCom application-message channel against a local fake of WeCom's API (amcompanion/fakes/wecom_app.py):
the exact gettoken and message/send requests, the access token kept across sends and fetched anew when WeCom
ends it early (42001, 40014), each error class, the text card, and a real receiver delivering through it."""

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from amcompanion.fakes.wecom_app import AGENT_ID, CORP_ID, CORP_SECRET, Answer, FakeWeComApp
from amcompanion.receiver.channels.base import TRUNCATED, Message, Response
from amcompanion.receiver.channels.wecom_app import WeComAppChannel
from amcompanion.receiver.messages import Renderer
from tests.channel_support import assert_default_goldens, assert_golden, delivery, render_default, sample_alert

ACK = "https://alerts.example.com/ack/1.1795000000.c2lnbmF0dXJl"


class Clock:
    """A monotonic clock the test moves: the channel keeps its token's lifetime on it, the fake its tokens'."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def start(aiohttp_server, fake: FakeWeComApp) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(fake.app())
    return str(server.make_url("/")).rstrip("/")


def settings(base_url: str, **extra: object) -> dict:
    return {
        "type": "wecom_app",
        "corp_id": CORP_ID,
        "corp_secret": CORP_SECRET,
        "agent_id": str(AGENT_ID),
        "base_url": base_url,
        **extra,
    }


def to(user: str, kind: str = "firing") -> Message:
    """The default template's message to a contact known in WeCom as `user`."""
    message = render_default("wecom_app", kind, recipient="alice")
    return replace(message, recipient={"wecom_user_id": user}, external_url="https://alerts.example.com")


def to_groups() -> Message:
    """A message for a step that names no contacts."""
    return replace(render_default("wecom_app", recipient=""), external_url="https://alerts.example.com")


async def send(channel: WeComAppChannel, *messages: Message) -> list[Response]:
    async with aiohttp.ClientSession() as session:
        return [await channel.send(session, message) for message in messages]


async def test_a_message_is_one_gettoken_then_one_send_exactly_as_wecom_documents(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp(users={"zhangsan"})
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake)))
    message = to("ZhangSan")  # WeCom user ids ignore case
    [response] = await send(channel, message)
    assert channel.classify(response).result == "ok"
    [token_request] = fake.token_requests
    assert (token_request.method, token_request.path) == ("GET", "/cgi-bin/gettoken")
    assert token_request.query == {"corpid": CORP_ID, "corpsecret": CORP_SECRET}
    token = token_request.answer["access_token"]
    assert token_request.answer == {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
    [sent] = fake.received
    assert (sent.method, sent.path, sent.query) == ("POST", "/cgi-bin/message/send", {"access_token": token})
    assert sent.body == {
        "touser": "ZhangSan",
        "agentid": AGENT_ID,  # an integer on the wire, though the setting is a string
        "msgtype": "markdown",
        "markdown": {"content": message.text},
    }
    assert sent.content_type == "application/json"
    assert sent.raw == json.dumps(sent.body, ensure_ascii=False).encode()  # UTF-8, no \\uXXXX escapes (40033)
    assert sent.answer["errcode"] == 0 and set(sent.answer) == {"errcode", "errmsg", "msgid"}
    assert message.text.endswith(f"[Acknowledge]({ACK})")
    assert [(s.to, s.text) for s in fake.shown()] == [("ZhangSan", message.text)]


async def test_a_step_without_contacts_reaches_the_channels_departments_and_tags(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp(parties={"2": ["zhangsan"], "5": ["lisi"]}, tags={"7": ["wangwu"]})
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake), toparty="2 | 5", totag=7))
    [response] = await send(channel, to_groups())
    assert channel.classify(response).result == "ok"
    body = fake.received[0].body
    assert (body["toparty"], body["totag"], "touser" in body) == ("2|5", "7", False)
    assert fake.shown()[0].to == "department 2, department 5, tag 7"


async def test_the_token_is_fetched_once_for_many_sends_and_again_shortly_before_it_ends(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    fake = FakeWeComApp(now=clock)
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake)), monotonic=clock)
    responses = await send(channel, to("zhangsan"), to("lisi"), to("wangwu"))
    assert [channel.classify(r).result for r in responses] == ["ok"] * 3
    assert len(fake.token_requests) == 1 and channel.token.fetches == 1
    assert len({r.query["access_token"] for r in fake.received}) == 1
    clock.now += 7200 - 301  # five minutes before it ends the token is still used
    await send(channel, to("zhangsan"))
    assert len(fake.token_requests) == 1
    clock.now += 2  # then a new one is fetched, before WeCom would refuse the old one
    [response] = await send(channel, to("zhangsan"))
    assert channel.classify(response).result == "ok"
    assert len(fake.token_requests) == 2
    assert [r.answer["errcode"] for r in fake.received] == [0] * 5  # never refused


async def test_sends_at_once_wait_for_one_token(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp()
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake)))
    async with aiohttp.ClientSession() as session:
        responses = await asyncio.gather(*(channel.send(session, to(f"member{n}")) for n in range(8)))
    assert [channel.classify(r).result for r in responses] == ["ok"] * 8
    assert len(fake.token_requests) == 1


@pytest.mark.parametrize(("end", "code"), [("expire", 42001), ("revoke", 40014)])
async def test_a_token_wecom_ended_early_is_replaced_within_the_same_send(  # type: ignore[no-untyped-def]
    aiohttp_server, end: str, code: int
) -> None:
    fake = FakeWeComApp()
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake)))
    await send(channel, to("zhangsan"))
    getattr(fake, end)()  # WeCom ends the token while the channel still thinks it good
    [response] = await send(channel, to("lisi"))
    assert channel.classify(response).result == "ok"
    assert [r.answer["errcode"] for r in fake.received] == [0, code, 0]
    first, refused, again = (r.query["access_token"] for r in fake.received)
    assert first == refused != again
    assert len(fake.token_requests) == 2
    assert [r.body["touser"] for r in fake.received] == ["zhangsan", "lisi", "lisi"]


async def test_a_token_refused_twice_is_retried_later_not_looped(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp()
    refused = {"errcode": 42001, "errmsg": "access_token expired"}
    fake.script = [Answer(refused), Answer(refused)]
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake)))
    [response] = await send(channel, to("zhangsan"))
    outcome = channel.classify(response)
    assert (outcome.result, len(fake.received), len(fake.token_requests)) == ("retry", 2, 2)
    assert "refused the access token again" in outcome.reason


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"corp_secret": "not-the-apps-secret"}, 40001, "invalid corp_secret"),
        ({"corp_id": "ww0000000000000000"}, 40013, "invalid corp_id"),
        ({"agent_id": "1000003"}, 40056, "invalid agent_id"),
        ({"agent_id": "1000002x"}, 40056, "invalid agent_id"),  # sent as written: WeCom names the mistake
        ({"msgtype": "nonsense"}, 40008, "invalid msgtype"),
    ],
)
async def test_wrong_settings_are_permanent_with_wecoms_reason(  # type: ignore[no-untyped-def]
    aiohttp_server, change: dict, code: int, words: str
) -> None:
    fake = FakeWeComApp()
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake), **change))
    [response] = await send(channel, to("zhangsan"))
    outcome = channel.classify(response)
    assert outcome.result == "permanent" and words in outcome.reason
    assert f"errcode {code}: " in outcome.reason
    assert f"more info at https://open.work.weixin.qq.com/devtool/query?e={code}" in outcome.reason
    assert fake.delivered == []


async def test_a_call_from_an_untrusted_ip_names_the_ip_to_add(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp(trusted_ips={"203.0.113.7"})
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake)))
    [response] = await send(channel, to("zhangsan"))
    outcome = channel.classify(response)
    assert outcome.result == "permanent"
    assert outcome.reason.startswith("WeCom refuses calls from 127.0.0.1: add it to the app's trusted IPs (企业可信IP")
    assert "2022-06-20" in outcome.reason and "errcode 60020: not allow to access from your ip" in outcome.reason
    assert len(fake.token_requests) == 1  # gettoken is not IP-checked; sending is
    fake.trusted_ips = {"127.0.0.1"}
    [response] = await send(channel, to("zhangsan"))
    assert channel.classify(response).result == "ok"


async def test_recipients_wecom_does_not_know(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp(users={"zhangsan"}, parties={"2": ["zhangsan"]})
    base = await start(aiohttp_server, fake)
    unknown = WeComAppChannel("wa", settings(base))
    [response] = await send(unknown, to("nobody"))
    outcome = unknown.classify(response)  # all of them unknown: WeCom refuses the call
    assert outcome.result == "permanent" and "errcode 81013: user & party & tag all invalid" in outcome.reason
    some = WeComAppChannel("wa", settings(base, toparty="2|9"))
    [response] = await send(some, to_groups())
    outcome = some.classify(response)  # delivered to department 2: a retry would page it twice
    assert (outcome.result, outcome.reason) == ("ok", "delivered, but WeCom skipped unknown departments: 9")
    assert fake.received[-1].answer["invalidparty"] == "9"


@pytest.mark.parametrize(
    ("body", "toparty", "result", "words"),
    [
        ({"invaliduser": "zhangsan"}, "", "permanent", "reached nobody: WeCom skipped unknown users"),
        ({"unlicenseduser": "zhangsan"}, "", "permanent", "reached nobody: WeCom skipped users without a"),
        ({"invalidparty": "2|9"}, "2|9", "permanent", "reached nobody"),
        ({"invalidparty": "9", "invalidtag": ""}, "2|9", "ok", "skipped unknown departments: 9"),
        ({"invaliduser": "", "invalidparty": "", "invalidtag": ""}, "", "ok", ""),
    ],
)
def test_an_ok_answer_is_read_for_the_recipients_wecom_skipped(
    body: dict, toparty: str, result: str, words: str
) -> None:
    """WeCom's older answers listed every recipient as invalid with errcode 0: that reached nobody either."""
    channel = WeComAppChannel("wa", settings("", toparty=toparty))
    answer = json.dumps({"errcode": 0, "errmsg": "ok", **body, "msgid": "m1"}).encode()
    outcome = channel.classify(Response(200, {}, answer))
    assert outcome.result == result and words in outcome.reason


async def test_a_message_with_no_one_to_reach_is_not_sent(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp()
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake)))
    no_id = render_default("wecom_app", recipient="alice")  # alice has a phone and an email, no WeCom id
    no_groups = to_groups()
    outcomes = [channel.classify(r) for r in await send(channel, no_id, no_groups)]
    assert [o.result for o in outcomes] == ["permanent", "permanent"]
    assert outcomes[0].reason == "not sent: alice has no WeCom user id (contact field `wecom_user_id`)"
    assert outcomes[1].reason == "not sent: no contact is named, and channel wa has no `toparty` or `totag` to send to"
    assert fake.token_requests == [] and fake.received == []


@pytest.mark.parametrize(
    ("status", "body", "result", "wait", "words"),
    [
        (200, {"errcode": -1, "errmsg": "system busy"}, "retry", None, "WeCom is busy"),
        (200, {"errcode": 45009, "errmsg": "api freq out of limit"}, "retry", 60.0, "rate limited"),
        (200, {"errcode": 45011, "errmsg": "api minute-quota reach limit"}, "retry", 60.0, "rate limited"),
        (200, {"errcode": 45033, "errmsg": "api concurrent out of limit"}, "retry", 5.0, "rate limited"),
        (200, {"errcode": 40001, "errmsg": "invalid credential"}, "permanent", None, "invalid corp_secret"),
        (200, {"errcode": 40013, "errmsg": "invalid corpid"}, "permanent", None, "invalid corp_id"),
        (200, {"errcode": 40056, "errmsg": "invalid agentid"}, "permanent", None, "invalid agent_id"),
        (200, {"errcode": 301002, "errmsg": "api forbidden"}, "permanent", None, "another app"),
        (200, {"errcode": 81013, "errmsg": "user & party & tag all invalid"}, "permanent", None, "no recipient"),
        (200, {"errcode": 60011, "errmsg": "no privilege"}, "permanent", None, "visible range"),
        (200, {"errcode": 44004, "errmsg": "empty content"}, "permanent", None, "empty content"),
        (200, {"errcode": 45002, "errmsg": "content size out of limit"}, "permanent", None, "too large"),
        (
            200,
            {"errcode": 60020, "errmsg": "not allow to access from your ip, hint: [x], from ip: 198.51.100.4"},
            "permanent",
            None,
            "WeCom refuses calls from 198.51.100.4: add it",
        ),
        (200, {"errcode": 12345, "errmsg": "new"}, "permanent", None, "errcode 12345: new"),
        (200, "<html>a proxy's page</html>", "retry", None, "unexpected answer"),
        (503, "unavailable", "retry", None, "HTTP 503"),
        (403, "forbidden", "permanent", None, "HTTP 403"),
    ],
)
def test_classify_reads_each_answer_as_wecom_means_it(
    status: int, body: dict | str, result: str, wait: float | None, words: str
) -> None:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
    outcome = WeComAppChannel("wa", settings("")).classify(Response(status, {}, raw))
    assert (outcome.result, outcome.retry_after) == (result, wait)
    assert words in outcome.reason


async def test_a_member_over_thirty_messages_a_minute_waits_for_the_minute(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    fake = FakeWeComApp(now=clock)
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake)), monotonic=clock)
    responses = await send(channel, *[to("zhangsan")] * 31, to("lisi"))
    outcomes = [channel.classify(r) for r in responses]
    assert [o.result for o in outcomes] == ["ok"] * 30 + ["retry", "ok"]  # the limit is per member
    assert outcomes[30].retry_after == 60.0 and "errcode 45009" in outcomes[30].reason
    assert [member for member, _ in fake.dropped] == ["zhangsan"]
    clock.now += 60
    [response] = await send(channel, to("zhangsan"))
    assert channel.classify(response).result == "ok"


async def test_the_apps_daily_quota_counts_every_member_reached(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp(parties={"1": [f"member{n}" for n in range(150)]}, seats=1)  # 200 person-messages a day
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake), toparty="1"))
    outcomes = [channel.classify(r) for r in await send(channel, to_groups(), to_groups())]
    assert [o.result for o in outcomes] == ["ok", "retry"]


async def test_the_fake_refuses_content_wecom_refuses(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """The channel never sends these (it cuts first); the fake still answers them as WeCom does."""
    fake = FakeWeComApp()
    base = await start(aiohttp_server, fake)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": CORP_SECRET}) as r:
            token = (await r.json())["access_token"]
        answers = []
        for part, escaped in (
            ({"content": ""}, False),
            ({"content": "告" * 683}, False),
            ({"content": "告" * 682}, False),
            ({"content": "告警"}, True),
        ):
            body = {"touser": "zhangsan", "agentid": AGENT_ID, "msgtype": "markdown", "markdown": part}
            data = json.dumps(body, ensure_ascii=escaped).encode()  # escaped: \\uXXXX for non-ASCII
            async with session.post(f"{base}/cgi-bin/message/send", params={"access_token": token}, data=data) as r:
                answers.append((await r.json())["errcode"])
        async with session.post(f"{base}/cgi-bin/message/send", data=b"{not json") as r:
            answers.append((await r.json())["errcode"])  # without a token: that is checked first
    assert answers == [44004, 45002, 0, 40033, 41001]


async def test_a_textcard_has_the_title_the_plain_text_and_an_acknowledge_button(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp()
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake), msgtype="textcard"))
    message = to("zhangsan")
    [response] = await send(channel, message)
    assert channel.classify(response).result == "ok"
    [sent] = fake.received
    card = sent.body["textcard"]
    assert sent.body == {"touser": "zhangsan", "agentid": AGENT_ID, "msgtype": "textcard", "textcard": card}
    assert (card["title"], card["url"], card["btntxt"]) == ("[CRITICAL] HighErrorRate", ACK, "确认")
    assert card["description"].startswith("checkout 5xx ratio at 7.5% on web-1<br>More than 5% of checkout")
    assert "<font" not in card["description"] and "**" not in card["description"]
    assert ACK not in card["description"] and "[CRITICAL]" not in card["description"]  # the card's own
    assert fake.delivered[0].body == sent.body  # within WeCom's limits: nothing of it cut
    assert_golden("wecom_app-textcard.json", json.dumps(card, ensure_ascii=False, indent=2) + "\n")


async def test_a_textcard_without_an_ack_link_opens_the_console(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp()
    channel = WeComAppChannel("wa", settings(await start(aiohttp_server, fake), msgtype="textcard"))
    [response] = await send(channel, to("zhangsan", "resolved"))
    assert channel.classify(response).result == "ok"
    card = fake.received[0].body["textcard"]
    assert (card["title"], card["url"], card["btntxt"]) == (
        "[RESOLVED] HighErrorRate",
        "https://alerts.example.com/console",
        "详情",
    )


async def test_an_oversized_alert_is_cut_to_wecoms_limits(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeWeComApp()
    base = await start(aiohttp_server, fake)
    alert = sample_alert(alertname="告警" * 100, annotations={"summary": "huge", "description": "告警详情\n" * 800})
    renderer = Renderer({"wa": {"type": "wecom_app"}}, None)
    message = renderer.render("wa", "firing", [alert], "alice", {"wecom_user_id": "zhangsan"}, ACK)
    markdown, textcard = (
        WeComAppChannel("wa", settings(base)),
        WeComAppChannel("wa", settings(base, msgtype="textcard")),
    )
    assert [markdown.classify(r).result for r in await send(markdown, message)] == ["ok"]
    assert [textcard.classify(r).result for r in await send(textcard, message)] == ["ok"]
    content = fake.received[0].body["markdown"]["content"]
    assert 2048 - 20 < len(content.encode()) <= 2048
    assert content.endswith(f"{TRUNCATED}\n[Acknowledge]({ACK})")  # the ack link survives the cut
    card = fake.received[1].body["textcard"]
    assert len(card["title"].encode()) <= 128 and card["title"].endswith("…")
    assert 512 - 10 < len(card["description"].encode()) <= 512
    assert card["description"].endswith(TRUNCATED.replace("\n", "<br>")) and card["url"] == ACK
    assert fake.delivered[1].body == fake.received[1].body  # nothing left for WeCom to cut


def test_the_default_template_renders_as_the_golden_text() -> None:
    assert_default_goldens("wecom_app")


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """The receiver takes secrets only as ${VAR}."""
    monkeypatch.setenv("WECOM_APP_SECRET", CORP_SECRET)
    return "${WECOM_APP_SECRET}"


async def test_a_receiver_delivers_through_wecom_refreshing_the_token_and_retrying_what_is_transient(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client, secret_env: str
) -> None:
    fake = FakeWeComApp(parties={"2": ["zhangsan", "lisi"]})
    channel = settings(await start(aiohttp_server, fake), corp_secret=secret_env, toparty="2")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire()
        await run.settled()
        fake.expire()  # WeCom ends the token early: the next send fetches another
        fake.script = [Answer("bad gateway", status=502), Answer({"errcode": -1, "errmsg": "system busy"})]
        await run.fire()
        await run.settled()
        await run.resolve_all()
        notes = await run.settled()
    assert [(n["kind"], n["status"], n["attempts"]) for n in notes] == [
        ("firing", "sent", 1),
        ("firing", "sent", 3),  # a 502, then busy, then delivered
        ("resolved", "sent", 1),
        ("resolved", "sent", 1),
    ]
    assert len(fake.token_requests) == 2
    assert [r.answer.get("errcode") for r in fake.received] == [0, None, -1, 42001, 0, 0, 0]
    firing, *_ = (d.body for d in fake.delivered)
    assert firing["toparty"] == "2" and "[Acknowledge](https://alerts.example.com/ack/" in firing["markdown"]["content"]
    assert all(s.to == "department 2" for s in fake.shown())


async def test_a_receiver_fails_a_page_wecom_will_never_take_with_the_reason(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client, secret_env: str
) -> None:
    fake = FakeWeComApp(parties={"2": ["zhangsan"]}, trusted_ips={"203.0.113.7"})
    channel = settings(await start(aiohttp_server, fake), corp_secret=secret_env, toparty="2")
    async with delivery(tmp_path, aiohttp_client, channel) as run:
        await run.fire()
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert "WeCom refuses calls from 127.0.0.1" in notes[0]["error"] and "企业可信IP" in notes[0]["error"]


async def test_unlicensed_members_of_a_department_do_not_fail_the_message_to_the_rest(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """errcode 0 with `unlicenseduser`: WeCom delivered to the others; for a contact's message, it reached nobody."""
    fake = FakeWeComApp(parties={"2": ["zhangsan", "lisi"]}, unlicensed={"LiSi"})
    base = await start(aiohttp_server, fake)
    groups = WeComAppChannel("wa", settings(base, toparty="2"))
    [response] = await send(groups, to_groups())
    outcome = groups.classify(response)
    assert fake.received[-1].answer["unlicenseduser"] == "lisi"
    assert (outcome.result, outcome.reason) == (
        "ok",
        "delivered, but WeCom skipped users without a WeCom license for this app: lisi",
    )
    assert fake.delivered[-1].users == [] and fake.delivered[-1].parties == ["2"]
    [response] = await send(groups, to("lisi"))  # a contact's message to an unlicensed member: nobody
    outcome = groups.classify(response)
    assert outcome.result == "permanent" and "errcode 81013" in outcome.reason


def test_an_answer_listing_skipped_users_is_read_for_the_message_it_answers() -> None:
    from amcompanion.receiver.channels.wecom_app import Sent

    channel = WeComAppChannel("wa", settings("", toparty="2"))
    answer = json.dumps({"errcode": 0, "errmsg": "ok", "unlicenseduser": "lisi", "msgid": "m"}).encode()
    assert channel.classify(Sent(200, {}, answer, touser="")).result == "ok"  # to department 2
    assert channel.classify(Sent(200, {}, answer, touser="lisi")).result == "permanent"  # to lisi alone


@pytest.mark.parametrize(
    "answer",
    [
        {"access_token": "t-1", "expires_in": 7200},  # no errcode (WeChat's own gettoken answers so)
        {"errcode": 0, "errmsg": "ok", "access_token": "t-1", "expires_in": "7200"},
        {"errcode": 0, "errmsg": "ok", "access_token": "t-1"},
    ],
)
async def test_a_token_answer_in_another_shape_is_still_a_token_kept_for_its_lifetime(aiohttp_server, answer) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    tokens: list[str] = []

    async def gettoken(request: web.Request) -> web.Response:
        tokens.append(request.query["corpsecret"])
        return web.json_response(answer)

    async def message_send(request: web.Request) -> web.Response:
        ok = request.query.get("access_token") == "t-1"
        return web.json_response({"errcode": 0, "errmsg": "ok"} if ok else {"errcode": 40014, "errmsg": "invalid"})

    app = web.Application()
    app.router.add_get("/cgi-bin/gettoken", gettoken)
    app.router.add_post("/cgi-bin/message/send", message_send)
    server = await aiohttp_server(app)
    channel = WeComAppChannel("wa", settings(str(server.make_url("")).rstrip("/")))
    responses = await send(channel, to("zhangsan"), to("lisi"))
    assert [channel.classify(r).result for r in responses] == ["ok", "ok"]
    assert tokens == [CORP_SECRET]
