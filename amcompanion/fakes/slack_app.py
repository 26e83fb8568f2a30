"""A fake Slack for an app's bot, on loopback: the Web API's `POST /api/chat.postMessage`, the `response_url` of
a button press (`POST /actions/{team}/{id}/{token}`), and Slack's own side of a press (`click`): the signed
block_actions call to the app's Interactivity Request URL.

Written from Slack's documents (below), not from amcompanion's channel, it checks what Slack checks:
- chat.postMessage: the bot token (`Authorization: Bearer xoxb-…`; none is not_authed, another invalid_auth, a
  revoked one token_revoked) and its chat:write scope (missing_scope, with `needed` and `provided`); a JSON object
  (invalid_json, json_not_object; only the JSON form is taken, a form-encoded call is invalid_form_data here); the
  channel (unknown: channel_not_found, the bot not in it: not_in_channel, archived: is_archived); some text
  (no_text; over 40,000 characters msg_too_long); Block Kit (invalid_blocks, with Slack's `[ERROR] … [json-pointer:…]`
  messages: 50 blocks, header 150 and section 3,000 characters, actions of 25 elements, buttons' text 75, action_id
  and block_id 255, value 2,000, url 3,000, styles, confirm dialogs, unique ids; block types other than header,
  section, context, actions and divider are refused as unknown to the fake); and the pace per channel (about one
  a second, short bursts allowed: 429 `ratelimited` with Retry-After). A JSON body without `charset` is posted
  with Slack's `missing_charset` warning. What it posts is kept by `ts`, every block given a block_id as Slack
  does, and answered `{"ok": true, "channel", "ts", "message"}`.
- a response_url, issued per press: `replace_original` changes the message in place (same ts), `delete_original`
  removes it, anything else is a new message, `response_type: in_channel` for everyone, else ephemeral (only the
  presser sees it); at most 5 uses within 30 minutes.
- `click`: the block_actions payload as Slack's reference shows it, for a button of a kept message, sent as the
  form field `payload`, signed (X-Slack-Request-Timestamp, X-Slack-Signature: `v0=` + hex HMAC-SHA256 of
  `v0:{timestamp}:{body}` under the app's signing secret), and given Slack's 3 seconds to be answered.

Sources: docs.slack.dev/reference/methods/chat.postMessage, docs.slack.dev/apis/web-api/rate-limits,
docs.slack.dev/reference/block-kit/blocks, docs.slack.dev/reference/block-kit/block-elements/button-element,
docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object,
docs.slack.dev/reference/interaction-payloads/block_actions-payload,
docs.slack.dev/interactivity/handling-user-interaction,
docs.slack.dev/authentication/verifying-requests-from-slack (and its worked example, reproduced in the tests).
"""

import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.slack import LIMITS
from amcompanion.fakes.window import SlidingWindow

