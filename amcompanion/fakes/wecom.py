"""A stand-in for the WeCom group robot endpoint (`POST /cgi-bin/webhook/send?key=…`), per CHANNELS.md §4.

It checks what WeCom checks, in its own code: the key, a JSON body, the message type, non-empty content within
the type's byte limit (text 2048, markdown 4096), and 20 calls a minute per robot, failed ones counted too.
Every answer is HTTP 200 with `errcode`, the errors echoing a hint and the caller's IP as WeCom's do. Tests can
script answers (a 5xx, an errcode, a delay) that replace the next requests' normal handling.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from amcompanion.fakes.robot import Answer, ErrcodeRecord, play
from amcompanion.fakes.window import SlidingWindow

PER_MINUTE = 20
LIMITS = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}
MSGTYPES = {"text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card"}
BUSY = {"errcode": -1, "errmsg": "system busy"}
RATE_LIMITED = {"errcode": 45009, "errmsg": "api freq out of limit"}


@dataclass
class Received:
    body: dict
    query: dict[str, str]
    answer: dict


class FakeWeCom(ErrcodeRecord):
    def __init__(
        self,
        key: str = "693a91f6-0000-4bc4-97a0-0ec2f1fa5aaa",
        per_minute: int = PER_MINUTE,
        now: Callable[[], float] = time.time,
    ):
        self.key, self.per_minute, self.now = key, per_minute, now
        self.script: list[Answer] = []
        self.received: list[Received] = []
        self._window = SlidingWindow(per_minute, 60)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/cgi-bin/webhook/send", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        query = dict(request.query)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if self.script:
            answer, response = await play(self.script.pop(0))
            self.received.append(Received(body if isinstance(body, dict) else {}, query, answer))
            return response
        answer = self._check(request, body, query)
        if answer["errcode"] != 0:
            hint = f"hint: [{int(self.now())}_fake], from ip: {request.remote}, more info at "
            answer = {
                **answer,
                "errmsg": f"{answer['errmsg']}, {hint}https://open.work.weixin.qq.com/devtool/query?e={answer['errcode']}",
            }
        self.received.append(Received(body if isinstance(body, dict) else {}, query, answer))
        return web.json_response(answer)

    def _check(self, request: web.Request, body: object, query: dict[str, str]) -> dict:
        if query.get("key") != self.key:
            return {"errcode": 93000, "errmsg": "invalid webhook url"}
        now = self.now()
        if not self._window.admit(now):  # counted whether or not the message is good
            return RATE_LIMITED
        if request.method != "POST":
            return {"errcode": 40035, "errmsg": "invalid Request Parameter"}
        if not isinstance(body, dict):
            return {"errcode": 40035, "errmsg": "invalid Request Parameter, Warning: wrong json format."}
        msgtype = body.get("msgtype")
        if msgtype not in MSGTYPES:
            return {"errcode": 40008, "errmsg": "Warning: wrong json format. invalid message type"}
        if msgtype not in LIMITS:
            return {"errcode": 0, "errmsg": "ok"}  # other types are not faked beyond their name
        part = body.get(msgtype)
        content = part.get("content") if isinstance(part, dict) else None
        if not isinstance(content, str) or not content:
            return {"errcode": 44004, "errmsg": "empty content"}
        if len(content.encode()) > LIMITS[msgtype]:
            return {"errcode": 45002, "errmsg": f"{msgtype}.content exceed max length {LIMITS[msgtype]}"}
        for list_name in ("mentioned_list", "mentioned_mobile_list"):
            if list_name in part and not (
                isinstance(part[list_name], list) and all(isinstance(v, str) for v in part[list_name])
            ):
                return {"errcode": 40035, "errmsg": f"invalid Request Parameter: {list_name}"}
        return {"errcode": 0, "errmsg": "ok"}
