"""Feishu / Lark app bot (a custom app's bot, 自建应用机器人): a card sent with the app's tenant access token, to a
person (their `feishu_open_id`, else `feishu_user_id`) or, when a step names nobody, to the channel's `chat_id`;
and on a single firing alert an Acknowledge button that acknowledges in the chat (the card callback).

The card is the custom bot's (feishu.py: a header red for firing and green for resolved, the template's markdown,
buttons), in card JSON 1.0 with `update_multi`: a shared card, so that the callback's answer updates it for the
whole group and not only for the presser. JSON 1.0 takes both a callback button (`value`) and a link button
(`url`), and the `card.action.trigger` callback answers it as well as a 2.0 card; an update must keep the card's
schema. The Acknowledge button's `value` is `{"action": "ack", "alert_id": …}`; beside it the acknowledgement link
("Open ack page"), for whoever the receiver does not know by their Feishu id (the page asks who they are) and for
an app whose callback is not configured. Cards are cut to keep the whole request within Feishu's 30 KB. Lark
(larksuite.com) is the same API at `base_url: https://open.larksuite.com`.

Tokens: `tenant_access_token/internal` gives one for two hours; it is cached (base.CachedToken) and fetched again
five minutes before it expires, and when Feishu answers that it is not valid (99991661, 99991663, 99991668,
99991671) it is dropped and the message sent once more with a new one, within the same send.

Answers: HTTP 200 with `code` 0 is a delivery; errors come with a non-zero `code` and mostly HTTP 400. Rate limits
retry: 99991400 (the app's 50/s, 1000/min; HTTP 429 with `x-ogw-ratelimit-reset`, honoured), 230020 (5/s per user
or chat) and 11232/11233 (frequency limits), after a second when Feishu names no wait. Bad credentials (10003,
10014), a bot not in the chat (230002), a user outside the app's availability range (230013), an invalid
receive_id (230001), a card Feishu cannot build (230099) or one over the size limit (230025) are permanent; 5xx
retry.

The callback (POST /feishu/card; in the developer console: Events & Callbacks → Callback configuration → "send
callbacks to developer server", subscribe `card.action.trigger`, the new callback, schema 2.0): with an Encrypt Key
the body is `{"encrypt": …}`, AES-256-CBC keyed with SHA-256 of the key, the IV the first 16 bytes, PKCS7, and the
request is signed: `X-Lark-Signature` = hex SHA-256 of `X-Lark-Request-Timestamp` + `X-Lark-Request-Nonce` + the
key + the raw body. Without one the plain body's `header.token` must be the Verification Token (checked too when
both are set). As in the SDKs, a body is decrypted only when it is `{"encrypt": …}`, and signed or not it is
checked as above. A request that does not verify is not this channel's (None); neither is one older or newer than
five minutes (the signed timestamp; unsigned, the header's `create_time`, read in seconds, milliseconds or
microseconds, as the documents' examples differ): Feishu wants a click answered within 3 s, so a stale one is a
replay. `url_verification` echoes its challenge once its token (or, no token set, decryption) checks. The answer
comes within Feishu's 3 s when the receiver's acknowledgement does: a toast, and when it was done the card again
with its buttons gone, its header orange and a note ("Acknowledged by alice"). The channel remembers the cards it
sent (the last 1,000), as the callback does not carry the card; after a restart the card is rebuilt from the alert.

The older card callback (消息卡片回传交互（旧）, card.action.trigger_v1, still documented, and what the bot's
"message card request URL" gets) is taken too: `open_id`, `user_id`, `open_message_id` and `action` at the top
level, its `token` the card's update token, signed with hex SHA-1 of timestamp + nonce + Verification Token + the
raw body (the SDKs' card handlers), or as above with the Encrypt Key. Its answer is the updated card itself (as the
SDKs' card samples return it), or the error toast.

No SDK: lark-oapi brings its own HTTP clients and far more than these three calls; the signature is one SHA-256,
the cipher comes from `cryptography`, and aiohttp (the outbox's session) makes the calls.

Sources (open.feishu.cn/document/…): server-docs/authentication-management/access-token/
tenant_access_token_internal; server-docs/im-v1/message/create (receive_id_type, content as a JSON string, 30 KB,
5 QPS per user or chat, error codes); server-docs/api-call-guide/frequency-control (99991400, x-ogw-ratelimit-reset);
event-subscription-guide/callback-subscription/send-callbacks-to-developers-server and receive-and-handle-callbacks
(decryption, the signature); event-subscription-guide/event-subscription-configure-/request-url-configuration-case
(the "test key" → "hello world" decryption example); feishu-cards/card-callback-communication (the callback, its
answer: toast and `card: {type: raw, data}`); common-capabilities/message-card/getting-started/card-structure/
card-configuration (`update_multi`); ukTMukTMukTM/uYzM3QjL2MzN04iNzcDN/configuring-card-callbacks/
card-callback-structure (the older callback); the SDKs larksuite/oapi-sdk-python (core/utils/decryptor.py,
event/dispatcher_handler.py, card/action_handler.py, event/callback/model/p2_card_action_trigger.py) and
larksuite/oapi-sdk-go (card/card.go; the token-invalid codes it refreshes on).
"""

