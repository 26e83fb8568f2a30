"""Feishu / Lark custom bot (自定义机器人): an interactive card (default), rich text (`post`) or plain text.

Feishu answers most failures with HTTP 200 and a non-zero `code`, so the status alone says nothing. Its
signature is not DingTalk's: `timestamp + "\\n" + secret` is the HMAC-SHA256 *key* of an empty message, the
timestamp is in seconds, and both go into the JSON body.

The card's frame (header coloured by kind, markdown text, buttons) and the cutting of a text to a body limit are
shared with the app bot (`feishu_app`), whose message is the same card.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import aiohttp

from amcompanion.receiver.channels.base import (
    Message,
    Outcome,
    Response,
    http_outcome,
    json_answer,
    longest_cut,
    rebase,
    truncate,
)

BODY_LIMIT = 20_000  # bytes; the docs say 20 KB (one report says more is accepted, we keep under the documented size)
TITLE_LIMIT = 200  # chars; the title is an alert name, from a monitored system
RATE_CODES = {11232}  # "frequency limited": 100/min and 5/s per bot
RATE_MESSAGES = ("too many request", "frequency limited")  # 9499 is also seen as a rate limit, told apart by its msg
AUTH_CODES = {19021: "bad signature or timestamp", 19022: "IP not allowed", 19001: "hook token invalid"}
MSG_TYPES = ("interactive", "post", "text")


def sign(secret: str, timestamp: int) -> str:
    """Feishu's signature: HMAC-SHA256 keyed with `timestamp\\nsecret` over an empty message, base64."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def mention(recipient: dict[str, str]) -> str:
    """The id Feishu mentions the contact by (open_id `ou_…` or user_id), or "" for a group message."""
    return recipient.get("feishu_open_id") or recipient.get("feishu_user_id") or ""


def card_header(title: str, colour: str) -> dict:
    return {"template": colour, "title": {"tag": "plain_text", "content": truncate(title, TITLE_LIMIT, marker="…")}}


def link_button(label: str, url: str, style: str) -> dict:
    """A card button that opens `url` (the only kind a custom bot's card may have: nobody receives a click)."""
    return {"tag": "button", "text": {"tag": "plain_text", "content": label}, "type": style, "url": url}


def card(message: Message, markdown: str, buttons: list[dict], config: dict) -> dict:
    """A card (JSON 1.0): the title in a header red for firing, green for resolved, the text, a row of buttons."""
    elements: list[dict] = [{"tag": "markdown", "content": markdown}]
    if buttons:
        elements.append({"tag": "action", "actions": buttons})
    colour = "green" if message.kind == "resolved" else "red"
    return {"config": config, "header": card_header(message.title, colour), "elements": elements}


def fitted(encode: Callable[[str], str], text: str, limit: int) -> str:
    """`encode(text)`, the text cut (marked) so that the encoding is within `limit` bytes."""
    return encode(longest_cut(text, lambda cut: len(encode(cut).encode()), limit))


class FeishuChannel:
    type = "feishu"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.url = rebase(str(settings["url"]), settings.get("base_url"))
        self.secret = str(settings.get("secret") or "")
        self.msg_type = str(settings.get("msg_type") or "interactive")
        if self.msg_type not in MSG_TYPES:
            raise ValueError(f"feishu msg_type must be one of {', '.join(MSG_TYPES)}, not {self.msg_type!r}")

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        data = self.body(message).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        async with session.post(self.url, data=data, headers=headers) as response:
            return Response(response.status, response.headers, await response.read())

    def body(self, message: Message, now: float | None = None) -> str:
        """The JSON body, its text cut so that the whole body fits Feishu's size limit."""
        signature: dict[str, str] = {}
        if self.secret:
            timestamp = int(now if now is not None else time.time())
            signature = {"timestamp": str(timestamp), "sign": sign(self.secret, timestamp)}
        return fitted(
            lambda text: json.dumps({**self._payload(message, text), **signature}, ensure_ascii=False),
            message.text,
            BODY_LIMIT,
        )

    def _payload(self, message: Message, text: str) -> dict:
        who = mention(message.recipient)
        title = truncate(message.title, TITLE_LIMIT, marker="…")
        if self.msg_type == "text":
            at = f'<at user_id="{who}">{message.recipient_name or who}</at> ' if who else ""
            ack = f"\nAcknowledge: {message.ack_url}" if message.ack_url and message.ack_url not in text else ""
            return {"msg_type": "text", "content": {"text": f"{at}{title}\n{text}{ack}"}}
        if self.msg_type == "post":
            lines: list[list[dict]] = [[{"tag": "at", "user_id": who}]] if who else []
            lines += [[{"tag": "text", "text": line}] for line in text.splitlines()]
            if message.ack_url:
                lines.append([{"tag": "a", "text": "Acknowledge", "href": message.ack_url}])
            return {"msg_type": "post", "content": {"post": {"en_us": {"title": title, "content": lines}}}}
        # a button too: it survives truncation of the text, and is one tap on a phone
        buttons = [link_button("Acknowledge", message.ack_url, "danger")] if message.ack_url else []
        markdown = (f"<at id={who}></at> " if who else "") + text
        return {"msg_type": "interactive", "card": card(message, markdown, buttons, {"wide_screen_mode": True})}

    def classify(self, response: Response) -> Outcome:
        answer = json_answer(response)
        code = answer.get("code", answer.get("StatusCode"))
        if not isinstance(code, int):
            outcome = http_outcome(response)
            if outcome.result == "ok":  # 2xx without Feishu's answer: a proxy or a wrong base_url, not a delivery
                return Outcome("permanent", f"HTTP {response.status}: not a Feishu answer: {response.body[:200]!r}")
            return outcome
        if code == 0:
            return Outcome("ok")
        msg = str(answer.get("msg", answer.get("StatusMessage", "")))
        reason = f"Feishu code {code}: {msg}"
        if code in RATE_CODES or (code == 9499 and any(m in msg.lower() for m in RATE_MESSAGES)):
            return Outcome("retry", reason)  # no hint from Feishu: the outbox's backoff (2 s, 4 s, …) waits
        if code in AUTH_CODES:
            return Outcome("permanent", f"{reason} ({AUTH_CODES[code]})")
        if response.status >= 500 or response.status == 429:
            return Outcome("retry", reason)
        return Outcome("permanent", reason)


CHANNEL = FeishuChannel
