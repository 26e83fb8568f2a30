"""A fake Feishu / Lark open platform for one custom app (自建应用) with a bot, on loopback: the tenant access token,
the send-message API, and the card callback Feishu sends when someone presses a card's button.

Written from Feishu's documents, not from amcompanion's channel:
- `POST /open-apis/auth/v3/tenant_access_token/internal` takes `{app_id, app_secret}` and answers
  `{code: 0, tenant_access_token: "t-…", expire}`; a token lives two hours, and asking again with less than 30
  minutes left gives a new one (the old one stays valid). A wrong app_id is 10003, a wrong secret 10014.
- `POST /open-apis/im/v1/messages?receive_id_type=…` wants `Authorization: Bearer <tenant token>` (none: 99991661;
  unknown, expired or revoked: 99991663), a receive_id of that type (an open_id or user_id the app can reach, a
  chat the bot is in: 230002 when it is not, 230013 for a user outside the app's availability range), and for
  `msg_type: interactive` a `content` that is a JSON *string* of a card the fake can read (JSON 1.0, or 2.0 with
  `schema`); the request body within 30 KB (230025). Limits: 1000/min and 50/s per app (HTTP 429, 99991400, with
  `x-ogw-ratelimit-reset`), 5/s per user or chat (230020). IM errors come with HTTP 400 and a non-zero `code`.
- `click()` is a member pressing a callback button: the `card.action.trigger` callback (schema 2.0) POSTed to the
  app's callback address, encrypted (AES-256-CBC, key SHA-256 of the Encrypt Key, a random IV before the cipher
  text, PKCS7, base64) and signed (`X-Lark-Signature` = hex SHA-256 of timestamp + nonce + Encrypt Key + body)
  when the app has an Encrypt Key, else in plain JSON with the Verification Token in `header.token`. The answer
  must come within 3 seconds; its `card` (type `raw`) then replaces the message's card, for everyone when the card
  is shared (`config.update_multi`), else only as the presser sees it, and never across card schemas (200830).
  `click(legacy=True)`: the older message-card callback (消息卡片回传交互（旧）, card.action.trigger_v1): open_id,
  user_id, open_message_id, tenant_key, the card's update `token` and `action` at the top level, signed with hex
  SHA-1 of timestamp + nonce + Verification Token + body (the SDKs' card handlers), answered with the card itself.

Sources: open.feishu.cn/document/server-docs/authentication-management/access-token/tenant_access_token_internal,
…/server-docs/im-v1/message/create (and its error codes), …/server-docs/api-call-guide/frequency-control,
…/event-subscription-guide/callback-subscription/receive-and-handle-callbacks (decryption, the "test key"
example, the signature), …/feishu-cards/card-callback-communication and …/feishu-cards/card-json-structure.
"""

import base64
import hashlib
import json
import math
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from amcompanion.fakes import Shown
from amcompanion.fakes.feishu import COLOURS
from amcompanion.fakes.window import SlidingWindow, admit_all

APP_ID = "cli_a1b2c3d4e5f60718"
APP_SECRET = "Xq3ZkP9bL0sVt7Wm2NcR4yHd8JfG6aEu"
TENANT_KEY = "736588c9260f175d"
TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
MESSAGES_PATH = "/open-apis/im/v1/messages"
TOKEN_LIFETIME_S = 7200
TOKEN_RENEWAL_S = 1800  # with less than this left, asking again gives a new token
BODY_LIMIT = 30 * 1024  # "卡片及富文本消息请求体最大不能超过30KB"
ANSWER_WITHIN_S = 3.0  # a card callback not answered in time fails in the client
RECEIVE_ID_TYPES = ("open_id", "user_id", "union_id", "email", "chat_id")
ELEMENT_TAGS = {"div", "markdown", "hr", "action", "note", "img", "column_set"}
TEXT_TAGS = {"plain_text", "lark_md"}
BUTTON_TYPES = {"default", "primary", "danger", "text", "primary_text", "danger_text", "laser"}


def error(code: int, msg: str, status: int = 400) -> tuple[int, dict]:
    return status, {"code": code, "msg": msg}


