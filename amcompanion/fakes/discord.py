"""A local Discord webhook endpoint that checks what discord.com checks and answers as it does.

It checks the webhook id (404 code 10015) and token (401 code 50027), the JSON (400 code 50109), an empty
message (400 code 50006), the field limits (content 2000, 10 embeds, title 256, description 4096, 25 fields
of name 256 / value 1024, footer 2048, author 256, 6000 in all embeds; embed and avatar URLs http(s);
`allowed_mentions`) with the nested `errors` tree of 400 code 50035, and a per-webhook bucket answered with
the real 429 body (`retry_after` in seconds, `global`) and headers (Retry-After, X-RateLimit-*), which every
answer carries. `?wait=true` gets 200 with the created message, else 204. It can be scripted to answer
anything once (a 5xx, a 429) or to answer late.
"""

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.window import SlidingWindow

WEBHOOK_ID = "1234567890123456789"
WEBHOOK_TOKEN = "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ-_abcdefghijklmnopqrstuvwxyz012345"
CHANNEL_ID = "987654321098765432"


def _max_length(limit: int) -> dict:
    return {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}]}


def _error(code: str, message: str) -> dict:
    return {"_errors": [{"code": code, "message": message}]}


def _url_error(value: object) -> dict | None:
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https"):
        return _error(
            "URL_TYPE_INVALID_SCHEME",
            f"Scheme \"{parts.scheme}\" is not supported. Scheme must be one of ('http', 'https').",
        )
    if not parts.netloc:
        return _error("URL_TYPE_INVALID_URL", "Not a well formed URL.")
    return None


