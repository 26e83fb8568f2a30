"""A local Telegram Bot API (`sendMessage` only) that checks what api.telegram.org checks and answers as it does.

It checks the bot token in the path (401), the method (404), the chat (400 chat not found, 403 blocked),
the text (empty, over 4096 characters after entity parsing), the HTML of `parse_mode: HTML` (400 can't
parse entities, for an unknown tag, a tag left open, a bare `<` or `&`), and a per-chat window (20 messages a
minute by default, as Telegram limits groups) answered with the real 429 and `parameters.retry_after`.
It can be scripted to answer anything once (a 5xx, a 429, a 200 with `ok: false`) or to answer late.
"""

import asyncio
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.window import SlidingWindow

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
GROUP_CHAT = "-100123"
# Telegram HTML: the tags it knows (https://core.telegram.org/bots/api#html-style), and its named entities
TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji"}
TAGS |= {"code", "pre", "blockquote"}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*(/?)>")


class EntityError(ValueError):
    pass


def parse_html(text: str) -> str:
    """The visible text of Telegram HTML, or EntityError with Telegram's wording."""
    visible: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        offset = len(text[:i].encode())
        if char == "<":
            tag = _TAG.match(text, i)
            if tag is None:
                raise EntityError(f"Unsupported start tag at byte offset {offset}")
            closing, name, attributes, self_closing = tag.group(1), tag.group(2).lower(), tag.group(3), tag.group(4)
            if closing:
                if not stack:
                    raise EntityError(f"Unexpected end tag at byte offset {offset}")
                if stack[-1] != name:
                    raise EntityError(
                        f'Unmatched end tag at byte offset {offset}, expected "</{stack[-1]}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                if name not in TAGS or self_closing:
                    raise EntityError(f'Unsupported start tag "{name}" at byte offset {offset}')
                if name == "a" and "href" not in attributes.lower():
                    raise EntityError(f"Can't find href attribute of a tag at byte offset {offset}")
                stack.append(name)
            i = tag.end()
        elif char == "&":
            entity = _ENTITY.match(text, i)
            if entity is None:
                raise EntityError(f"Character '&' is reserved and must be escaped at byte offset {offset}")
            body = entity.group(1)
            if body.startswith("#"):
                number = int(body[2:], 16) if body[1:2] in ("x", "X") else int(body[1:])
                if number == 0 or number > 0x10FFFF:
                    raise EntityError(f"Wrong HTML entity at byte offset {offset}")
                visible.append(chr(number))
            elif body in NAMED_ENTITIES:
                visible.append(NAMED_ENTITIES[body])
            else:
                raise EntityError(f'Unsupported HTML entity "&{body};" at byte offset {offset}')
            i = entity.end()
        else:
            visible.append(char)
            i += 1
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(visible)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Answer:
    status: int
    body: dict


@dataclass
class FakeTelegram:
    """Bot API server for one bot. `received` holds the accepted sendMessage bodies (with the visible text
    under `_visible`), `rejected` every (status, description) it answered with an error."""

    token: str = TOKEN
    chats: set[str] = field(default_factory=lambda: {GROUP_CHAT, "1001"})
    blocked: set[str] = field(default_factory=set)  # chats whose user blocked the bot (403)
    per_chat: int = 20  # messages per chat per window (Telegram: 20/min in a group)
    window_s: float = 60.0
    now: Callable[[], float] = time.monotonic  # the fake's clock, for the rate window (tests pass a virtual one)
    answers: list[Answer] = field(default_factory=list)  # scripted answers, one per request, before any check
    delays: list[float] = field(default_factory=list)  # seconds to wait before answering, one per request
    received: list[dict] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    requests: int = 0
    _sent: dict[str, SlidingWindow] = field(default_factory=dict)

    def shown(self) -> list[Shown]:
        """Accepted messages as the chat shows them (HTML parsed to its visible text)."""
        return [Shown(f"chat {body['chat_id']}", body["_visible"]) for body in self.received]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self.handle)
        return app

    def error(self, status: int, description: str, parameters: dict | None = None) -> web.Response:
        self.rejected.append((status, description))
        body: dict = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        if request.match_info["token"] != self.token:
            return self.error(401, "Unauthorized")
        if request.match_info["method"].lower() != "sendmessage":
            return self.error(404, "Not Found")
        if self.answers:
            answer = self.answers.pop(0)
            if not answer.body.get("ok"):
                self.rejected.append((answer.status, str(answer.body.get("description"))))
            return web.json_response(answer.body, status=answer.status)
        try:
            if request.content_type == "application/json":
                body = await request.json()
            else:
                body = dict(await request.post())
        except ValueError:
            return self.error(400, "Bad Request: can't parse JSON")
        if not isinstance(body, dict):
            return self.error(400, "Bad Request: request body must be an object")
        chat = str(body.get("chat_id", "")).strip()
        if not chat:
            return self.error(400, "Bad Request: chat_id is empty")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return self.error(400, "Bad Request: message text is empty")
        if chat not in self.chats:
            return self.error(400, "Bad Request: chat not found")
        if chat in self.blocked:
            return self.error(403, "Forbidden: bot was blocked by the user")
        mode = body.get("parse_mode")
        if mode in (None, ""):
            visible = text
        elif str(mode).lower() == "html":
            try:
                visible = parse_html(text)
            except EntityError as exc:
                return self.error(400, f"Bad Request: can't parse entities: {exc}")
        elif str(mode).lower() in ("markdown", "markdownv2"):
            visible = text  # not parsed here: the default template is HTML
        else:
            return self.error(400, "Bad Request: unsupported parse_mode")
        if not visible.strip():
            return self.error(400, "Bad Request: message text is empty")
        if utf16_len(visible.strip()) > 4096:
            return self.error(400, "Bad Request: message is too long")
        now = self.now()
        window = self._sent.setdefault(chat, SlidingWindow(self.per_chat, self.window_s))
        if over := window.wait(now):
            wait = max(1, math.ceil(over))
            return self.error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        window.record(now)
        self.received.append({**body, "_visible": visible})
        chat_type = "supergroup" if chat.startswith("-") else "private"
        result = {
            "message_id": len(self.received),
            "date": int(time.time()),
            "chat": {"id": int(chat) if chat.lstrip("-").isdigit() else chat, "type": chat_type},
            "text": visible,
        }
        return web.json_response({"ok": True, "result": result})
