"""The Slack app channel against a fake Slack written from Slack's documents: the exact chat.postMessage request
(Block Kit, the Acknowledge and Resolve buttons), each error class, the per-channel rate, and the buttons' round
trip: a press signed as Slack signs it, answered at once, the message then updated through its response_url."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from amcompanion.fakes.slack_app import BOT_TOKEN, CHANNEL, OTHER_CHANNEL, Ephemeral, FakeSlackApp, slack_signature
from amcompanion.receiver.channels import CHANNEL_TYPES, Response
from amcompanion.receiver.channels.base import TRUNCATED, Click, ClickAnswer, rebase
from amcompanion.receiver.channels.slack import SECTION_LIMIT
from amcompanion.receiver.channels.slack_app import ACK, RESOLVE, RESOLVE_CONFIRM, SlackAppChannel, signature
from amcompanion.receiver.messages import Renderer
from tests.channel_support import ACK_URL, START, assert_golden, delivery, render_default, sample_alert

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the signing secret of Slack's worked example
ALICE = "U0ALICE001"
NOW = START + timedelta(seconds=40)  # the receiver's clock when a press arrives (START: when Slack signed it)


@pytest.fixture(autouse=True)
def secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver takes the bot token and the signing secret only as ${VAR}."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)


async def start(aiohttp_server, app: web.Application) -> str:  # type: ignore[no-untyped-def]
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


def make_channel(base_url: str, **changes: object) -> SlackAppChannel:
    settings = {"bot_token": BOT_TOKEN, "signing_secret": SECRET, "channel": CHANNEL, "base_url": base_url}
    return SlackAppChannel("sre-slack", {**settings, **changes})


def configured(base_url: str, **extra: object) -> dict:
    """The channel as a catalog writes it, its secrets as ${VAR}."""
    secrets = {"bot_token": "${SLACK_BOT_TOKEN}", "signing_secret": "${SLACK_SIGNING_SECRET}"}
    return {"type": "slack_app", **secrets, "channel": CHANNEL, "base_url": base_url, **extra}


async def send(channel: SlackAppChannel, message) -> Response:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as session:
        return await channel.send(session, message)


def test_the_type_is_found_by_the_channel_package() -> None:
    assert CHANNEL_TYPES["slack_app"] is SlackAppChannel
    assert SlackAppChannel.callback_path == "/slack/interactions"


async def test_the_fakes_signer_reproduces_slacks_worked_example_and_the_channel_verifies_it() -> None:
    """docs.slack.dev/authentication/verifying-requests-from-slack: a slash command's body, signed."""
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert slack_signature(SECRET, "1531420618", body) == expected
    headers = {"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": expected}
    then = datetime.fromtimestamp(1531420618 + 10).astimezone()

    async def no_act(click: Click) -> ClickAnswer:
        raise AssertionError("a slash command is no press of a button")

    clicked = await make_channel("").answer_click(headers, body, then, no_act)
    assert clicked is not None and (clicked.response.status, clicked.response.body, clicked.after) == (200, b"", None)
    assert await make_channel("", signing_secret="another app's").answer_click(headers, body, then, no_act) is None


async def test_a_firing_alert_is_posted_with_acknowledge_and_resolve_buttons(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlackApp()
    channel = make_channel(await start(aiohttp_server, fake.app()))
    message = render_default("slack_app", recipient="")
    response = await send(channel, message)
    assert (response.status, channel.classify(response).result) == (200, "ok")
    (call,) = fake.calls
    assert (call.method, call.path) == ("POST", "/api/chat.postMessage")
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(call.body) == {
        "channel": CHANNEL,
        "text": "[CRITICAL] HighErrorRate",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "[CRITICAL] HighErrorRate"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": message.text}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "amcompanion_ack",
                        "text": {"type": "plain_text", "text": "Acknowledge"},
                        "style": "primary",
                        "value": "1",
                    },
                    {
                        "type": "button",
                        "action_id": "amcompanion_resolve",
                        "text": {"type": "plain_text", "text": "Resolve"},
                        "value": "1",
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Resolve this alert?"},
                            "text": {
                                "type": "plain_text",
                                "text": "It is marked resolved by hand, and everyone paged about it is told.",
                            },
                            "confirm": {"type": "plain_text", "text": "Resolve"},
                            "deny": {"type": "plain_text", "text": "Cancel"},
                        },
                    },
                ],
            },
        ],
    }
    assert "|Acknowledge>" not in message.text  # the buttons stand for the link: no stale link after an ack
    answer = json.loads(response.body)
    assert (answer["ok"], answer["channel"], "warning" in answer) == (True, CHANNEL, False)  # charset was sent
    assert answer["message"]["ts"] == answer["ts"] and answer["ts"] in fake.messages