def encrypt(encrypt_key: str, plain: str) -> str:
    """Feishu's event encryption: AES-256-CBC with the SHA-256 of the Encrypt Key, PKCS7, a random IV first, base64."""
    iv = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(hashlib.sha256(encrypt_key.encode()).digest()), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def decrypt(encrypt_key: str, encrypted: str) -> str:
    """The inverse, as the documents' decryption examples do it (raises ValueError on anything malformed)."""
    data = base64.b64decode(encrypted)
    if len(data) < 32 or len(data) % 16:
        raise ValueError("not an encrypted event")
    decryptor = Cipher(algorithms.AES(hashlib.sha256(encrypt_key.encode()).digest()), modes.CBC(data[:16])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    padded = decryptor.update(data[16:]) + decryptor.finalize()
    return (unpadder.update(padded) + unpadder.finalize()).decode()


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def legacy_signature(timestamp: str, nonce: str, verification_token: str, body: bytes) -> str:
    """The older message-card callback's: SHA-1 over timestamp + nonce + Verification Token + body."""
    return hashlib.sha1((timestamp + nonce + verification_token).encode() + body).hexdigest()


@dataclass(frozen=True)
class FeishuUser:
    """A member of the tenant as the app sees them."""

    open_id: str
    user_id: str = ""
    name: str = ""
    available: bool = True  # within the app's availability range (可用范围)


@dataclass(frozen=True)
class Received:
    """One request as the fake got it (the headers that matter: Content-Type and Authorization)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: object


@dataclass
class Posted:
    """A message the bot sent, its card as it stands now (a click's answer may have replaced it)."""

    message_id: str
    receive_id_type: str
    receive_id: str
    chat_id: str
    card: dict


@dataclass(frozen=True)
class Pressed:
    """One button press: what the app answered, how fast, and whether the answer's card was applied."""

    message_id: str
    open_id: str
    status: int
    answer: dict
    seconds: float
    applied: bool
    problem: str = ""  # why the answer did not update the card, when it carried one


@dataclass
class FakeFeishuApp:
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    verification_token: str = ""
    encrypt_key: str = ""
    users: list[FeishuUser] = field(default_factory=list)
    chats: set[str] = field(default_factory=set)  # the chats (oc_…) the bot is in
    token_lifetime_s: int = TOKEN_LIFETIME_S
    app_windows: list[tuple[int, float]] = field(default_factory=lambda: [(50, 1.0), (1000, 60.0)])
    receiver_window: tuple[int, float] = (5, 1.0)  # per user or chat
    answer_within_s: float = ANSWER_WITHIN_S
    script: list[tuple[int, dict]] = field(default_factory=list)  # send answers given (in turn) before any check
    now: Callable[[], float] = time.time
    received: list[Received] = field(default_factory=list)
    messages: dict[str, Posted] = field(default_factory=dict)  # sent, by message_id, in order
    personal: dict[tuple[str, str], dict] = field(default_factory=dict)  # (message_id, open_id) → the card they see
    presses: list[Pressed] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # tenant token → when it expires (`now` seconds)
    _app_sent: list[SlidingWindow] = field(default_factory=list)
    _receiver_sent: dict[str, SlidingWindow] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(TOKEN_PATH, self.token_endpoint)
        app.router.add_post(MESSAGES_PATH, self.messages_endpoint)
        return app

    def shown(self) -> list[Shown]:
        """The cards as their readers see them now: title, texts, notes, and the buttons still there."""
        return [Shown(self._who(posted), "\n".join(_visible(posted.card))) for posted in self.messages.values()]

    def pressable(self) -> list[str]:
        """The messages whose callback button is still there for everyone, oldest first (what the demo presses)."""
        return [message_id for message_id, posted in self.messages.items() if _callback_value(posted.card)]

    def revoke(self, token: str) -> None:
        """The token stops working before its time (Feishu may invalidate tokens, e.g. on a secret reset)."""
        self.tokens.pop(token, None)

    @property
    def token_requests(self) -> int:
        return sum(request.path == TOKEN_PATH for request in self.received)

    # -- the token -------------------------------------------------------------------------------------------

    async def token_endpoint(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = self._record(request, raw)
        if not isinstance(body, dict) or body.get("app_id") != self.app_id:
            return web.json_response({"code": 10003, "msg": "invalid param"})
        if body.get("app_secret") != self.app_secret:
            return web.json_response({"code": 10014, "msg": "app secret invalid"})
        now = self.now()
        live = [(token, expires) for token, expires in self.tokens.items() if expires - now >= TOKEN_RENEWAL_S]
        if live:
            token, expires = live[-1]
        else:
            token, expires = "t-" + secrets.token_hex(20), now + self.token_lifetime_s
            self.tokens[token] = expires
        answer = {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": int(expires - now)}
        return web.json_response(answer)

    # -- sending ---------------------------------------------------------------------------------------------

    async def messages_endpoint(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = self._record(request, raw)
        headers: dict[str, str] = {}
        if self.script:
            status, answer = self.script.pop(0)
        else:
            status, answer, headers = self._send(request, raw, body)
        return web.json_response(answer, status=status, headers=headers)

    def _send(self, request: web.Request, raw: bytes, body: object) -> tuple[int, dict, dict[str, str]]:
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            return (
                *error(99991661, "Missing access token for authorization. Please make a request with token attached."),
                {},
            )
        expires = self.tokens.get(authorization.removeprefix("Bearer "))
        if expires is None or expires <= self.now():
            return (
                *error(99991663, "Invalid access token for authorization. Please make a request with token attached."),
                {},
            )
        if not self._app_sent:
            self._app_sent = [SlidingWindow(count, seconds) for count, seconds in self.app_windows]
        if not admit_all(self._app_sent, time.monotonic()):
            reset = math.ceil(max(w.reset_after(time.monotonic()) for w in self._app_sent))
            limit = {"x-ogw-ratelimit-limit": str(self.app_windows[0][0]), "x-ogw-ratelimit-reset": str(reset)}
            return (*error(99991400, "request trigger frequency limit", status=429), limit)
        return (*self._deliver(request.query.get("receive_id_type", ""), raw, body), {})

    def _deliver(self, receive_id_type: str, raw: bytes, body: object) -> tuple[int, dict]:
        if receive_id_type not in RECEIVE_ID_TYPES:
            return error(99992402, "field validation failed: receive_id_type")
        if len(raw) > BODY_LIMIT:
            return error(230025, "The length of the message content reaches its limit.")
        if not isinstance(body, dict) or not isinstance(body.get("receive_id"), str):
            return error(99992402, "field validation failed: receive_id")
        if body.get("msg_type") != "interactive":
            return error(230001, "Your request contains an invalid request parameter: msg_type.")
        content = body.get("content")
        if not isinstance(content, str):  # an object where a JSON string belongs
            return error(99992402, "field validation failed: content must be a string")
        try:
            card = json.loads(content)
        except ValueError:
            return error(230001, "Your request contains an invalid request parameter: content is not JSON.")
        problem = card_problem(card)
        if problem:
            return error(230099, f"Failed to create card content, ext=ErrCode: 200621; ErrMsg: {problem}")
        receive_id = body["receive_id"]
        reached = self._reach(receive_id_type, receive_id)
        if isinstance(reached, tuple):
            return reached
        window = self._receiver_sent.setdefault(reached, SlidingWindow(*self.receiver_window))
        if not window.admit(time.monotonic()):
            return error(230020, "This operation triggers the frequency limit.")
        message_id = "om_" + secrets.token_hex(16)
        self.messages[message_id] = Posted(message_id, receive_id_type, receive_id, reached, card)
        data = {
            "message_id": message_id,
            "msg_type": "interactive",
            "create_time": str(int(self.now() * 1000)),
            "chat_id": reached,
            "sender": {"id": self.app_id, "id_type": "app_id", "sender_type": "app", "tenant_key": TENANT_KEY},
            "body": {"content": content},
        }
        return 200, {"code": 0, "msg": "success", "data": data}

    def _reach(self, receive_id_type: str, receive_id: str) -> str | tuple[int, dict]:
        """The chat the message lands in (a person's: their p2p chat with the bot), or Feishu's refusal."""
        if receive_id_type == "chat_id":
            if receive_id not in self.chats:
                return error(230002, "Bot/User can NOT be out of the chat.")
            return receive_id
        user = None
        if receive_id_type in ("open_id", "user_id"):
            user = next((u for u in self.users if getattr(u, receive_id_type) == receive_id), None)
        if user is None:
            return error(
                230001, f"Your request contains an invalid request parameter: invalid receive_id {receive_id}."
            )
        if not user.available:
            return error(230013, "Bot has NO availability to this user.")
        return f"p2p:{user.open_id}"

    # -- pressing a button -----------------------------------------------------------------------------------

    async def click(
        self,
        session: aiohttp.ClientSession,
        callback_url: str,
        message_id: str,
        open_id: str,
        at: float | None = None,
        legacy: bool = False,
    ) -> tuple[int, dict]:
        """`open_id` presses the first callback button of message `message_id`, at `at` (default: now): the
        callback Feishu sends, POSTed to `callback_url`; its answer is applied as Feishu applies it. `legacy`: the
        older message-card callback (card.action.trigger_v1) instead, as the bot's "message card request URL" gets
        it: the operator's ids at the top level, signed with SHA-1 over the Verification Token, answered with the
        card itself."""
        posted = self.messages[message_id]
        value = _callback_value(self.personal.get((message_id, open_id), posted.card))
        if value is None:
            raise ValueError(f"message {message_id} has no callback button to press")
        user = next((u for u in self.users if u.open_id == open_id), FeishuUser(open_id))
        pressed_at = self.now() if at is None else at
        if legacy:
            return await self._legacy_click(session, callback_url, posted, user, value, pressed_at)
        event = {
            "schema": "2.0",
            "header": {
                "event_id": uuid.uuid4().hex,
                "token": self.verification_token,
                "create_time": str(int(pressed_at * 1000)),
                "event_type": "card.action.trigger",
                "tenant_key": TENANT_KEY,
                "app_id": self.app_id,
            },
            "event": {
                "operator": {"tenant_key": TENANT_KEY, "user_id": user.user_id, "open_id": open_id},
                "token": "c-" + secrets.token_hex(20),  # for a delayed update of the card
                "action": {"value": value, "tag": "button"},
                "host": "im_message",
                "context": {"open_message_id": message_id, "open_chat_id": posted.chat_id},
            },
        }
        return await self._press(session, callback_url, event, pressed_at, posted, open_id, legacy=False)

    async def _legacy_click(
        self, session: aiohttp.ClientSession, url: str, posted: Posted, user: FeishuUser, value: dict, at: float
    ) -> tuple[int, dict]:
        event = {
            "open_id": user.open_id,
            "user_id": user.user_id,
            "open_message_id": posted.message_id,
            "open_chat_id": posted.chat_id,
            "tenant_key": TENANT_KEY,
            "token": "c-" + secrets.token_hex(20),  # the card's update token, not the Verification Token
            "action": {"value": value, "tag": "button"},
        }
        return await self._press(session, url, event, at, posted, user.open_id, legacy=True)

    async def _press(
        self, session: aiohttp.ClientSession, url: str, event: dict, at: float, posted: Posted, open_id: str,
        legacy: bool,
    ) -> tuple[int, dict]:  # fmt: skip
        """Send the callback, time the answer against Feishu's limit, and apply the card it holds: the new callback
        answers {toast, card: {type: raw, data}}, the older one with the card itself."""
        started = time.monotonic()
        status, answer = await self._push(session, url, event, at, legacy=legacy)
        seconds = time.monotonic() - started
        if legacy and ("elements" in answer or "header" in answer or "schema" in answer):
            card: dict | None = {"type": "raw", "data": answer}
        else:
            card = None if legacy else answer.get("card")
        applied, problem = False, ""
        if status != 200:
            problem = f"HTTP {status}"
        elif seconds > self.answer_within_s:
            problem = f"answered after {seconds:.2f}s, over Feishu's {self.answer_within_s:g}s"
        elif card is not None:
            problem = self._update(posted, open_id, card)
            applied = not problem
        self.presses.append(Pressed(posted.message_id, open_id, status, answer, seconds, applied, problem))
        return status, answer

    async def verify_url(self, session: aiohttp.ClientSession, callback_url: str) -> tuple[int, dict]:
        """The console's check of a new callback address: the challenge must come back."""
        event = {"challenge": str(uuid.uuid4()), "token": self.verification_token, "type": "url_verification"}
        return await self._push(session, callback_url, event, self.now())

    async def _push(
        self, session: aiohttp.ClientSession, url: str, event: dict, at: float, legacy: bool = False
    ) -> tuple[int, dict]:
        plain = json.dumps(event, ensure_ascii=False)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        raw = json.dumps({"encrypt": encrypt(self.encrypt_key, plain)}).encode() if self.encrypt_key else plain.encode()
        timestamp, nonce = str(int(at)), secrets.token_hex(8)
        if legacy:  # the older card callback signs with the Verification Token, encrypted or not
            headers |= {
                "X-Lark-Request-Timestamp": timestamp,
                "X-Lark-Request-Nonce": nonce,
                "X-Lark-Signature": legacy_signature(timestamp, nonce, self.verification_token, raw),
            }
        elif self.encrypt_key:
            headers |= {
                "X-Lark-Request-Timestamp": timestamp,
                "X-Lark-Request-Nonce": nonce,
                "X-Lark-Signature": signature(timestamp, nonce, self.encrypt_key, raw),
            }
        try:
            async with session.post(
                url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                status, text = response.status, await response.text()
        except TimeoutError:
            return 0, {}
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        return status, answer if isinstance(answer, dict) else {}

    def _update(self, posted: Posted, open_id: str, update: object) -> str:
        """Replace the card as the answer says; why not, when it cannot."""
        if not isinstance(update, dict) or update.get("type") != "raw" or not isinstance(update.get("data"), dict):
            return "the answer's card is not {type: raw, data: {…}}"
        card = update["data"]
        problem = card_problem(card)
        if problem:
            return problem
        if (card.get("schema") == "2.0") != (posted.card.get("schema") == "2.0"):
            return "200830: a card cannot be updated to another card schema"
        if (posted.card.get("config") or {}).get("update_multi"):
            posted.card = card
        else:  # an exclusive card: only the presser's view changes
            self.personal[(posted.message_id, open_id)] = card
        return ""

    # -- records ---------------------------------------------------------------------------------------------

    def _record(self, request: web.Request, raw: bytes) -> object:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        kept = {k: v for k, v in request.headers.items() if k in ("Content-Type", "Authorization")}
        self.received.append(Received(request.method, request.path, dict(request.query), kept, body))
        return body

    def _who(self, posted: Posted) -> str:
        if posted.receive_id_type == "chat_id":
            return f"the group {posted.receive_id}"
        user = next((u for u in self.users if posted.chat_id == f"p2p:{u.open_id}"), None)
        return (user.name or user.open_id) if user else posted.receive_id


def card_problem(card: object) -> str:
    """Why Feishu would not show `card` (JSON 1.0: header, elements; 2.0: `schema` and `body.elements`), or ""."""
    if not isinstance(card, dict):
        return "the card is not an object"
    if card.get("schema") == "2.0":
        body = card.get("body")
        return (
            ""
            if isinstance(body, dict) and isinstance(body.get("elements"), list)
            else "a 2.0 card needs body.elements"
        )
    header = card.get("header")
    if header is not None:
        if not isinstance(header, dict) or not _text_ok(header.get("title")):
            return "the header needs a title {tag: plain_text, content}"
        if header.get("template", "default") not in COLOURS:
            return f"unknown header template {header.get('template')!r}"
    elements = card.get("elements")
    if not isinstance(elements, list):
        return "the card has no elements"
    for element in elements:
        problem = _element_problem(element)
        if problem:
            return problem
    return ""


def _element_problem(element: object) -> str:
    if not isinstance(element, dict) or element.get("tag") not in ELEMENT_TAGS:
        return f"unknown element {element!r:.60}"
    tag = element["tag"]
    if tag == "markdown" and not isinstance(element.get("content"), str):
        return "a markdown element needs its content"
    if tag == "div" and not _text_ok(element.get("text")):
        return "a div needs a text {tag, content}"
    if tag == "note" and not (isinstance(element.get("elements"), list) and all(map(_text_ok, element["elements"]))):
        return "a note holds texts"
    if tag == "action":
        buttons = element.get("actions")
        if not isinstance(buttons, list) or not buttons:
            return "an action element needs its buttons"
        for button in buttons:
            if not isinstance(button, dict) or button.get("tag") != "button" or not _text_ok(button.get("text")):
                return f"not a button: {button!r:.60}"
            if button.get("type", "default") not in BUTTON_TYPES:
                return f"unknown button type {button.get('type')!r}"
            if "value" in button and not isinstance(button["value"], dict):
                return "200671: a button's value must be an object"
            url = button.get("url")
            if url is not None and not str(url).startswith(("http://", "https://")):
                return f"a button's url must be http(s): {url!r:.60}"
    return ""


def _text_ok(text: object) -> bool:
    return isinstance(text, dict) and text.get("tag") in TEXT_TAGS and isinstance(text.get("content"), str)


def _callback_value(card: dict) -> dict | None:
    """The value of the card's first callback button: 1.0 buttons in action elements, 2.0 ones in the body."""
    if card.get("schema") == "2.0":
        for element in card["body"]["elements"]:
            for behaviour in element.get("behaviors") or [] if element.get("tag") == "button" else []:
                if behaviour.get("type") == "callback" and isinstance(behaviour.get("value"), dict):
                    return behaviour["value"]
        return None
    for element in card.get("elements") or []:
        for button in element.get("actions") or [] if element.get("tag") == "action" else []:
            if isinstance(button.get("value"), dict):
                return button["value"]
    return None


def _visible(card: dict) -> list[str]:
    lines = [card["header"]["title"]["content"]] if card.get("header") else []
    for element in card.get("elements") or []:
        if element["tag"] == "markdown":
            lines.append(element["content"])
        elif element["tag"] == "div":
            lines.append(element["text"]["content"])
        elif element["tag"] == "note":
            lines += [text["content"] for text in element["elements"]]
        elif element["tag"] == "action":
            lines.append(" ".join(f"[{button['text']['content']}]" for button in element["actions"]))
    return lines
