"""Feishu / Lark custom bot (自定义机器人): an interactive card (default), rich text (`post`) or plain text.

Feishu answers most failures with HTTP 200 and a non-zero `code`, so the status alone says nothing. Its
signature is not DingTalk's: `timestamp + "\\n" + secret` is the HMAC-SHA256 *key* of an empty message, the
timestamp is in seconds, and both go into the JSON body.
"""

import base64
import hashlib
import hmac
import json
import time

import aiohttp

from amcompanion.receiver.channels.base import Message, Outcome, Response, http_outcome, json_answer, rebase, truncate

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
        text = message.text
        overhead = len(json.dumps({**self._payload(message, ""), **signature}, ensure_ascii=False).encode())
        while True:
            encoded = json.dumps({**self._payload(message, text), **signature}, ensure_ascii=False)
            size = len(encoded.encode())
            if size <= BODY_LIMIT:
                return encoded
            # JSON escaping (quotes, newlines) makes the text take more room in the body than on its own: cut it in
            # proportion, and measure again (escapes need not be spread evenly)
            in_body, in_text = size - overhead, len(text.encode())
            shorter = truncate(text, max(0, in_text * (BODY_LIMIT - overhead) // in_body - 16), measure="bytes")
            if shorter == text:  # nothing left to cut: the rest of the message alone is too big (Feishu will say so)
                return encoded
            text = shorter

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
        elements: list[dict] = [{"tag": "markdown", "content": (f"<at id={who}></at> " if who else "") + text}]
        if message.ack_url:  # a button too: it survives truncation of the text, and is one tap on a phone
            button = {"tag": "button", "text": {"tag": "plain_text", "content": "Acknowledge"}, "type": "danger"}
            elements.append({"tag": "action", "actions": [{**button, "url": message.ack_url}]})
        colour = "green" if message.kind == "resolved" else "red"
        header = {"template": colour, "title": {"tag": "plain_text", "content": title}}
        return {
            "msg_type": "interactive",
            "card": {"config": {"wide_screen_mode": True}, "header": header, "elements": elements},
        }

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
