"""A fake Slack incoming webhook (`POST /services/T…/B…/<secret>`) on loopback.

Written independently of amcompanion's channel, it checks what Slack checks: a known hook (the URL is the
credential), a JSON object, some text (`text`, `blocks` or `attachments`), Block Kit's structure and field
limits (section text 3000, header 150, button text 75, URL 3000, 50 blocks), and a per-hook rate limit; it
answers as Slack does, with real HTTP statuses and a plain-text body (`ok`, `invalid_payload`, `no_text`,
`invalid_blocks`, `channel_is_archived`, 429 with Retry-After). It can be told to fail (`script`), to be
slow (`delay`), or that its channel was archived.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.window import SlidingWindow, admit_all

HOOK = "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
LIMITS = {"section": 3000, "header": 150, "button": 75, "url": 3000, "blocks": 50, "elements": 25, "text": 40000}


@dataclass
class FakeSlack:
    hooks: set[str] = field(default_factory=lambda: {HOOK})
    windows: list[tuple[int, float]] = field(default_factory=lambda: [(5, 1.0)])  # ~1/s, short bursts tolerated
    retry_after: int = 1  # the Retry-After a 429 carries
    archived: bool = False
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)  # answers given before any check
    delays: list[float] = field(default_factory=list)  # per-request delays, then `delay`
    delay: float = 0.0
    received: list[dict] = field(default_factory=list)  # bodies accepted (`ok`)
    answers: list[tuple[int, str]] = field(default_factory=list)  # every answer given, in order
    _sent: dict[str, list[SlidingWindow]] = field(default_factory=dict)

    def shown(self) -> list[Shown]:
        """Accepted messages as the channel shows them: the blocks' texts (or the fallback `text`)."""
        return [Shown("the channel", _visible(body)) for body in self.received]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/services/{team}/{bot}/{secret}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        wait = self.delays.pop(0) if self.delays else self.delay
        if wait:
            await asyncio.sleep(wait)
        status, headers, text = self.script.pop(0) if self.script else self._check(request, raw)
        self.answers.append((status, text))
        return web.Response(status=status, headers=headers, text=text, content_type="text/plain")

    def _check(self, request: web.Request, raw: bytes) -> tuple[int, dict[str, str], str]:
        hook = "/".join(request.match_info[k] for k in ("team", "bot", "secret"))
        if hook not in self.hooks:
            return 404, {}, "no_service"
        if self.archived:
            return 410, {}, "channel_is_archived"
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {}, "invalid_payload"
        if not isinstance(body, dict):
            return 400, {}, "invalid_payload"
        text, blocks = body.get("text"), body.get("blocks")
        if not text and not blocks and not body.get("attachments"):
            return 400, {}, "no_text"
        if text is not None and (not isinstance(text, str) or len(text) > LIMITS["text"]):
            return 400, {}, "invalid_payload"
        if blocks is not None and not _blocks_ok(blocks):
            return 400, {}, "invalid_blocks"
        if not self._admit(hook):
            return 429, {"Retry-After": str(self.retry_after)}, "rate_limited"
        self.received.append(body)
        return 200, {}, "ok"

    def _admit(self, hook: str) -> bool:
        """Sliding windows per hook; a rejected request does not count."""
        windows = self._sent.setdefault(hook, [SlidingWindow(count, seconds) for count, seconds in self.windows])
        return admit_all(windows, time.monotonic())


def _text_ok(obj: object, limit: int, types: tuple[str, ...] = ("plain_text", "mrkdwn")) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") in types
        and isinstance(obj.get("text"), str)
        and 1 <= len(obj["text"]) <= limit
    )


def _blocks_ok(blocks: object) -> bool:
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= LIMITS["blocks"]:
        return False
    for block in blocks:
        if not isinstance(block, dict):
            return False
        kind = block.get("type")
        if kind == "header":
            if not _text_ok(block.get("text"), LIMITS["header"], ("plain_text",)):
                return False
        elif kind == "section":
            if not _text_ok(block.get("text"), LIMITS["section"]):
                return False
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= LIMITS["elements"]:
                return False
            for element in elements:
                if not isinstance(element, dict) or element.get("type") != "button":
                    return False
                if not _text_ok(element.get("text"), LIMITS["button"], ("plain_text",)):
                    return False
                url = element.get("url")
                if url is not None and (not isinstance(url, str) or len(url) > LIMITS["url"]):
                    return False
                if element.get("style") not in (None, "primary", "danger"):
                    return False
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                return False
            if not all(_text_ok(e, LIMITS["section"]) for e in elements):
                return False
        elif kind != "divider":
            return False
    return True


def _visible(body: dict) -> str:
    texts = [block["text"]["text"] for block in body.get("blocks") or [] if isinstance(block.get("text"), dict)]
    return "\n".join(texts) or str(body.get("text", ""))