import base64
import hashlib
import hmac
import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime

import aiohttp
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from amcompanion.receiver.channels import feishu
from amcompanion.receiver.channels.base import (
    Act,
    CachedToken,
    Click,
    ClickAnswer,
    Clicked,
    Message,
    Outcome,
    Response,
    http_outcome,
    json_answer,
    not_sent,
    not_sent_outcome,
    rebase,
)

TOKEN_URL = "https://open.feishu.cn/open-apis/auth/v3/tenant_access_token/internal"
MESSAGES_URL = "https://open.feishu.cn/open-apis/im/v1/messages"
JSON_TYPE = {"Content-Type": "application/json; charset=utf-8"}
BODY_LIMIT = 30_000  # bytes of the request; Feishu's "30KB" for a card message, read as the smaller number
CARD_CONFIG = {"update_multi": True}  # a shared card: the callback's update shows to everyone in the chat
ACKNOWLEDGED = "orange"  # the header of an acknowledged card (red firing, green resolved)
CALLBACK_WINDOW_S = 300
REMEMBERED_CARDS = 1000
# the tenant access token is missing, expired or revoked (oapi-sdk-go refreshes on 99991663, 99991664, 99991671)
TOKEN_CODES = {99991661, 99991663, 99991664, 99991668, 99991671}
TOKEN_LIFETIME_S = 7200.0  # "tenant_access_token 的最大有效期是 2 小时", when the answer's `expire` says nothing usable
RATE_CODES = {99991400, 230020, 11232, 11233}
EXPLAINED = {
    10003: "check app_id",
    10014: "the app_secret is wrong",
    230001: "an invalid receive_id (an open_id of another app?) or request",
    230002: "the bot is not in the chat: add the app's bot to the group",
    230006: "the app's bot is not enabled: turn on the bot ability and publish a version",
    230013: "the user is outside the app's availability range",
    230025: "the message is over Feishu's size limit",
    230027: "the app lacks the permission to send messages (im:message:send_as_bot)",
    230035: "the bot may not speak in the chat",
    230053: "the user stopped the bot's messages",
    230099: "Feishu could not build the card",
    99991672: "the app lacks the permission to send messages (im:message:send_as_bot)",
}


def decrypt(encrypt_key: str, encrypted: str) -> str:
    """A callback's `encrypt` undone: AES-256-CBC keyed with SHA-256 of the Encrypt Key, the IV the first 16 bytes
    of the base64-decoded data, PKCS7. ValueError when it is not that (a forged body, another app's key)."""
    data = base64.b64decode(encrypted, validate=True)
    if len(data) < 32 or len(data) % 16:
        raise ValueError("not an encrypted callback")
    key = hashlib.sha256(encrypt_key.encode()).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(data[:16])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    padded = decryptor.update(data[16:]) + decryptor.finalize()
    return (unpadder.update(padded) + unpadder.finalize()).decode()


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """`X-Lark-Signature`: hex SHA-256 of timestamp + nonce + Encrypt Key, then the raw body."""
    return hashlib.sha256(_raw(timestamp) + _raw(nonce) + encrypt_key.encode() + body).hexdigest()


def legacy_signature(timestamp: str, nonce: str, verification_token: str, body: bytes) -> str:
    """`X-Lark-Signature` of the older message-card callback (card.action.trigger_v1, sent to the bot's "message
    card request URL"): hex SHA-1 of timestamp + nonce + Verification Token, then the raw body (the SDKs' card
    handlers: oapi-sdk-python lark_oapi/card/action_handler.py, oapi-sdk-go card/card.go)."""
    return hashlib.sha1(_raw(timestamp) + _raw(nonce) + verification_token.encode() + body).hexdigest()


def _raw(header: str) -> bytes:
    """A header's value as the bytes that came (aiohttp keeps undecodable bytes as surrogates)."""
    return header.encode("utf-8", "surrogateescape")


def _same(offered: object, expected: str) -> bool:
    """A secret compared in constant time; anything but a string is not it."""
    return isinstance(offered, str) and hmac.compare_digest(_raw(offered), expected.encode())


