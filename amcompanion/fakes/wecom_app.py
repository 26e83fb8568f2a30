"""A stand-in for WeCom's (企业微信) application-message API: `GET /cgi-bin/gettoken` and
`POST /cgi-bin/message/send?access_token=…`, written from WeCom's documents, not from amcompanion's channel.

What it checks, as WeCom does:
- gettoken: the corp id (40013) and the app's secret (40001); it issues a token with a lifetime (`expires_in`,
  7200 s unless told otherwise), which it can also expire (42001) or revoke (40014) early, as WeCom may
  ("企业微信可能会出于运营需要，提前使access_token失效");
- message/send: the token (41001 missing, 40014 unknown, 42001 expired), the caller's IP against the app's
  trusted IPs (企业可信IP, 60020) when `trusted_ips` is set (apps created since 2022-06-20 must have some),
  the JSON (40058; in UTF-8: a `\\uXXXX` escape is 40033), `agentid` (41011 missing, 40056 not an integer
  or not this app's), `msgtype` (40008), the content (44004 empty; markdown over 2,048 bytes 45002; a
  textcard's title, description and button text are cut at 128 bytes, 512 bytes and 4 characters, as WeCom
  cuts them; its url is required, http(s), at most 2,048 bytes), the recipients (82001 none given; unknown
  users, departments and tags are listed in `invaliduser`/`invalidparty`/`invalidtag` and skipped, members
  without a licence (`unlicensed`) in `unlicenseduser`, all of them skipped is 81013), and the send rates:
  30 messages a minute and 1,000 an hour per member, and the app's daily quota of 200 person-messages (人次)
  per seat.

WeCom's documents say messages over a member's rate are dropped ("超过部分会被丢弃不下发") without naming a
code; this fake drops those members silently from a message that still reaches someone, and answers 45009
("api freq out of limit", WeCom's code for a call over its limit) when the message would reach nobody.
Errors carry WeCom's hint, the caller's IP and the help link in `errmsg`. `script` answers the next
message/send calls before any check (a 5xx, an errcode, a delay).

Sources: developer.work.weixin.qq.com/document/path/91039 (gettoken), /path/90236 (message/send, message
types, rates), /path/90313 (error codes).
"""

import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.robot import Answer, ErrcodeRecord, play
from amcompanion.fakes.window import SlidingWindow, admit_all