async def test_a_contact_is_mentioned_and_only_a_single_firing_alert_has_buttons(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlackApp()
    channel = make_channel(await start(aiohttp_server, fake.app()))
    to_alice = {"slack_user_id": ALICE}
    for message in (
        replace(render_default("slack_app", recipient=""), recipient=to_alice),
        replace(render_default("slack_app", "resolved", recipient=""), recipient=to_alice),
        render_default("slack_app", alerts=3, recipient=""),
    ):
        assert channel.classify(await send(channel, message)).result == "ok", fake.answers
    firing, resolved, digest = fake.received
    assert firing["text"] == f"<@{ALICE}> [CRITICAL] HighErrorRate"
    assert firing["blocks"][1]["text"]["text"].startswith(f"<@{ALICE}> *checkout 5xx ratio")
    assert [b["type"] for b in firing["blocks"]] == ["header", "section", "actions"]
    assert resolved["text"] == f"<@{ALICE}> [RESOLVED] HighErrorRate"
    assert [b["type"] for b in resolved["blocks"]] == ["header", "section"]
    assert digest["text"] == "[FIRING] 3 alerts" and [b["type"] for b in digest["blocks"]] == ["header", "section"]


ERRORS = [  # (the fake, changes to the channel's settings, what the row says)
    (FakeSlackApp(bot_token="xoxb-another"), {}, "chat.postMessage invalid_auth: Slack does not know the bot token"),
    (FakeSlackApp(), {"bot_token": ""}, "chat.postMessage not_authed: no bot token reached Slack"),
    (FakeSlackApp(revoked=True), {}, "chat.postMessage token_revoked: the bot token was revoked"),
    (
        FakeSlackApp(scopes={"channels:read"}),
        {},
        "chat.postMessage missing_scope: the app lacks the chat:write scope: add it under OAuth & Permissions and "
        "reinstall the app; needed chat:write, the token has channels:read",
    ),
    (FakeSlackApp(), {"channel": "C0NOSUCH01"}, "chat.postMessage channel_not_found: no channel with that id"),
    (
        FakeSlackApp(),
        {"channel": OTHER_CHANNEL},
        "chat.postMessage not_in_channel: the app is not a member of the channel: invite it there (/invite @the-app)",
    ),
    (FakeSlackApp(archived={CHANNEL}), {}, "chat.postMessage is_archived: the channel is archived"),
    (
        FakeSlackApp(script=[(200, {}, '{"ok": false, "error": "account_inactive"}')]),
        {},
        "chat.postMessage account_inactive: the bot token belongs to a deleted app or workspace",
    ),
    (
        FakeSlackApp(script=[(200, {}, '{"ok": false, "error": "msg_too_long"}')]),
        {},
        "chat.postMessage msg_too_long: the message is over Slack's 40,000 characters",
    ),
    (
        FakeSlackApp(
            script=[
                (
                    200,
                    {},
                    '{"ok": false, "error": "invalid_blocks", "response_metadata": {"messages": '
                    '["[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"]}}',
                )
            ]
        ),
        {},
        "chat.postMessage invalid_blocks: Slack refused the message's Block Kit blocks; "
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]",
    ),
    (
        FakeSlackApp(script=[(200, {}, '{"ok": false, "error": "posting_to_general_channel_denied"}')]),
        {},
        "chat.postMessage posting_to_general_channel_denied",
    ),
]