def form_errors(body: dict) -> dict:
    """Discord's `errors` tree for a message body, empty when the body is valid."""
    errors: dict = {}
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        errors["content"] = _error("BASE_TYPE_STRING", "Must be a string.")
    elif isinstance(content, str) and len(content) > 2000:
        errors["content"] = _max_length(2000)
    if "username" in body:
        username = str(body["username"])
        if not 1 <= len(username) <= 80:
            errors["username"] = _error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 80 in length.")
        elif "discord" in username.lower() or "clyde" in username.lower():
            errors["username"] = _error("USERNAME_INVALID_CONTAINS", 'Username cannot contain "discord"')
    if "avatar_url" in body and (problem := _url_error(body["avatar_url"])):
        errors["avatar_url"] = problem
    embeds = body.get("embeds", [])
    if not isinstance(embeds, list):
        errors["embeds"] = _error("BASE_TYPE_ARRAY", "Must be an array.")
        return errors
    if len(embeds) > 10:
        errors["embeds"] = _error("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        return errors
    total = 0
    for index, embed in enumerate(embeds):
        problems: dict = {}
        if not isinstance(embed, dict):
            errors.setdefault("embeds", {})[str(index)] = _error(
                "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType"
            )
            continue
        for key, limit in (("title", 256), ("description", 4096)):
            value = embed.get(key)
            if value is not None:
                if not isinstance(value, str):
                    problems[key] = _error("BASE_TYPE_STRING", "Must be a string.")
                    continue
                total += len(value)
                if len(value) > limit:
                    problems[key] = _max_length(limit)
        if "url" in embed and (problem := _url_error(embed["url"])):
            problems["url"] = problem
        color = embed.get("color")
        if color is not None and (not isinstance(color, int) or not 0 <= color <= 0xFFFFFF):
            problems["color"] = _error("NUMBER_TYPE_MAX", "int value should be less than or equal to 16777215.")
        fields = embed.get("fields", [])
        if len(fields) > 25:
            problems["fields"] = _error("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for number, item in enumerate(fields[:25]):
            for key, limit in (("name", 256), ("value", 1024)):
                value = str(item.get(key, ""))
                total += len(value)
                if not value:
                    problems.setdefault("fields", {}).setdefault(str(number), {})[key] = _error(
                        "BASE_TYPE_REQUIRED", "This field is required"
                    )
                elif len(value) > limit:
                    problems.setdefault("fields", {}).setdefault(str(number), {})[key] = _max_length(limit)
        for outer, inner, limit in (("footer", "text", 2048), ("author", "name", 256)):
            value = str((embed.get(outer) or {}).get(inner, ""))
            total += len(value)
            if len(value) > limit:
                problems[outer] = {inner: _max_length(limit)}
        if problems:
            errors.setdefault("embeds", {})[str(index)] = problems
    if total > 6000 and "embeds" not in errors:
        errors["embeds"] = _error("MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    mentions = body.get("allowed_mentions")
    if mentions is not None:
        parse = mentions.get("parse", [])
        if any(kind not in ("users", "roles", "everyone") for kind in parse):
            errors["allowed_mentions"] = {
                "parse": _error("BASE_TYPE_CHOICES", "Value must be one of {'users', 'roles', 'everyone'}.")
            }
        elif "users" in parse and mentions.get("users"):
            errors["allowed_mentions"] = _error(
                "SET_TYPE_ALREADY_CONTAINS_VALUE", 'parse:["users"] and users: [ids...] are mutually exclusive.'
            )
    return errors


@dataclass
class Answer:
    status: int
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeDiscord:
    """One webhook. `received` holds the accepted bodies, `rejected` every (status, code) it answered with an
    error, `queries` the query string of every request."""

    webhook_id: str = WEBHOOK_ID
    token: str = WEBHOOK_TOKEN
    bucket_limit: int = 30  # requests per window for this webhook (Discord advertises its own in headers)
    window_s: float = 60.0
    now: Callable[[], float] = time.monotonic  # the fake's clock (tests pass a virtual one)
    answers: list[Answer] = field(default_factory=list)  # scripted answers, one per request
    delays: list[float] = field(default_factory=list)  # seconds to wait before answering, one per request
    received: list[dict] = field(default_factory=list)
    rejected: list[tuple[int, int | None]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    _window: SlidingWindow = field(init=False)

    def __post_init__(self) -> None:
        self._window = SlidingWindow(self.bucket_limit, self.window_s)

    @property
    def path(self) -> str:
        return f"/api/webhooks/{self.webhook_id}/{self.token}"

    def shown(self) -> list[Shown]:
        """Accepted messages as the channel shows them: the content, then each embed's title and description."""
        return [
            Shown(
                "the channel",
                "\n".join(
                    [body.get("content") or ""]
                    + [f"{e.get('title', '')}\n{e.get('description', '')}" for e in body.get("embeds", [])]
                ).strip(),
            )
            for body in self.received
        ]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/webhooks/{id}/{token}", self.handle)
        app.router.add_post(r"/api/v{version:\d+}/webhooks/{id}/{token}", self.handle)
        return app

    def _bucket(self) -> tuple[dict[str, str], float | None]:
        """This request counted in the bucket: the rate-limit headers, and the wait when it is over the limit."""
        now = self.now()
        over = self._window.wait(now)
        wait = round(over, 3) if over else None
        if not over:
            self._window.record(now)
        reset_after = self._window.reset_after(now)
        headers = {
            "X-RateLimit-Bucket": "3f5d1c8a2b7e9d04",
            "X-RateLimit-Limit": str(self.bucket_limit),
            "X-RateLimit-Remaining": str(self._window.remaining(now)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        }
        return headers, wait

    def error(self, status: int, body: dict, headers: dict[str, str] | None = None) -> web.Response:
        self.rejected.append((status, body.get("code")))
        return web.json_response(body, status=status, headers=headers)

    async def handle(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        if request.match_info["id"] != self.webhook_id:
            return self.error(404, {"message": "Unknown Webhook", "code": 10015})
        if request.match_info["token"] != self.token:
            return self.error(401, {"message": "Invalid Webhook Token", "code": 50027})
        headers, wait = self._bucket()
        if self.answers:
            answer = self.answers.pop(0)
            if answer.status >= 400:
                self.rejected.append((answer.status, (answer.body or {}).get("code")))
            if answer.body is None:
                return web.Response(status=answer.status, headers={**headers, **answer.headers})
            return web.json_response(answer.body, status=answer.status, headers={**headers, **answer.headers})
        if wait is not None:
            headers |= {"Retry-After": str(math.ceil(wait)), "X-RateLimit-Scope": "shared"}
            body = {"message": "You are being rate limited.", "retry_after": wait, "global": False}
            self.rejected.append((429, None))
            return web.json_response(body, status=429, headers=headers)
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, {"message": "The request body contains invalid JSON.", "code": 50109}, headers)
        if not isinstance(body, dict):
            return self.error(400, {"message": "Invalid Form Body", "code": 50035, "errors": {}}, headers)
        errors = form_errors(body)
        if errors:
            return self.error(400, {"message": "Invalid Form Body", "code": 50035, "errors": errors}, headers)
        if not str(body.get("content") or "").strip() and not body.get("embeds"):
            return self.error(400, {"message": "Cannot send an empty message", "code": 50006}, headers)
        self.received.append(body)
        if request.query.get("wait", "").lower() not in ("true", "1"):
            return web.Response(status=204, headers=headers)
        message = {
            "id": str(1300000000000000000 + len(self.received)),
            "type": 0,
            "content": body.get("content", ""),
            "channel_id": CHANNEL_ID,
            "author": {"id": self.webhook_id, "username": body.get("username", "Alerts"), "bot": True},
            "embeds": [{**embed, "type": "rich"} for embed in body.get("embeds", [])],
            "mentions": [],
            "webhook_id": self.webhook_id,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime()),
        }
        return web.json_response(message, headers=headers)