def reply(body: dict) -> Response:
    """The callback's answer: HTTP 200 with JSON (a toast, a card)."""
    return Response(200, JSON_TYPE, json.dumps(body, ensure_ascii=False).encode())


def acknowledgeable(message: Message) -> bool:
    return bool(message.ack_url) and message.kind == "firing" and len(message.alerts) == 1


class FeishuAppChannel:
    type = "feishu_app"
    callback_path = "/feishu/card"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.app_id = str(settings["app_id"])
        self.app_secret = str(settings["app_secret"])
        self.verification_token = str(settings.get("verification_token") or "")
        self.encrypt_key = str(settings.get("encrypt_key") or "")
        self.chat_id = str(settings.get("chat_id") or "")
        self.token_url = rebase(TOKEN_URL, settings.get("base_url"))
        self.messages_url = rebase(MESSAGES_URL, settings.get("base_url"))
        self.token = CachedToken(self._fetch_token)
        self._cards: OrderedDict[str, dict] = OrderedDict()  # message_id → the card as it is now

    # -- sending ---------------------------------------------------------------------------------------------

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        target = self.target(message)
        if isinstance(target, Response):
            return target
        receive_id_type, receive_id = target
        body = self.body(message, receive_id)
        for attempt in (1, 2):
            token = await self.token.get(session)
            if isinstance(token, Response):  # Feishu gave no token: its answer says why
                return token
            response = await self._post_message(session, receive_id_type, body, token)
            if attempt == 2 or json_answer(response).get("code") not in TOKEN_CODES:
                break
            self.token.forget(token)  # expired early or revoked: once more with a new one
        self._remember(response, body)
        return response

    def target(self, message: Message) -> tuple[str, str] | Response:
        """receive_id_type and receive_id: the contact's open_id or user_id, else the group; or why neither."""
        recipient = message.recipient
        if recipient.get("feishu_open_id"):
            return "open_id", recipient["feishu_open_id"]
        if recipient.get("feishu_user_id"):
            return "user_id", recipient["feishu_user_id"]
        if message.recipient_name or recipient:
            who = message.recipient_name or "the recipient"
            return not_sent(f"not sent: {who} has no feishu_open_id or feishu_user_id")
        if self.chat_id:
            return "chat_id", self.chat_id
        return not_sent("not sent: the step names no contacts and the channel has no chat_id")

    def body(self, message: Message, receive_id: str) -> str:
        """The request body, the card a JSON string in it, the text cut so that the whole fits Feishu's limit."""

        def encode(text: str) -> str:
            content = json.dumps(self.card(message, text), ensure_ascii=False)
            return json.dumps(
                {"receive_id": receive_id, "msg_type": "interactive", "content": content}, ensure_ascii=False
            )

        return feishu.fitted(encode, message.text, BODY_LIMIT)

    def card(self, message: Message, text: str) -> dict:
        buttons: list[dict] = []
        if acknowledgeable(message):
            acknowledge = {
                "tag": "button",
                "text": {"tag": "plain_text", "content": "Acknowledge"},
                "type": "danger",
                "value": {"action": "ack", "alert_id": message.alerts[0]["id"]},
            }
            buttons = [acknowledge, feishu.link_button("Open ack page", message.ack_url, "default")]
        return feishu.card(message, text, buttons, CARD_CONFIG)

    async def _fetch_token(self, session: aiohttp.ClientSession) -> tuple[str, float] | Response:
        data = json.dumps({"app_id": self.app_id, "app_secret": self.app_secret}).encode()
        async with session.post(self.token_url, data=data, headers=JSON_TYPE) as response:
            got = Response(response.status, response.headers, await response.read())
        answer = json_answer(got)
        token = answer.get("tenant_access_token")
        if got.status == 200 and answer.get("code") == 0 and isinstance(token, str) and token:
            lifetime = _seconds(answer.get("expire"))
            return (
                token,
                lifetime if lifetime is not None and 0 < lifetime < 10 * TOKEN_LIFETIME_S else TOKEN_LIFETIME_S,
            )
        return got

    async def _post_message(
        self, session: aiohttp.ClientSession, receive_id_type: str, body: str, token: str
    ) -> Response:
        headers = {**JSON_TYPE, "Authorization": f"Bearer {token}"}
        params = {"receive_id_type": receive_id_type}
        async with session.post(self.messages_url, params=params, data=body.encode(), headers=headers) as response:
            return Response(response.status, response.headers, await response.read())

    def _remember(self, response: Response, body: str) -> None:
        """The card of a delivered message, for its update when the button is pressed."""
        data = json_answer(response).get("data")
        message_id = data.get("message_id") if isinstance(data, dict) else None
        if response.status == 200 and isinstance(message_id, str):
            self._keep(message_id, json.loads(json.loads(body)["content"]))

    def _keep(self, message_id: str, card: dict) -> None:
        self._cards[message_id] = card
        self._cards.move_to_end(message_id)
        while len(self._cards) > REMEMBERED_CARDS:
            self._cards.popitem(last=False)

    def classify(self, response: Response) -> Outcome:
        if (refused := not_sent_outcome(response)) is not None:
            return refused
        answer = json_answer(response)
        msg = str(answer.get("msg", ""))
        code = answer.get("code")
        if not isinstance(code, int) or code == 0:
            outcome = http_outcome(response)
            if outcome.result == "ok" and code != 0:  # a 2xx that is not Feishu's answer (a proxy page): not proof
                return Outcome("retry", f"unexpected answer: {response.body[:200].decode('utf-8', 'replace').strip()}")
            return outcome
        reason = f"Feishu code {code}: {msg}"
        if code in RATE_CODES:
            reset = _seconds(response.headers.get("x-ogw-ratelimit-reset"))
            return Outcome("retry", reason, reset if reset is not None and reset > 0 else 1.0)
        if code in TOKEN_CODES:
            return Outcome("retry", f"{reason} (a new tenant access token was refused too)")
        if code in EXPLAINED:
            return Outcome("permanent", f"{reason} ({EXPLAINED[code]})")
        if response.status >= 500:
            return Outcome("retry", reason)
        return Outcome("permanent", reason)

    # -- the card callback -----------------------------------------------------------------------------------

    async def answer_click(self, headers: Mapping[str, str], body: bytes, now: datetime, act: Act) -> Clicked | None:
        authentic = self._authentic(headers, body, now)
        if authentic is None:
            return None
        event, kind = authentic
        if kind == "verification":
            return Clicked(reply({"challenge": event.get("challenge", "")}))
        if kind == "v2":
            if event["header"].get("event_type") != "card.action.trigger":  # another event sent here: taken, ignored
                return Clicked(reply({}))
            detail = event.get("event") if isinstance(event.get("event"), dict) else {}
            operator = detail.get("operator") if isinstance(detail.get("operator"), dict) else {}
            context = detail.get("context") if isinstance(detail.get("context"), dict) else {}
        else:  # the older callback: the operator's ids and the message id at the top level
            detail, operator, context = event, event, event
        click = _click(detail.get("action"), operator)
        if click is None:
            return Clicked(reply({"toast": {"type": "error", "content": "This button is not amcompanion's."}}))
        done = await act(click)
        if not done.done:
            return Clicked(reply({"toast": {"type": "error", "content": done.text}}))
        message_id = context.get("open_message_id")
        card = self._acknowledged(message_id if isinstance(message_id, str) else "", click, done)
        if kind == "v1":  # the older callback's answer is the card itself (the SDKs' card samples return it so)
            return Clicked(reply(card))
        return Clicked(
            reply({"toast": {"type": "success", "content": done.text}, "card": {"type": "raw", "data": card}})
        )

    def _authentic(self, headers: Mapping[str, str], raw: bytes, now: datetime) -> tuple[dict, str] | None:
        """The callback, decrypted, and what it is ("verification", "v2" for card.action.trigger's schema 2.0,
        "v1" for the older card callback), when it verifies under this channel's Encrypt Key or Verification Token;
        None when it does not, or is not a callback at all.

        As the SDKs do it: a body `{"encrypt": …}` is decrypted with the Encrypt Key, any other is read as it is.
        url_verification is checked by its token (the Encrypt Key's decryption when no token is set); a 2.0 callback
        by `header.token` and, with an Encrypt Key, X-Lark-Signature (SHA-256 with the key); the older callback,
        whose `token` is the card's update token, by its signature alone (SHA-1 with the Verification Token, or
        SHA-256 with the Encrypt Key)."""
        if not (self.encrypt_key or self.verification_token):
            return None
        try:
            outer = json.loads(raw)
            encrypted = isinstance(outer, dict) and "encrypt" in outer
            if encrypted:
                if not (self.encrypt_key and isinstance(outer["encrypt"], str)):
                    return None
                event = json.loads(decrypt(self.encrypt_key, outer["encrypt"]))
            else:
                event = outer
        except (ValueError, RecursionError):  # not JSON, not encrypted with our key (UnicodeDecodeError included)
            return None
        if not isinstance(event, dict):
            return None
        if event.get("type") == "url_verification":
            if self.verification_token:
                return (event, "verification") if _same(event.get("token"), self.verification_token) else None
            return (event, "verification") if encrypted else None
        header = event.get("header")
        if isinstance(header, dict):
            if self.verification_token and not _same(header.get("token"), self.verification_token):
                return None
            if self.encrypt_key:  # signed: the signed timestamp is the one to trust
                return (event, "v2") if self._signed(headers, raw, now) else None
            return (event, "v2") if _fresh(_moment(header.get("create_time")), now) else None
        if "action" in event:
            signed = self._signed(headers, raw, now) or self._signed_legacy(headers, raw, now)
            return (event, "v1") if signed else None
        return None

    def _signed(self, headers: Mapping[str, str], raw: bytes, now: datetime) -> bool:
        if not self.encrypt_key:
            return False
        timestamp = headers.get("X-Lark-Request-Timestamp", "")
        expected = signature(timestamp, headers.get("X-Lark-Request-Nonce", ""), self.encrypt_key, raw)
        return _same(headers.get("X-Lark-Signature", ""), expected) and _fresh(_moment(timestamp), now)

    def _signed_legacy(self, headers: Mapping[str, str], raw: bytes, now: datetime) -> bool:
        if not self.verification_token:
            return False
        timestamp = headers.get("X-Lark-Request-Timestamp", "")
        expected = legacy_signature(timestamp, headers.get("X-Lark-Request-Nonce", ""), self.verification_token, raw)
        return _same(headers.get("X-Lark-Signature", ""), expected) and _fresh(_moment(timestamp), now)

    def _acknowledged(self, message_id: str, click: Click, done: ClickAnswer) -> dict:
        """The card as it was sent (or, not remembered, rebuilt from the alert), its buttons gone, a note who acked."""
        sent = self._cards.get(message_id) or _rebuilt(click, done)
        note = {"tag": "note", "elements": [{"tag": "plain_text", "content": done.text}]}
        card = {
            **sent,
            "header": {**sent["header"], "template": ACKNOWLEDGED},
            "elements": [element for element in sent["elements"] if element["tag"] != "action"] + [note],
        }
        if message_id:
            self._keep(message_id, card)
        return card