@pytest.mark.parametrize(("fake", "changes", "reason"), ERRORS, ids=[r.split()[1].rstrip(":") for _, _, r in ERRORS])
async def test_permanent_errors_say_what_to_do(aiohttp_server, fake, changes, reason) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(await start(aiohttp_server, fake.app()), **changes)
    response = await send(channel, render_default("slack_app"))
    outcome = channel.classify(response)
    assert response.status == 200 and outcome.result == "permanent" and outcome.reason.startswith(reason), outcome
    assert fake.received == []


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        ((429, {"Retry-After": "7"}, '{"ok": false, "error": "ratelimited"}'), 7.0),
        ((429, {}, '{"ok": false, "error": "ratelimited"}'), 1.0),  # no hint: Slack's pace of one a second
        ((200, {}, '{"ok": false, "error": "fatal_error"}'), None),
        ((200, {}, '{"ok": false, "error": "internal_error"}'), None),
        ((200, {}, '{"ok": false, "error": "service_unavailable"}'), None),
        ((503, {}, "<html>Service Unavailable</html>"), None),
        ((200, {}, "<html>a captive portal</html>"), None),  # a 200 without `ok` is no delivery
    ],
    ids=[
        "ratelimited",
        "ratelimited-no-hint",
        "fatal_error",
        "internal_error",
        "service_unavailable",
        "503",
        "not-slack",
    ],
)
async def test_transient_answers_are_retried(aiohttp_server, answer, wait) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlackApp(script=[answer])
    channel = make_channel(await start(aiohttp_server, fake.app()))
    outcome = channel.classify(await send(channel, render_default("slack_app")))
    assert (outcome.result, outcome.retry_after) == ("retry", wait), outcome
    assert outcome.reason


async def test_the_receiver_retries_a_transient_error_and_fails_a_permanent_one_at_once(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:
    fake = FakeSlackApp(script=[(200, {}, '{"ok": false, "error": "internal_error"}')])
    async with delivery(tmp_path, aiohttp_client, configured(await start(aiohttp_server, fake.app()))) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 2)] and len(fake.received) == 1
    fake = FakeSlackApp()
    channel = configured(await start(aiohttp_server, fake.app()), channel=OTHER_CHANNEL)
    (tmp_path / "not-invited").mkdir()
    async with delivery(tmp_path / "not-invited", aiohttp_client, channel, give_up_after_s=60) as run:
        await run.fire(1)
        notes = await run.settled()
    assert [(n["status"], n["attempts"]) for n in notes] == [("failed", 1)]
    assert "invite it there" in notes[0]["error"] and fake.answers == [(200, "not_in_channel")]