BOT_TOKEN = "xoxb-fake-amcompanion-bot"  # not shaped like a real token: secret scanners leave it alone
TEAM, TEAM_DOMAIN = "T024BE7LD", "amcompanion-demo"
APP_ID, BOT_ID, BOT_USER = "A0AMCOMP01", "B0AMCOMP01", "U0AMCOMBOT"
CHANNEL, OTHER_CHANNEL = "C0ALERTS01", "C0GENERAL1"  # the bot is in the first; the second exists without it
VERIFICATION_TOKEN = "fakeVerificationToken000"  # the deprecated `token` every payload still carries
TEXT_LIMIT = LIMITS["text"]
BLOCK_ID_LIMIT = ACTION_ID_LIMIT = 255
VALUE_LIMIT = 2000
CONTEXT_ELEMENTS = 10
CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}
RESPONSE_URL_USES, RESPONSE_URL_LIFETIME_S = 5, 30 * 60
DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")  # Slack's date formatting: its fallback text stands in for it
CLICK_TIMEOUT_S = 3.0  # Slack shows the presser an error when the app has not answered by then


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature (version v0)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Call:
    """A chat.postMessage request as it came."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Posted:
    channel: str
    message: dict  # as Slack shows it: type, text, user, bot_id, app_id, team, ts, blocks


@dataclass(frozen=True)
class Ephemeral:
    user: str
    channel: str
    text: str


@dataclass
class _Issued:
    """A response_url handed out with a press."""

    channel: str
    ts: str
    user: str
    at: float
    uses: int = 0


@dataclass
class FakeSlackApp:
    bot_token: str = BOT_TOKEN
    joined: set[str] = field(default_factory=lambda: {CHANNEL})  # channels the bot is a member of
    others: set[str] = field(default_factory=lambda: {OTHER_CHANNEL})  # channels of the workspace it is not in
    archived: set[str] = field(default_factory=set)
    scopes: set[str] = field(default_factory=lambda: {"chat:write"})
    revoked: bool = False
    users: dict[str, str] = field(default_factory=dict)  # member id → username, for presses
    windows: list[tuple[int, float]] = field(default_factory=lambda: [(3, 1.0), (60, 60.0)])  # per channel
    clock: Callable[[], float] = time.monotonic  # for the rate and response_url lifetimes; tests pass virtual time
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)  # answers given before any check
    calls: list[Call] = field(default_factory=list)  # every chat.postMessage request
    received: list[dict] = field(default_factory=list)  # the bodies posted
    answers: list[tuple[int, str]] = field(default_factory=list)  # (status, `error` or "ok"; a scripted body)
    messages: dict[str, Posted] = field(default_factory=dict)  # by ts, as they stand now
    ephemeral: list[Ephemeral] = field(default_factory=list)
    responses: list[dict] = field(default_factory=list)  # bodies posted to response URLs
    _issued: dict[str, _Issued] = field(default_factory=dict)
    _windows: dict[str, list[SlidingWindow]] = field(default_factory=dict)
    _serial: int = 0

    def shown(self) -> list[Shown]:
        """The channel's messages as they stand (after updates), then what only a presser saw."""
        shown = [Shown(f"#{posted.channel}", _visible(posted.message)) for posted in self.messages.values()]
        return shown + [Shown(f"{self.users.get(e.user, e.user)} only", e.text) for e in self.ephemeral]

    def pressable(self, action_id: str) -> list[str]:
        """The messages (ts) that still have the button `action_id`, oldest first (what the demo presses)."""
        return [ts for ts, posted in self.messages.items() if _has_button(posted.message, action_id)]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self.post_message)
        app.router.add_post("/actions/{team}/{id}/{token}", self.respond)
        return app

    async def post_message(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.calls.append(Call(request.method, request.path_qs, dict(request.headers), raw))
        if self.script:
            status, headers, text = self.script.pop(0)
            self.answers.append((status, text))
            return web.Response(status=status, headers=headers, text=text, content_type="application/json")
        status, headers, answer = self._post(request, raw)
        self.answers.append((status, str(answer.get("error", "ok"))))
        return web.json_response(answer, status=status, headers=headers)

    def _post(self, request: web.Request, raw: bytes) -> tuple[int, dict[str, str], dict]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if not token:
            return _error("not_authed")
        if token != self.bot_token:
            return _error("invalid_auth")
        if self.revoked:
            return _error("token_revoked")
        if "chat:write" not in self.scopes:
            return _error("missing_scope", needed="chat:write", provided=",".join(sorted(self.scopes)))
        if request.content_type != "application/json":
            return _error("invalid_form_data")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error("invalid_json")
        if not isinstance(body, dict):
            return _error("json_not_object")
        channel = body.get("channel")
        if channel not in self.joined | self.others | self.archived:
            return _error("channel_not_found")
        if channel in self.archived:
            return _error("is_archived")
        if channel not in self.joined:
            return _error("not_in_channel")
        text, blocks = body.get("text"), body.get("blocks")
        if not text and not blocks:
            return _error("no_text")
        if text is not None and not isinstance(text, str):
            return _error("invalid_arguments")
        if text and len(text) > TEXT_LIMIT:
            return _error("msg_too_long")
        problems = block_problems(blocks) if blocks is not None else []
        if problems:
            return _error("invalid_blocks", response_metadata={"messages": problems})
        wait = self._wait(channel)
        if wait:
            return _error("ratelimited", status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        self.received.append(body)
        posted = self._keep(channel, text or "", blocks or [])
        answer = {"ok": True, "channel": channel, "ts": posted.message["ts"], "message": posted.message}
        if "charset" not in request.headers.get("Content-Type", ""):
            answer.update(warning="missing_charset", response_metadata={"warnings": ["missing_charset"]})
        return 200, {}, answer

    def _wait(self, channel: str) -> float:
        """0 when the channel's windows have room (and the post is counted), else the seconds until they do."""
        now = self.clock()
        windows = self._windows.setdefault(channel, [SlidingWindow(count, seconds) for count, seconds in self.windows])
        wait = max(window.wait(now) for window in windows)
        if not wait:
            for window in windows:
                window.record(now)
        return wait

    def _keep(self, channel: str, text: str, blocks: list[dict]) -> Posted:
        self._serial += 1
        ts = f"{int(time.time())}.{self._serial:06d}"
        message = {
            "type": "message",
            "text": text,
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM,
            "ts": ts,
            "blocks": _with_block_ids(blocks),
        }
        posted = self.messages[ts] = Posted(channel, message)
        return posted

    async def respond(self, request: web.Request) -> web.Response:
        """A response_url: the press's message changed, removed, or answered."""
        issued = self._issued.get(request.path)
        if issued is None or self.clock() - issued.at > RESPONSE_URL_LIFETIME_S or issued.ts not in self.messages:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        if issued.uses >= RESPONSE_URL_USES:
            return web.json_response({"ok": False, "error": "used_url"}, status=404)
        issued.uses += 1
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        self.responses.append(body)
        if body.get("delete_original") in (True, "true"):
            del self.messages[issued.ts]
            return web.json_response({"ok": True})
        text, blocks = body.get("text") or "", body.get("blocks")
        if not text and not blocks:
            return web.json_response({"ok": False, "error": "no_text"}, status=400)
        problems = block_problems(blocks) if blocks is not None else []
        if problems:
            return web.json_response({"ok": False, "error": "invalid_blocks", "messages": problems}, status=400)
        if body.get("replace_original") in (True, "true"):
            self.messages[issued.ts].message.update(text=text, blocks=_with_block_ids(blocks or []))
        elif body.get("response_type") == "in_channel":
            self._keep(issued.channel, text, blocks or [])
        else:
            self.ephemeral.append(Ephemeral(issued.user, issued.channel, text))
        return web.json_response({"ok": True})

    async def click(
        self,
        session: aiohttp.ClientSession,
        request_url: str,
        ts: str,
        user_id: str,
        action_id: str,
        signing_secret: str,
        at: datetime | None = None,
    ) -> tuple[int, str]:
        """`user_id` presses the button `action_id` of the message `ts`: Slack's call to the app's Request URL,
        signed with `signing_secret` at `at` (now by default); the app's answer (status, body)."""
        posted = self.messages[ts]
        block, button = _button(posted.message, action_id)
        moment = at or datetime.now(UTC)
        timestamp = str(int(moment.timestamp()))
        self._serial += 1
        path = f"/actions/{TEAM}/{self._serial:012d}/{secrets.token_urlsafe(18)}"
        self._issued[path] = _Issued(posted.channel, ts, user_id, self.clock())
        name = self.users.get(user_id, user_id.lower())
        payload = {
            "type": "block_actions",
            "user": {"id": user_id, "username": name, "name": name, "team_id": TEAM},
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": {"type": "message", "message_ts": ts, "channel_id": posted.channel, "is_ephemeral": False},
            "trigger_id": f"{self._serial}.{TEAM[1:]}.{secrets.token_hex(16)}",
            "team": {"id": TEAM, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": posted.channel, "name": posted.channel.lower()},
            "message": json.loads(json.dumps(posted.message)),
            "state": {"values": {}},
            "response_url": f"https://hooks.slack.com{path}",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block["block_id"],
                    "text": button["text"],
                    "value": button.get("value", ""),
                    **({"style": button["style"]} if "style" in button else {}),
                    "type": "button",
                    "action_ts": f"{moment.timestamp():.6f}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack_signature(signing_secret, timestamp, body),
        }
        timeout = aiohttp.ClientTimeout(total=CLICK_TIMEOUT_S)
        async with session.post(request_url, data=body, headers=headers, timeout=timeout) as response:
            return response.status, await response.text()


def _error(
    error: str, status: int = 200, headers: dict[str, str] | None = None, **more: object
) -> tuple[int, dict[str, str], dict]:
    """Slack's Web API errors come in HTTP 200 (a 429 apart), as `{"ok": false, "error": …}`."""
    return status, headers or {}, {"ok": False, "error": error, **more}


def _with_block_ids(blocks: list[dict]) -> list[dict]:
    """The blocks as Slack keeps them: each with a block_id, made up when the poster gave none."""
    return [{**block, "block_id": block.get("block_id") or secrets.token_urlsafe(4)} for block in blocks]


def _has_button(message: dict, action_id: str) -> bool:
    try:
        _button(message, action_id)
    except LookupError:
        return False
    return True


def _button(message: dict, action_id: str) -> tuple[dict, dict]:
    for block in message["blocks"]:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element.get("action_id") == action_id:
                return block, element
    raise LookupError(f"message {message['ts']} has no button {action_id!r}")


def block_problems(blocks: object) -> list[str]:
    """What Slack would say is wrong with the blocks (its invalid_blocks messages); [] when they are fine."""
    if not isinstance(blocks, list):
        return [_problem("must be an array", "/blocks")]
    if len(blocks) > LIMITS["blocks"]:
        return [_problem(f"no more than {LIMITS['blocks']} items allowed", "/blocks")]
    problems: list[str] = []
    block_ids: set[str] = set()
    for n, block in enumerate(blocks):
        at = f"/blocks/{n}"
        if not isinstance(block, dict):
            problems.append(_problem("must be an object", at))
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            problems += _string(block_id, BLOCK_ID_LIMIT, f"{at}/block_id")
            if block_id in block_ids:
                problems.append(_problem("duplicate block_id", f"{at}/block_id"))
            block_ids.add(str(block_id))
        kind = block.get("type")
        if kind == "header":
            problems += _text(block.get("text"), LIMITS["header"], f"{at}/text", ("plain_text",))
        elif kind == "section":
            problems += _text(block.get("text"), LIMITS["section"], f"{at}/text")
        elif kind == "context":
            problems += _elements(block, CONTEXT_ELEMENTS, at, lambda e, where: _text(e, LIMITS["section"], where))
        elif kind == "actions":
            problems += _elements(block, LIMITS["elements"], at, _button_problems)
            action_ids = [e.get("action_id") for e in block.get("elements") or [] if isinstance(e, dict)]
            if len([a for a in action_ids if a]) != len({a for a in action_ids if a}):
                problems.append(_problem("duplicate action_id", f"{at}/elements"))
        elif kind != "divider":
            problems.append(_problem(f"unsupported type: {kind!r:.40}", f"{at}/type"))
    return problems


def _elements(block: dict, limit: int, at: str, check: Callable[[object, str], list[str]]) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [_problem("must provide at least 1 item", f"{at}/elements")]
    if len(elements) > limit:
        return [_problem(f"no more than {limit} items allowed", f"{at}/elements")]
    return [problem for n, element in enumerate(elements) for problem in check(element, f"{at}/elements/{n}")]


def _button_problems(element: object, at: str) -> list[str]:
    if not isinstance(element, dict) or element.get("type") != "button":
        return [_problem("only buttons are known to this fake", f"{at}/type")]
    problems = _text(element.get("text"), LIMITS["button"], f"{at}/text", ("plain_text",))
    for key, limit in (("action_id", ACTION_ID_LIMIT), ("value", VALUE_LIMIT), ("url", LIMITS["url"])):
        if key in element:
            problems += _string(element[key], limit, f"{at}/{key}")
    if element.get("style") not in (None, "primary", "danger"):
        problems.append(_problem("must be one of primary, danger", f"{at}/style"))
    confirm = element.get("confirm")
    if confirm is not None:
        if not isinstance(confirm, dict):
            return [*problems, _problem("must be an object", f"{at}/confirm")]
        for key, limit in CONFIRM_LIMITS.items():
            types = ("plain_text", "mrkdwn") if key == "text" else ("plain_text",)
            problems += _text(confirm.get(key), limit, f"{at}/confirm/{key}", types)
    return problems


def _text(obj: object, limit: int, at: str, types: tuple[str, ...] = ("plain_text", "mrkdwn")) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in types:
        return [_problem(f"must be a {' or '.join(types)} text object", at)]
    return _string(obj.get("text"), limit, f"{at}/text")


def _string(value: object, limit: int, at: str) -> list[str]:
    if not isinstance(value, str) or not value:
        return [_problem("must be more than 0 characters", at)]
    if len(value) > limit:
        return [_problem(f"must be less than {limit + 1} characters", at)]
    return []


def _problem(what: str, pointer: str) -> str:
    return f"[ERROR] {what} [json-pointer:{pointer}]"


def _visible(message: dict) -> str:
    """The message as its reader sees it: the blocks' texts, context lines and buttons (else the `text`)."""
    lines = []
    for block in message["blocks"]:
        if isinstance(block.get("text"), dict):
            lines.append(block["text"]["text"])
        elif block["type"] == "context":
            lines.append(" ".join(element.get("text", "") for element in block["elements"]))
        elif block["type"] == "actions":
            lines.append(" ".join(f"[{element['text']['text']}]" for element in block["elements"]))
    return DATE.sub(r"\1", "\n".join(lines) or message["text"])  # a date as its reader's client shows it
