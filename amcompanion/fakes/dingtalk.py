"""A stand-in for DingTalk's custom robot endpoint (`POST /robot/send?access_token=…`), per CHANNELS.md §3.

It checks what DingTalk checks, in its own code (not the channel's): the token, POST and a JSON body, the
signature and its one-hour timestamp window when the robot has a secret, the keyword rule when it has
keywords, the message type and fields, the 20,000-byte body limit and the 20-per-minute limit (after which the
robot is throttled for 10 minutes). Every answer is HTTP 200 with `errcode`, as DingTalk's are. Tests can
script answers (a 5xx, an errcode, a delay) that replace the next requests' normal handling.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from amcompanion.fakes.robot import Answer, ErrcodeRecord, play
from amcompanion.fakes.window import SlidingWindow

BODY_LIMIT = 20_000
PER_MINUTE = 20
THROTTLE_S = 600.0
WINDOW_MS = 3_600_000
MSGTYPES = {"text", "markdown", "link", "actionCard", "feedCard"}

SIGN_MISMATCH = {
    "errcode": 310000,
    "errmsg": "description:机器人发送签名不匹配;solution:请确认签名和生成签名的时间戳必须都放在调用的网址中;"
    "link:请参考本接口对应的开发者文档;",
}
BAD_TIMESTAMP = {"errcode": 310000, "errmsg": "invalid timestamp"}
NO_KEYWORD = {
    "errcode": 310000,
    "errmsg": "keywords not in content, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
}
TOO_FAST = {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
TOO_LARGE = {"errcode": 460101, "errmsg": "description: body 大小不合法;solution:请保持大小在 20000bytes 以内;"}
NO_TOKEN = {"errcode": 300005, "errmsg": "token is not exist"}
BUSY = {"errcode": -1, "errmsg": "系统繁忙"}


@dataclass
class Received:
    body: dict
    query: dict[str, str]
    headers: dict[str, str]
    signature_ok: bool | None  # None: the robot has no secret
    answer: dict


class FakeDingTalk(ErrcodeRecord):
    def __init__(
        self,
        token: str = "robot-token",
        secret: str = "",
        keywords: tuple[str, ...] = (),
        per_minute: int = PER_MINUTE,
        now: Callable[[], float] = time.time,
    ):
        self.token, self.secret, self.keywords, self.per_minute, self.now = token, secret, keywords, per_minute, now
        self.script: list[Answer] = []
        self.received: list[Received] = []
        self._window = SlidingWindow(per_minute, 60)
        self._throttled_until = 0.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/robot/send", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        query = dict(request.query)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        signature_ok = self._signature_ok(query) if self.secret else None
        if self.script:
            answer, response = await play(self.script.pop(0))
            self.received.append(Received(body, query, dict(request.headers), signature_ok, answer))
            return response
        answer = self._check(request, raw, body, query, signature_ok)
        self.received.append(Received(body, query, dict(request.headers), signature_ok, answer))
        return web.json_response(answer)

    def _check(
        self, request: web.Request, raw: bytes, body: object, query: dict[str, str], signature_ok: bool | None
    ) -> dict:
        if "access_token" not in query:
            return {"errcode": 40035, "errmsg": "缺少参数 access_token"}
        if query["access_token"] != self.token:
            return NO_TOKEN
        if request.method != "POST":
            return {"errcode": 43002, "errmsg": "需要POST请求"}
        if not request.content_type.startswith("application/json"):
            return {"errcode": 43004, "errmsg": "无效的HTTP HEADER Content-Type"}
        if request.charset not in (None, "utf-8", "UTF-8"):
            return {"errcode": 43004, "errmsg": "charset must be utf-8"}
        if len(raw) > BODY_LIMIT:
            return TOO_LARGE
        if not isinstance(body, dict) or not body:
            return {"errcode": 40035, "errmsg": "缺少参数 json"}
        if self.secret:
            try:
                stamp = int(query.get("timestamp", ""))
            except ValueError:
                return BAD_TIMESTAMP
            if abs(self.now() * 1000 - stamp) > WINDOW_MS:
                return BAD_TIMESTAMP
            if not signature_ok:
                return SIGN_MISMATCH
        msgtype = body.get("msgtype")
        if msgtype not in MSGTYPES:
            return {"errcode": 400105, "errmsg": "不支持的消息类型"}
        content = body.get(msgtype)
        if not isinstance(content, dict):
            return {"errcode": 40035, "errmsg": f"缺少参数 {msgtype}"}
        if msgtype == "markdown" and not (content.get("title") and content.get("text")):
            return {"errcode": 40035, "errmsg": "缺少参数 markdown.title/markdown.text"}
        if msgtype == "text" and not content.get("content"):
            return {"errcode": 40035, "errmsg": "缺少参数 text.content"}
        if msgtype == "actionCard":
            problem = action_card_problem(content)
            if problem:
                return {"errcode": 40035, "errmsg": f"缺少参数 {problem}"}
        if self.keywords:
            words = str(content.get("text") or content.get("content") or json.dumps(content, ensure_ascii=False))
            if not any(k in words for k in self.keywords):
                return NO_KEYWORD
        now = self.now()
        if now < self._throttled_until:
            return TOO_FAST
        if not self._window.admit(now):
            self._throttled_until = now + THROTTLE_S
            return TOO_FAST
        return {"errcode": 0, "errmsg": "ok"}

    def _signature_ok(self, query: dict[str, str]) -> bool:
        """`sign` (already URL-decoded once by the server, as DingTalk's is) against our own HMAC."""
        stamp = query.get("timestamp", "")
        expected = hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(), hashlib.sha256).digest()
        return hmac.compare_digest(query.get("sign", ""), base64.b64encode(expected).decode())


def action_card_problem(card: dict) -> str | None:
    """What an actionCard lacks: a title and markdown text, and either one button (singleTitle + singleURL)
    or a `btns` list of {title, actionURL}; DingTalk's button links are http(s) or dingtalk:// links."""
    if not (card.get("title") and card.get("text")):
        return "actionCard.title/actionCard.text"
    links = ("http://", "https://", "dingtalk://")
    if "singleTitle" in card or "singleURL" in card:
        if not (card.get("singleTitle") and str(card.get("singleURL", "")).startswith(links)):
            return "actionCard.singleTitle/actionCard.singleURL"
        return None
    buttons = card.get("btns")
    if not isinstance(buttons, list) or not buttons:
        return "actionCard.singleURL or actionCard.btns"
    for button in buttons:
        if not (
            isinstance(button, dict) and button.get("title") and str(button.get("actionURL", "")).startswith(links)
        ):
            return "actionCard.btns[].title/actionURL"
    return None
