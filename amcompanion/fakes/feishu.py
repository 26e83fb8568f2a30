"""A fake Feishu / Lark custom bot endpoint (`POST /open-apis/bot/v2/hook/{token}`) on loopback.

It checks what the real service checks, written independently of amcompanion's channel: the hook token, the
signature (HMAC-SHA256 keyed with `timestamp\\nsecret` over an empty message) and its one-hour window, custom
keywords in text-like fields, the IP allow-list, the body size (20 KB per the docs), the message shape, and
the per-bot rate limits (5/s and 100/min), and answers in Feishu's wire format: HTTP 200 with a non-zero
`code` for almost every error. It can be told to fail (`script`), to be slow (`delay`), or to be disabled.
"""

import asyncio
import base64
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.window import SlidingWindow, admit_all

MAX_BODY = 20 * 1024
WINDOW_S = 3600
MSG_TYPES = {"text", "post", "interactive", "image", "share_chat"}
CARD_TAGS = {"div", "markdown", "hr", "action", "note", "img", "column_set"}
COLOURS = {"blue", "wathet", "turquoise", "green", "yellow", "orange", "red", "carmine", "violet", "purple", "indigo"}
COLOURS |= {"grey", "default"}


def ok() -> tuple[int, dict]:
    return 200, {"code": 0, "msg": "success", "data": {}}


def error(code: int, msg: str, status: int = 200) -> tuple[int, dict]:
    return status, {"code": code, "msg": msg, "data": {}}


@dataclass
class FeishuBot:
    """One custom bot in a group, with its security settings."""

    token: str
    secret: str = ""
    keywords: list[str] = field(default_factory=list)
    allowed_ips: list[str] = field(default_factory=list)
    enabled: bool = True


@dataclass
class FakeFeishu:
    bots: list[FeishuBot]
    windows: list[tuple[int, float]] = field(default_factory=lambda: [(5, 1.0), (100, 60.0)])  # (count, seconds)
    rate_answer: tuple[int, dict] = field(default_factory=lambda: error(11232, "frequency limited psm[lark.oapi.app]"))
    script: list[tuple[int, dict]] = field(default_factory=list)  # answers given (in turn) before any check
    delay: float = 0.0  # seconds to wait before answering (once per request)
    delays: list[float] = field(default_factory=list)  # per-request delays, used first
    now: Callable[[], float] = time.time
    received: list[dict] = field(default_factory=list)  # bodies accepted (code 0)
    answers: list[dict] = field(default_factory=list)  # every answer given, in order
    verified: int = 0  # accepted requests whose signature was checked and matched
    largest: int = 0  # bytes of the largest body received
    _sent: dict[str, list[SlidingWindow]] = field(default_factory=dict)

    def shown(self) -> list[Shown]:
        """Accepted messages as the group sees them: the card's title and texts, one per line."""
        return [Shown("the group", "\n".join(_texts(body))) for body in self.received]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.largest = max(self.largest, len(raw))
        wait = self.delays.pop(0) if self.delays else self.delay
        if wait:
            await asyncio.sleep(wait)
        status, answer = self.script.pop(0) if self.script else self._check(request, raw)
        self.answers.append(answer)
        return web.json_response(answer, status=status)

    def _check(self, request: web.Request, raw: bytes) -> tuple[int, dict]:
        bot = next((b for b in self.bots if b.token == request.match_info["token"]), None)
        if bot is None:
            return error(19001, "param invalid: incoming webhook access token invalid")
        if not bot.enabled:
            return error(19007, "Bot Not Enabled")
        if len(raw) > MAX_BODY:
            return error(19036, "request body too large")
        try:
            body = json.loads(raw)
        except ValueError:
            return error(9499, "Bad Request", status=400)
        if not isinstance(body, dict):
            return error(9499, "Bad Request", status=400)
        if bot.allowed_ips and request.remote not in bot.allowed_ips:
            return error(19022, f"Ip Not Allowed: {request.remote}")
        if bot.secret and not self._signed(bot.secret, body):
            return error(19021, "sign match fail or timestamp is not within one hour from current time")
        if bot.keywords and not any(k in text for k in bot.keywords for text in _texts(body)):
            return error(19024, "Key Words Not Found")
        if not self._admit(bot.token):
            return self.rate_answer
        if not _well_formed(body):
            return error(9499, "Bad Request: fail to parse content")
        self.received.append(body)
        self.verified += bool(bot.secret)
        return ok()

    def _signed(self, secret: str, body: dict) -> bool:
        try:
            timestamp = int(body.get("timestamp"))  # a string in the docs' example, an integer from many clients
        except (TypeError, ValueError):
            return False
        if abs(self.now() - timestamp) > WINDOW_S:
            return False
        key = (str(timestamp) + "\n" + secret).encode("utf-8")
        expected = base64.b64encode(hmac.digest(key, b"", "sha256")).decode()
        return hmac.compare_digest(expected, str(body.get("sign", "")))

    def _admit(self, token: str) -> bool:
        """Sliding windows per bot; a rejected request does not count."""
        windows = self._sent.setdefault(token, [SlidingWindow(count, seconds) for count, seconds in self.windows])
        return admit_all(windows, time.monotonic())


def _texts(body: dict) -> list[str]:
    """The text-like values a keyword may be in (not `href`, not `url`, not ids)."""
    found: list[str] = []

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in ("text", "content", "title"):
            found.append(value)

    walk(body.get("content"))
    walk(body.get("card"))
    return found


def _well_formed(body: dict) -> bool:
    msg_type = body.get("msg_type")
    if msg_type not in MSG_TYPES:
        return False
    if msg_type == "interactive":
        return _card_ok(body.get("card"))
    content = body.get("content")
    if not isinstance(content, dict):
        return False
    if msg_type == "text":
        return isinstance(content.get("text"), str) and content["text"] != ""
    if msg_type == "post":
        post = content.get("post")
        if not isinstance(post, dict) or not post:
            return False
        for language in post.values():
            paragraphs = language.get("content") if isinstance(language, dict) else None
            if not isinstance(paragraphs, list):
                return False
            for paragraph in paragraphs:
                if not isinstance(paragraph, list):
                    return False
                for item in paragraph:
                    if not isinstance(item, dict) or item.get("tag") not in ("text", "a", "at", "img"):
                        return False
                    if item["tag"] == "a" and not str(item.get("href", "")).startswith(("http://", "https://")):
                        return False
        return True
    return True


def _card_ok(card: object) -> bool:
    if not isinstance(card, dict) or not isinstance(card.get("elements"), list):
        return False
    header = card.get("header")
    if header is not None:
        title = header.get("title") if isinstance(header, dict) else None
        if not isinstance(title, dict) or title.get("tag") not in ("plain_text", "lark_md"):
            return False
        if header.get("template", "default") not in COLOURS:
            return False
    for element in card["elements"]:
        if not isinstance(element, dict) or element.get("tag") not in CARD_TAGS:
            return False
        if element["tag"] == "markdown" and not isinstance(element.get("content"), str):
            return False
        if element["tag"] == "action":
            for action in element.get("actions") or [None]:
                if not isinstance(action, dict) or action.get("tag") != "button":
                    return False
                text = action.get("text")
                if not isinstance(text, dict) or not text.get("content"):
                    return False
                if not str(action.get("url", "")).startswith(("http://", "https://")):  # a bot's buttons only open URLs
                    return False
    return True