CORP_ID = "ww7e42f0c3b1d5a9e2"
CORP_SECRET = "Qv3kZt9mX2pL8sR4nW6yB1cD5fG7hJ0aE3uI9oK2xVw"
AGENT_ID = 1000002
TOKEN_LIFETIME = 7200
MARKDOWN_BYTES = 2048
TITLE_BYTES, DESCRIPTION_BYTES, URL_BYTES, BUTTON_CHARS = 128, 512, 2048, 4
MEMBER_WINDOWS = ((30, 60.0), (1000, 3600.0))  # per app and member
QUOTA_PER_SEAT = 200  # person-messages a day per seat of the company's account
MSGTYPES = {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown"}
MSGTYPES |= {"miniprogram_notice", "template_card"}
HELP = "https://open.work.weixin.qq.com/devtool/query?e="
_ESCAPED = re.compile(rb"(?<!\\)\\u[0-9a-fA-F]{4}")  # a \uXXXX escape in the JSON (40033)


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    body: dict
    answer: dict
    raw: bytes = b""
    content_type: str = ""


@dataclass
class Delivered:
    """What reached someone: the message and who got it."""

    body: dict
    users: list[str]
    parties: list[str]
    tags: list[str]


@dataclass
class FakeWeComApp(ErrcodeRecord):
    corp_id: str = CORP_ID
    corp_secret: str = CORP_SECRET
    agent_id: int = AGENT_ID
    users: set[str] | None = None  # the members the app can see (None: any user id); WeCom ids ignore case
    parties: dict[str, list[str]] = field(default_factory=dict)  # department id → its members
    tags: dict[str, list[str]] = field(default_factory=dict)  # tag id → its members
    unlicensed: set[str] = field(default_factory=set)  # members without the app's account licence (接口许可)
    trusted_ips: set[str] | None = None  # the app's 企业可信IP; None: not checked (an app older than 2022-06-20)
    token_lifetime: float = TOKEN_LIFETIME
    seats: int = 200  # the company's account limit (账号上限数), for the daily quota
    now: Callable[[], float] = time.monotonic
    script: list[Answer] = field(default_factory=list)  # answers to the next message/send calls, before any check
    received: list[Received] = field(default_factory=list)  # every message/send call and its answer
    token_requests: list[Received] = field(default_factory=list)  # every gettoken call and its answer
    delivered: list[Delivered] = field(default_factory=list)
    dropped: list[tuple[str, dict]] = field(default_factory=list)  # (member, body) over the member's rate
    _tokens: dict[str, float] = field(default_factory=dict)  # token → when it expires
    _member_windows: dict[str, list[SlidingWindow]] = field(default_factory=dict)
    _quota: SlidingWindow | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/cgi-bin/gettoken", self.gettoken)
        app.router.add_route("*", "/cgi-bin/message/send", self.send)
        return app

    def expire(self, token: str | None = None) -> None:
        """End a token's (or every token's) life now, as if its time were up: WeCom then answers 42001."""
        for issued in [token] if token else list(self._tokens):
            self._tokens[issued] = self.now()

    def revoke(self, token: str | None = None) -> None:
        """Invalidate a token (or every token) early: WeCom then answers 40014."""
        for issued in [token] if token else list(self._tokens):
            self._tokens.pop(issued, None)

    def shown(self) -> list[Shown]:
        return [Shown(_audience(d), _visible(d.body)) for d in self.delivered]

    async def gettoken(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        answer = _with_hint(self._issue(query), request, self.now())
        self.token_requests.append(Received(request.method, request.path, query, {}, answer))
        return web.json_response(answer)

    def _issue(self, query: dict[str, str]) -> dict:
        if not query.get("corpid"):
            return {"errcode": 41002, "errmsg": "corpid missing"}
        if not query.get("corpsecret"):
            return {"errcode": 41004, "errmsg": "corpsecret missing"}
        if query["corpid"] != self.corp_id:
            return {"errcode": 40013, "errmsg": "invalid corpid"}
        if query["corpsecret"] != self.corp_secret:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        token = secrets.token_urlsafe(96)
        self._tokens[token] = self.now() + self.token_lifetime
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": int(self.token_lifetime)}

    async def send(self, request: web.Request) -> web.Response:
        raw = await request.read()
        query = dict(request.query)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = body if isinstance(body, dict) else {}
        if self.script:
            answer, response = await play(self.script.pop(0))
            self.received.append(Received(request.method, request.path, query, record, answer))
            return response
        answer = _with_hint(self._take(request, query, raw, body), request, self.now())
        self.received.append(Received(request.method, request.path, query, record, answer, raw, request.content_type))
        return web.json_response(answer)

    def _take(self, request: web.Request, query: dict[str, str], raw: bytes, body: object) -> dict:
        token = query.get("access_token")
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        if token not in self._tokens:
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if self.now() >= self._tokens[token]:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        if self.trusted_ips is not None and request.remote not in self.trusted_ips:
            return {"errcode": 60020, "errmsg": "not allow to access from your ip"}
        if request.method != "POST" or not isinstance(body, dict):
            return {"errcode": 40058, "errmsg": "invalid Request Parameter, Warning: wrong json format."}
        if _ESCAPED.search(raw):
            return {
                "errcode": 40033,
                "errmsg": "invalid charset. please check your request, if include \\uxxxx will create fail!",
            }
        if "agentid" not in body:
            return {"errcode": 41011, "errmsg": "missing agentid"}
        agent = body["agentid"]
        if not isinstance(agent, int) or isinstance(agent, bool) or agent != self.agent_id:
            return {"errcode": 40056, "errmsg": "invalid agentid"}
        msgtype = body.get("msgtype")
        if msgtype not in MSGTYPES:
            return {"errcode": 40008, "errmsg": "invalid message type"}
        problem = _content_problem(str(msgtype), body.get(str(msgtype)))
        if problem:
            return problem
        return self._deliver(body)

    def _deliver(self, body: dict) -> dict:
        """Who the message reaches, WeCom's answer about those it could not, and the send rates."""
        wanted = {key: _ids(body.get(key)) for key in ("touser", "toparty", "totag")}
        if not any(wanted.values()):
            return {"errcode": 82001, "errmsg": "All touser & toparty & totag invalid"}
        known = {u.lower() for u in self.users} if self.users is not None else None
        users = [u for u in wanted["touser"] if known is None or u.lower() in known]
        parties = [p for p in wanted["toparty"] if p in self.parties]
        tags = [t for t in wanted["totag"] if t in self.tags]
        invalid = {
            "invaliduser": "|".join(u.lower() for u in wanted["touser"] if u not in users),
            "invalidparty": "|".join(p for p in wanted["toparty"] if p not in parties),
            "invalidtag": "|".join(t for t in wanted["totag"] if t not in tags),
        }
        if not (users or parties or tags):
            return {"errcode": 81013, "errmsg": "user & party & tag all invalid"}
        members = _unique(
            [*users, *(m for p in parties for m in self.parties[p]), *(m for t in tags for m in self.tags[t])]
        )
        unlicensed = {u.lower() for u in self.unlicensed}
        if unlicensed:  # skipped and listed (lower case, as WeCom lists them); nobody left is 81013
            invalid["unlicenseduser"] = "|".join(m.lower() for m in members if m.lower() in unlicensed)
            members = [m for m in members if m.lower() not in unlicensed]
            if not members:
                return {"errcode": 81013, "errmsg": "user & party & tag all invalid"}
        now = self.now()
        if self._quota is None:
            self._quota = SlidingWindow(QUOTA_PER_SEAT * self.seats, 86400.0)
        if self._quota.remaining(now) < len(members):
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        within = [m for m in members if admit_all(self._windows(m), now)]
        for member in members:
            if member not in within:
                self.dropped.append((member, body))
        if members and not within:
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        for _ in within:
            self._quota.record(now)
        self.delivered.append(Delivered(_cut(body), users, parties, tags))
        return {"errcode": 0, "errmsg": "ok", **{k: v for k, v in invalid.items() if v}, "msgid": secrets.token_hex(16)}

    def _windows(self, member: str) -> list[SlidingWindow]:
        key = member.lower()
        if key not in self._member_windows:
            self._member_windows[key] = [SlidingWindow(count, seconds) for count, seconds in MEMBER_WINDOWS]
        return self._member_windows[key]


def _content_problem(msgtype: str, part: object) -> dict | None:
    """Why WeCom refuses the message's content, for the two types faked beyond their name."""
    if msgtype not in ("markdown", "textcard"):
        return None
    if not isinstance(part, dict):
        return {"errcode": 40058, "errmsg": f"invalid Request Parameter: {msgtype}"}
    if msgtype == "markdown":
        content = part.get("content")
        if not isinstance(content, str) or not content:
            return {"errcode": 44004, "errmsg": "empty content"}
        if len(content.encode()) > MARKDOWN_BYTES:
            return {"errcode": 45002, "errmsg": f"markdown.content exceed max length {MARKDOWN_BYTES}"}
        return None
    if not part.get("title"):
        return {"errcode": 41016, "errmsg": "missing title"}
    if not part.get("description"):
        return {"errcode": 44004, "errmsg": "empty content"}
    url = part.get("url")
    if not isinstance(url, str) or not url:
        return {"errcode": 41010, "errmsg": "missing url"}
    if not url.startswith(("http://", "https://")):
        return {"errcode": 45034, "errmsg": "url must start with http:// or https://"}
    if len(url.encode()) > URL_BYTES:
        return {"errcode": 40039, "errmsg": "invalid url size"}
    return None


def _cut(body: dict) -> dict:
    """The message as members see it: WeCom cuts a textcard's fields to its limits rather than refuse them."""
    if body.get("msgtype") != "textcard":
        return body
    card = dict(body["textcard"])
    card["title"] = _bytes(str(card["title"]), TITLE_BYTES)
    card["description"] = _bytes(str(card["description"]), DESCRIPTION_BYTES)
    card["btntxt"] = str(card.get("btntxt") or "详情")[:BUTTON_CHARS]
    return {**body, "textcard": card}


def _bytes(text: str, limit: int) -> str:
    return text.encode()[:limit].decode("utf-8", "ignore")


def _ids(value: object) -> list[str]:
    """A `|`-separated id list as WeCom reads it (spaces around the bars allowed)."""
    return [part.strip() for part in value.split("|") if part.strip()] if isinstance(value, str) else []


def _unique(members: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(members))


def _with_hint(answer: dict, request: web.Request, now: float) -> dict:
    """An error's errmsg as WeCom words it: the message, a request id, the caller's IP and the help link."""
    if answer["errcode"] == 0:
        return answer
    hint = f"hint: [{int(now)}_fake_{secrets.token_hex(4)}], from ip: {request.remote}"
    return {**answer, "errmsg": f"{answer['errmsg']}, {hint}, more info at {HELP}{answer['errcode']}"}


def _audience(delivered: Delivered) -> str:
    names = [*delivered.users, *(f"department {p}" for p in delivered.parties), *(f"tag {t}" for t in delivered.tags)]
    return ", ".join(names)


def _visible(body: dict) -> str:
    if body.get("msgtype") == "textcard":
        card = body["textcard"]
        description = str(card["description"]).replace("<br>", "\n")
        return f"{card['title']}\n{description}\n[{card['btntxt']}]({card['url']})"
    part = body.get(str(body.get("msgtype")))
    return str(part.get("content", "")) if isinstance(part, dict) else ""