def _click(action: object, operator: dict) -> Click | None:
    """The acknowledgement a pressed button asks for (its `value`: {"action": "ack", "alert_id": …}, an object, or
    the older callback's JSON string of one), as the presser's Feishu ids."""
    value = action.get("value") if isinstance(action, dict) else None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    if not isinstance(value, dict) or value.get("action") != "ack":
        return None
    alert_id = value.get("alert_id")
    if isinstance(alert_id, str) and alert_id.strip().isdecimal() and len(alert_id.strip()) <= 18:
        alert_id = int(alert_id)
    if not isinstance(alert_id, int) or isinstance(alert_id, bool):
        return None
    ids = {field: operator[key] for field, key in (("feishu_open_id", "open_id"), ("feishu_user_id", "user_id"))
           if isinstance(operator.get(key), str) and operator[key]}  # fmt: skip
    if not ids:
        return None
    (field, user_id), *others = ids.items()
    return Click(field, user_id, "ack", alert_id, other_ids=dict(others))


def _rebuilt(click: Click, done: ClickAnswer) -> dict:
    """A card for a message this channel does not remember (sent before a restart): the alert's name and summary."""
    alert = done.alert or {}
    summary = str((alert.get("annotations") or {}).get("summary") or "")
    elements = [{"tag": "div", "text": {"tag": "plain_text", "content": summary}}] if summary else []
    title = str(alert.get("alertname") or f"Alert {click.alert_id}")
    return {"config": CARD_CONFIG, "header": feishu.card_header(title, ACKNOWLEDGED), "elements": elements}


def _seconds(value: object) -> float | None:
    """A number of seconds as a header or an answer gives it (a number, or a string of one); None when it is not."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _moment(value: object) -> float | None:
    """A Unix time in seconds from Feishu's seconds (X-Lark-Request-Timestamp) or a header's create_time, whose
    unit the documents show as milliseconds in events and as microseconds in the card callback's example: read
    from its size."""
    number = _seconds(value)
    if number is None:
        return None
    for _ in range(3):  # ms, µs, ns: a time now is about 1.8e9 seconds
        if abs(number) < 1e11:
            break
        number /= 1000
    return number


def _fresh(timestamp: float | None, now: datetime) -> bool:
    return timestamp is not None and abs(now.timestamp() - timestamp) <= CALLBACK_WINDOW_S


CHANNEL = FeishuAppChannel