async def test_a_burst_over_slacks_pace_is_answered_429_and_delivered_after_the_wait(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:
    fake = FakeSlackApp(windows=[(3, 1.0)], clock=lambda: 1000.0)
    channel = make_channel(await start(aiohttp_server, fake.app()))
    outcomes = [channel.classify(await send(channel, render_default("slack_app"))) for _ in range(4)]
    assert [(o.result, o.retry_after) for o in outcomes] == [("ok", None)] * 3 + [("retry", 1.0)]
    assert fake.answers[-1] == (429, "ratelimited") and len(fake.received) == 3

    fake = FakeSlackApp(windows=[(1, 1.0)])  # one a second per channel, in the receiver's virtual time
    async with delivery(tmp_path, aiohttp_client, configured(await start(aiohttp_server, fake.app()))) as run:
        fake.clock = lambda: run.clock.now().timestamp()
        await run.fire(4)
        notes = await run.settled()
    assert [n["status"] for n in notes] == ["sent"] * 4 and len(fake.received) == 4
    assert (429, "ratelimited") in fake.answers and sum(n["attempts"] for n in notes) == len(fake.answers)


@dataclass
class Interactions:
    """The receiver's side of a press, as a stand-in: the route hands the call to the channel with `act` answering
    `answer`, sends the Clicked's answer as it is and keeps its `after`."""

    channel: SlackAppChannel
    answer: ClickAnswer
    now: datetime = NOW
    clicks: list[Click] = field(default_factory=list)
    payloads: list[dict] = field(default_factory=list)
    afters: list[Callable[[aiohttp.ClientSession], Awaitable[None]]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/slack/interactions", self.handle)
        return app

    async def act(self, click: Click) -> ClickAnswer:
        self.clicks.append(click)
        return self.answer

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert request.content_type == "application/x-www-form-urlencoded"
        self.payloads.append(json.loads((await request.post())["payload"]))  # type: ignore[arg-type]
        clicked = await self.channel.answer_click(request.headers, body, self.now, self.act)
        if clicked is None:
            return web.Response(status=401, text="not signed by this app")
        if clicked.after is not None:
            self.afters.append(clicked.after)
        answer = clicked.response
        return web.Response(status=answer.status, headers=dict(answer.headers), body=answer.body)


async def posted_alert(aiohttp_server, fake: FakeSlackApp, answer: ClickAnswer) -> tuple[Interactions, str, str]:  # type: ignore[no-untyped-def]
    """A firing alert posted through the channel; the stand-in receiver's Request URL and the message's ts."""
    interactions = Interactions(make_channel(await start(aiohttp_server, fake.app())), answer)
    request_url = await start(aiohttp_server, interactions.app()) + "/slack/interactions"
    response = await send(interactions.channel, render_default("slack_app", recipient=""))
    return interactions, request_url, json.loads(response.body)["ts"]


@pytest.mark.parametrize(
    ("button", "action", "text"),
    [(ACK, "ack", "Acknowledged by Alice. Escalation has stopped."), (RESOLVE, "resolve", "Resolved by Alice.")],
)
async def test_a_press_is_acted_on_answered_at_once_and_the_message_updated_in_place(  # type: ignore[no-untyped-def]
    aiohttp_server, button, action, text
) -> None:
    fake = FakeSlackApp(users={ALICE: "alice"})
    interactions, request_url, ts = await posted_alert(aiohttp_server, fake, ClickAnswer(True, text, "alice"))
    before = fake.messages[ts].message["blocks"]
    async with aiohttp.ClientSession() as session:
        assert await fake.click(session, request_url, ts, ALICE, button, SECRET, at=START) == (200, "")
        assert interactions.clicks == [Click("slack_user_id", ALICE, action, 1, "alice")]
        (payload,) = interactions.payloads
        assert payload["type"] == "block_actions" and payload["container"]["message_ts"] == ts
        (after,) = interactions.afters
        await after(session)
    (reply,) = fake.responses
    assert reply["replace_original"] is True and reply["text"] == "[CRITICAL] HighErrorRate"
    header, section, context = fake.messages[ts].message["blocks"]
    assert [header["text"], section["text"]] == [block["text"] for block in before[:2]]  # the same, its buttons gone
    assert header["block_id"] != before[0]["block_id"]  # Slack's advice: new block_ids for an updated message
    stamp = int(NOW.timestamp())
    assert context["elements"] == [
        {
            "type": "mrkdwn",
            "text": f"{text.rstrip('.')} (via Slack) at "
            f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|2026-11-22 22:48 UTC>",
        }
    ]
    assert fake.ephemeral == []
    assert "[Acknowledge]" not in fake.shown()[0].text and "(via Slack)" in fake.shown()[0].text


async def test_a_refusal_is_shown_only_to_the_presser_and_the_message_stays(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlackApp()
    refusal = ClickAnswer(False, "Not done: <!channel> & co are not a contact of amcompanion.")
    interactions, request_url, ts = await posted_alert(aiohttp_server, fake, refusal)
    before = json.loads(json.dumps(fake.messages[ts].message))
    async with aiohttp.ClientSession() as session:
        assert await fake.click(session, request_url, ts, "U0STRANGER", ACK, SECRET, at=START) == (200, "")
        await interactions.afters[0](session)
    assert fake.responses == [
        {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": "Not done: &lt;!channel&gt; &amp; co are not a contact of amcompanion.",
        }
    ]
    assert fake.ephemeral == [Ephemeral("U0STRANGER", CHANNEL, fake.responses[0]["text"])]
    assert fake.messages[ts].message == before


@pytest.mark.parametrize(
    ("secret", "at"),
    [("forged", START), ("", START), (SECRET, NOW - timedelta(minutes=6)), (SECRET, NOW + timedelta(minutes=6))],
    ids=["another-secret", "no-secret", "stale", "from-the-future"],
)
async def test_a_press_not_signed_now_by_this_app_is_refused(aiohttp_server, secret, at) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlackApp()
    interactions, request_url, ts = await posted_alert(aiohttp_server, fake, ClickAnswer(True, "Acknowledged."))
    async with aiohttp.ClientSession() as session:
        status, text = await fake.click(session, request_url, ts, ALICE, ACK, secret, at=at)
    assert status == 401 and interactions.clicks == [] and interactions.afters == []
    if secret == SECRET:  # a valid signature on an old (replayed) or far-off timestamp: refused by this channel
        assert "is not within 5 minutes of now (2026-11-22T22:48:10+00:00)" in text
    else:  # not this app's: the stand-in receiver got None from the channel
        assert text == "not signed by this app"


async def test_a_call_without_slacks_headers_is_not_this_channels() -> None:
    async def act(click: Click) -> ClickAnswer:
        raise AssertionError("not to be called")

    channel = make_channel("")
    assert await channel.answer_click({}, b"payload=%7B%7D", NOW, act) is None
    headers = {"X-Slack-Request-Timestamp": str(int(NOW.timestamp())), "X-Slack-Signature": "v0=" + "0" * 64}
    assert await channel.answer_click(headers, b"payload=%7B%7D", NOW, act) is None


async def test_the_fake_rejects_what_slack_rejects(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlackApp()
    url = await start(aiohttp_server, fake.app()) + "/api/chat.postMessage"
    button = {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "B"}, "value": "1"}
    header = {"type": "header", "text": {"type": "plain_text", "text": "x"}}

    def actions(*elements: dict) -> list[dict]:
        return [{"type": "actions", "elements": list(elements)}]

    cases = [
        (b"{not json", "application/json", "invalid_json"),
        (b"[]", "application/json", "json_not_object"),
        (b"channel=C0ALERTS01&text=hi", "application/x-www-form-urlencoded", "invalid_form_data"),
        ({"channel": CHANNEL}, None, "no_text"),
        ({"channel": CHANNEL, "text": "x" * 40_001}, None, "msg_too_long"),
        (
            {"channel": CHANNEL, "blocks": [header] * 51},
            None,
            "[ERROR] no more than 50 items allowed [json-pointer:/blocks]",
        ),
        (
            {"channel": CHANNEL, "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]},
            None,
            "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            {"channel": CHANNEL, "blocks": actions({**button, "value": "v" * 2001})},
            None,
            "[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
        ),
        (
            {"channel": CHANNEL, "blocks": actions({**button, "action_id": "a" * 256})},
            None,
            "[ERROR] must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
        ),
        (
            {"channel": CHANNEL, "blocks": actions(*[{**button, "action_id": f"a{n}"} for n in range(26)])},
            None,
            "[ERROR] no more than 25 items allowed [json-pointer:/blocks/0/elements]",
        ),
        ({"channel": CHANNEL, "blocks": actions(button, button)}, None, "[ERROR] duplicate action_id"),
        (
            {"channel": CHANNEL, "blocks": actions({**button, "confirm": {**RESOLVE_CONFIRM, "deny": None}})},
            None,
            "[ERROR] must be a plain_text text object [json-pointer:/blocks/0/elements/0/confirm/deny]",
        ),
        ({"channel": CHANNEL, "blocks": [header, {**header, "type": "carousel"}]}, None, "[ERROR] unsupported type"),
    ]
    answers = []
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {BOT_TOKEN}"}
        for body, content_type, _ in cases:
            kwargs = {"json": body} if content_type is None else {"data": body}
            extra = {} if content_type is None else {"Content-Type": content_type}
            async with session.post(url, headers={**headers, **extra}, **kwargs) as response:  # type: ignore[arg-type]
                answers.append((response.status, await response.json()))
        plain_json = {**headers, "Content-Type": "application/json"}
        async with session.post(
            url, headers=plain_json, data=json.dumps({"channel": CHANNEL, "text": "hi"})
        ) as response:
            no_charset = await response.json()
    for (status, answer), (_, _, expected) in zip(answers, cases, strict=True):
        assert status == 200 and answer["ok"] is False, answer
        if expected.startswith("[ERROR]"):
            assert answer["error"] == "invalid_blocks"
            assert any(m.startswith(expected) for m in answer["response_metadata"]["messages"]), answer
        else:
            assert answer["error"] == expected
    assert fake.received == [{"channel": CHANNEL, "text": "hi"}]  # sent as application/json without a charset:
    assert no_charset["ok"] is True and no_charset["warning"] == "missing_charset"  # posted, with Slack's warning


async def test_a_response_url_serves_five_times_within_thirty_minutes(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    moment = [0.0]
    fake = FakeSlackApp(clock=lambda: moment[0])
    interactions, request_url, ts = await posted_alert(aiohttp_server, fake, ClickAnswer(False, "Not done."))
    async with aiohttp.ClientSession() as session:
        await fake.click(session, request_url, ts, ALICE, ACK, SECRET, at=START)
        await fake.click(session, request_url, ts, ALICE, ACK, SECRET, at=START)
        first, second = (rebase(p["response_url"], interactions.channel.base_url) for p in interactions.payloads)
        statuses = []
        for _ in range(6):
            async with session.post(first, json={"text": "again"}) as response:
                statuses.append((response.status, (await response.json()).get("error")))
        moment[0] = 30 * 60 + 1
        async with session.post(second, json={"text": "late"}) as response:
            late = (response.status, (await response.json())["error"])
    assert statuses == [(200, None)] * 5 + [(404, "used_url")] and late == (404, "expired_url")
    assert [e.text for e in fake.ephemeral] == ["again"] * 5


async def test_an_oversized_alert_is_cut_to_block_kits_limits_keeping_the_buttons(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    fake = FakeSlackApp()
    channel = make_channel(await start(aiohttp_server, fake.app()))
    alert = sample_alert(alertname="X" * 300, annotations={"summary": "huge", "description": "y" * 10_000})
    message = Renderer({"s": {"type": "slack_app"}}, None).render("s", "firing", [alert], "", {}, ACK_URL)
    assert channel.classify(await send(channel, message)).result == "ok", fake.answers
    header, section, actions = fake.received[0]["blocks"]
    assert len(header["text"]["text"]) == 150 and header["text"]["text"].endswith("…")
    assert len(section["text"]["text"]) == SECTION_LIMIT and section["text"]["text"].endswith(TRUNCATED)
    assert [button["value"] for button in actions["elements"]] == ["1", "1"]


def test_the_default_template_renders_as_the_golden_text() -> None:
    for kind in ("firing", "resolved"):
        assert_golden(f"slack_app-{kind}.txt", render_default("slack_app", kind, recipient="").text + "\n")
    assert_golden("slack_app-digest.txt", render_default("slack_app", alerts=3, recipient="").text + "\n")


# -- what Slack documents beyond the happy path: every shape of a signed call, and the answers of chat.postMessage


def signed(body: bytes, secret: str = SECRET, at: datetime = NOW) -> dict[str, str]:
    """Slack's headers for `body`, signed at `at`."""
    timestamp = str(int(at.timestamp()))
    return {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
    }


def form(payload: object) -> bytes:
    """An interaction as Slack posts it: one form field `payload` holding the JSON (spaces as `+`)."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def press_payload(**changes: object) -> dict:
    """A block_actions payload as Slack's reference shows it, for the Acknowledge button of alert 7."""
    payload = {
        "type": "block_actions",
        "user": {"id": ALICE, "username": "alice", "name": "alice", "team_id": "T024BE7LD"},
        "api_app_id": "A0AMCOMP01",
        "token": "deprecated",
        "container": {"type": "message", "message_ts": "1.2", "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": "1.2.3",
        "team": {"id": "T024BE7LD", "domain": "demo"},
        "channel": {"id": CHANNEL, "name": "alerts"},
        "message": {"type": "message", "text": "[CRITICAL] X", "ts": "1.2", "blocks": []},
        "response_url": "https://hooks.slack.com/actions/T024BE7LD/1/abc",
        "actions": [{"action_id": ACK, "block_id": "b", "value": "7", "type": "button", "action_ts": "1.3"}],
    }
    return {**payload, **changes}


ACKED = ClickAnswer(True, "Acknowledged by alice.", "alice")


class Recorder:
    def __init__(self, answer: ClickAnswer = ACKED) -> None:
        self.answer = answer
        self.clicks: list[Click] = []

    async def __call__(self, click: Click) -> ClickAnswer:
        self.clicks.append(click)
        return self.answer


@pytest.mark.parametrize(
    "error",
    ["rate_limited", "message_limit_exceeded", "request_timeout", "team_added_to_org", "org_login_required"],
)
def test_slacks_other_transient_errors_are_retried(error: str) -> None:
    """chat.postMessage's error table lists these besides ratelimited and the fatal/internal errors."""
    outcome = make_channel("").classify(Response(200, {}, json.dumps({"ok": False, "error": error}).encode()))
    assert outcome.result == "retry" and outcome.reason == f"chat.postMessage {error}", outcome
    if error in ("rate_limited", "message_limit_exceeded"):
        assert outcome.retry_after == (1.0 if error == "rate_limited" else 60.0)
    headers = {"Retry-After": "9"}
    limited = Response(200, headers, b'{"ok": false, "error": "rate_limited"}')
    assert make_channel("").classify(limited).retry_after == 9.0


@pytest.mark.parametrize(
    ("error", "words"),
    [("msg_blocks_too_long", "over Slack's size limit"), ("token_expired", "expired"), ("no_permission", "may not")],
)
def test_more_permanent_errors_are_explained(error: str, words: str) -> None:
    outcome = make_channel("").classify(Response(200, {}, json.dumps({"ok": False, "error": error}).encode()))
    assert outcome.result == "permanent" and words in outcome.reason, outcome


@pytest.mark.parametrize(
    ("body", "acted"),
    [
        (form(press_payload()), True),
        (form(press_payload()).replace(b"%20", b"+"), True),  # form encoding's `+` for a space
        (json.dumps(press_payload()).encode(), True),  # a JSON body, as Slack's Bolt also reads one
        (form(press_payload(user={"id": ALICE})), True),  # no username nor name: the id names them
        (form(press_payload(user={"id": ALICE, "name": "alice-legacy"})), True),
        (form(press_payload(container=None, channel=None, message=None)), True),
        (form(press_payload(response_url="https://[::1/actions")), True),  # its update fails later, and is logged
        (form(press_payload(message=["not", "an", "object"])), True),
        (form(press_payload(message={"blocks": ["junk", {"type": "section", "block_id": "s"}], "text": 5})), True),
        (
            form(
                press_payload(actions=[{"action_id": "other", "type": "static_select"}, press_payload()["actions"][0]])
            ),
            True,
        ),
        (form(press_payload(user="U0ALICE001")), False),
        (form(press_payload(user={"name": "no id"})), False),
        (form(press_payload(actions=[{"action_id": ["a"], "value": "7"}])), False),
        (form(press_payload(actions=[{"action_id": ACK, "value": "²"}])), False),
        (form(press_payload(actions=[{"action_id": ACK, "value": "9" * 5000}])), False),
        (form(press_payload(actions="ack")), False),
        (form(press_payload(actions=[])), False),
        (form({"type": "view_submission", "user": {"id": ALICE}, "view": {"id": "V1"}}), False),
        (form({"type": "message_action", "callback_id": "x", "user": {"id": ALICE}, "message": {}}), False),
        (form({"type": "shortcut", "callback_id": "x", "user": {"id": ALICE}}), False),
        (form(["not", "an", "object"]), False),
        (b"payload=" + b"%5B" * 100_000, False),  # JSON nested deeper than Python's recursion limit
        (b"payload=%FF%FE", False),
        (b"\xff\xfe", False),
        (b"", False),
        (b"ssl_check=1&token=x", False),
    ],
)
async def test_any_signed_call_is_answered_200_at_once_and_only_a_press_of_ours_is_acted_on(body, acted) -> None:  # type: ignore[no-untyped-def]
    act = Recorder()
    clicked = await make_channel("").answer_click(signed(body), body, NOW, act)
    assert clicked is not None and (clicked.response.status, clicked.response.body) == (200, b"")
    assert [c.alert_id for c in act.clicks] == ([7] if acted else [])
    assert (clicked.after is not None) == acted


async def test_a_press_names_the_presser_by_username_then_name() -> None:
    act = Recorder()
    for user in ({"id": ALICE, "username": "alice", "name": "legacy"}, {"id": ALICE, "name": "legacy"}, {"id": ALICE}):
        body = form(press_payload(user=user))
        await make_channel("").answer_click(signed(body), body, NOW, act)
    assert [c.user_name for c in act.clicks] == ["alice", "legacy", ""]
    assert {(c.user_field, c.user_id, c.action) for c in act.clicks} == {("slack_user_id", ALICE, "ack")}


async def test_a_press_without_a_response_url_is_still_acted_on() -> None:
    act = Recorder()
    body = form(press_payload(response_url=None))
    clicked = await make_channel("").answer_click(signed(body), body, NOW, act)
    assert clicked is not None and clicked.response.status == 200 and clicked.after is None
    assert [c.alert_id for c in act.clicks] == [7]


async def test_a_malformed_message_in_the_press_still_updates_it() -> None:  # type: ignore[no-untyped-def]
    posted: list[dict] = []

    async def respond(request: web.Request) -> web.Response:
        posted.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/actions/{rest:.*}", respond)
    server = TestServer(app)
    await server.start_server()
    try:
        message = {"blocks": ["junk", {"type": "actions"}, {"type": "section", "block_id": "s", "text": {}}], "text": 5}
        body = form(press_payload(message=message))
        channel = make_channel(str(server.make_url("")).rstrip("/"))
        clicked = await channel.answer_click(signed(body), body, NOW, Recorder())
        assert clicked is not None and clicked.after is not None
        async with aiohttp.ClientSession() as session:
            await clicked.after(session)
    finally:
        await server.close()
    (reply,) = posted
    assert reply["replace_original"] is True and reply["text"] == "Acknowledged by alice."
    assert [b["type"] for b in reply["blocks"]] == ["section", "context"] and "block_id" not in reply["blocks"][0]


@pytest.mark.parametrize(
    ("response_url", "base_url", "expected"),
    [
        ("https://hooks.slack.com/actions/T1/2/x", "http://127.0.0.1:9", "http://127.0.0.1:9/actions/T1/2/x"),
        ("https://hooks.slack.com/actions/T1/2/x", None, "https://hooks.slack.com/actions/T1/2/x"),
        ("http://127.0.0.1:7/actions/T1/2/x", "http://127.0.0.1:9", "http://127.0.0.1:7/actions/T1/2/x"),
        ("https://hooks.notslack.com/a", "http://127.0.0.1:9", "https://hooks.notslack.com/a"),
        ("https://[hooks.slack.com/a", "http://127.0.0.1:9", "https://[hooks.slack.com/a"),  # not a URL
    ],
)
def test_a_response_url_is_moved_to_base_url_only_when_it_is_slacks(response_url, base_url, expected) -> None:  # type: ignore[no-untyped-def]
    assert make_channel(base_url)._response_url(response_url) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": "v0=\udcff\udcfe"},  # undecodable bytes
        {"X-Slack-Request-Timestamp": "\udcff", "X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": "１５３", "X-Slack-Signature": "v0=é"},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""},
    ],
)
async def test_odd_signature_headers_are_not_this_channels_and_raise_nothing(headers) -> None:  # type: ignore[no-untyped-def]
    act = Recorder()
    assert await make_channel("").answer_click(headers, form(press_payload()), NOW, act) is None
    assert act.clicks == []


async def test_a_signed_timestamp_that_is_no_number_of_seconds_is_refused_not_a_crash() -> None:
    act = Recorder()
    body = form(press_payload())
    for timestamp in ("1" + "0" * 400, "nan", "1.5e9", "\udcff"):
        headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature(SECRET, timestamp, body)}
        clicked = await make_channel("").answer_click(headers, body, NOW, act)
        assert clicked is not None and clicked.response.status == 401, timestamp
    assert act.clicks == []


async def test_an_empty_signing_secret_verifies_nothing() -> None:
    """An HMAC under an empty key is anyone's to make (Slack's SDK refuses an empty signing secret)."""
    body = form(press_payload())
    act = Recorder()
    assert await make_channel("", signing_secret="").answer_click(signed(body, secret=""), body, NOW, act) is None
    assert act.clicks == []


async def test_a_receiver_answers_any_malformed_call_on_its_interactions_path_without_a_server_error(  # type: ignore[no-untyped-def]
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:
    fake = FakeSlackApp()
    async with delivery(tmp_path, aiohttp_client, configured(await start(aiohttp_server, fake.app()))) as run:
        statuses = set()
        moment = run.clock.now()
        for body in (b"", b"payload=", b"payload=%7B", b"payload=" + b"%5B" * 100_000, b"\xff", form("x")):
            for headers in ({}, signed(body, at=moment), {"X-Slack-Signature": "é", "X-Slack-Request-Timestamp": "x"}):
                response = await run.client.post("/slack/interactions", data=body, headers=headers)
                statuses.add((response.status, bool(headers.get("X-Slack-Signature", "").startswith("v0="))))
    assert {status for status, _ in statuses} <= {200, 401}
    assert all(status == 200 for status, signed_ in statuses if signed_)  # signed: Slack's call, answered 200
