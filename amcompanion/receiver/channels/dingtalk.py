"""DingTalk custom robot (钉钉自定义机器人): a message to a group, signed when the robot has a secret.

A single firing alert for the group goes as an ActionCard whose Acknowledge button is the signed ack link (the
link opens in DingTalk's browser, where the ack page asks who acknowledges unless the person is signed in).
The card is the documented body alone (`msgtype`, `actionCard`: title, text, btnOrientation, singleTitle,
singleURL): DingTalk documents `at` for text and markdown only, so a card sends none. A message for a person,
or for the group with `at_all`, goes as markdown: DingTalk renders @-mentions (and @all) in text and markdown
only, and the mention is what makes a phone ring; its text carries the ack link.

The button's link is the plain https ack link. DingTalk also takes `dingtalk://dingtalkclient/page/link?url=…
&pc_slide=false` (open in the system browser rather than the PC client's side panel), but both open the page,
and the plain link also works wherever the message is read outside the client.

DingTalk answers HTTP 200 for nearly every error, with the reason in `errcode`; so the answer is read from the
body, never from the status alone. The robot is throttled for 10 minutes once it gets more than 20 messages in
a minute, which is why a rate-limit answer asks for a long wait. See CHANNELS.md §3.
"""

import base64
import hashlib
import hmac
import json
import re
import time
from urllib.parse import quote

import aiohttp

from amcompanion.receiver.channels.base import (
    TRUNCATED,
    Message,
    Outcome,
    Response,
    coded_answer,
    longest_cut,
    mainland_mobile,
    rebase,
)

DEFAULT_URL = "https://oapi.dingtalk.com/robot/send"
BODY_LIMIT = 20_000  # bytes of the whole request body (errcode 460101 beyond it)
THROTTLE_S = 600.0  # past 20/min the robot refuses everything for 10 minutes
ACK_BUTTON = "Acknowledge"

_RATE_CODES = {130101, 410100}
_RETRY_CODES = {-1}  # system busy
_REASONS = {
    300001: "access token does not exist",
    300005: "access token does not exist",
    400101: "access token does not exist",
    400106: "robot does not exist",
    400102: "robot is stopped",
    400013: "robot disabled or group dissolved",
    460101: "message too large",
    101002: "message too large",
    40035: "missing or invalid parameter",
    43002: "must use POST",
    43004: "invalid Content-Type",
    400105: "unsupported msgtype",
}


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: base64(HMAC-SHA256(key=secret, "timestamp\\nsecret")), not yet URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkChannel:
    type = "dingtalk"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.url = rebase(str(settings.get("url") or DEFAULT_URL), settings.get("base_url"))
        self.secret = str(settings.get("secret") or "")
        keywords = settings.get("keywords") or []
        self.keywords = [str(k) for k in keywords if str(k)] if isinstance(keywords, list) else [str(keywords)]
        self.at_all = bool(settings.get("at_all", False))
        self.action_card = bool(settings.get("action_card", True))

    def body(self, message: Message) -> dict:
        """The markdown message: mentions appended as `@mobile` (DingTalk renders an @ only if the text has it),
        a keyword added when the robot's keyword rule would otherwise reject the text, cut to the body limit."""
        mobiles, user_ids = self._mentions(message.recipient)
        tail = "".join(f" @{m}" for m in mobiles) + "".join(f" @{u}" for u in user_ids)
        tail = f"\n\n{tail.strip()}" if tail else ""
        if self.keywords and not any(k in message.text for k in self.keywords):
            tail += f"\n\n{self.keywords[0]}"  # DingTalk checks the keywords against the message content
        at = {"atMobiles": mobiles, "atUserIds": user_ids, "isAtAll": self.at_all}
        # DingTalk's `at` works in text and markdown only: a card carries none, so a message that must @ someone
        # (a person, or everyone with `at_all`) is markdown
        card = (
            self.action_card
            and message.ack_url
            and message.kind == "firing"
            and not (mobiles or user_ids or self.at_all)
        )

        def build(text: str) -> dict:
            if card:
                button = {"btnOrientation": "0", "singleTitle": ACK_BUTTON, "singleURL": message.ack_url}
                content = {"title": message.title, "text": text + tail, **button}
                return {"msgtype": "actionCard", "actionCard": content}
            return {"msgtype": "markdown", "markdown": {"title": message.title, "text": text + tail}, "at": at}

        marker = TRUNCATED + (f"\n\n[Acknowledge]({message.ack_url})" if message.ack_url else "")  # a cut keeps it
        return build(longest_cut(message.text, lambda text: len(_encode(build(text))), BODY_LIMIT, marker))

    def request_url(self) -> str:
        if not self.secret:
            return self.url
        timestamp = int(time.time() * 1000)
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}timestamp={timestamp}&sign={quote(sign(self.secret, timestamp), safe='')}"

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        data = _encode(self.body(message))
        async with session.post(self.request_url(), data=data, headers=headers) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        settled, code, text = coded_answer(response)
        if settled is not None:
            return settled
        reason = f"errcode {code}: {text[:300]}"
        lowered = text.lower()
        if code in _RATE_CODES or (code == 300001 and ("fast" in lowered or "频" in text or "limit" in lowered)):
            return Outcome("retry", f"rate limited, robot throttled ({reason})", THROTTLE_S)
        if code in _RETRY_CODES:
            return Outcome("retry", f"DingTalk busy ({reason})")
        if code == 310000:
            return Outcome("permanent", f"{_security_reason(text)} ({reason})")
        if code in _REASONS:
            return Outcome("permanent", f"{_REASONS[code]} ({reason})")
        if 430101 <= code <= 430104:
            return Outcome("permanent", f"content rejected ({reason})")
        return Outcome("permanent", reason)

    @staticmethod
    def _mentions(recipient: dict[str, str]) -> tuple[list[str], list[str]]:
        number = recipient.get("dingtalk_mobile") or recipient.get("phone") or ""
        user_id = recipient.get("dingtalk_user_id") or ""
        return ([mainland_mobile(number)] if number else []), ([user_id] if user_id else [])


def _encode(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _security_reason(text: str) -> str:
    """Which security setting refused the message: 310000 is shared, only the message tells (in either era)."""
    lowered = text.lower()
    if "keyword" in lowered or "关键词" in text:
        return "keyword rule: the message has none of the robot's keywords (set `keywords`)"
    if "sign" in lowered or "签名" in text:
        return "signature mismatch: check the channel's `secret`"
    if "timestamp" in lowered or "时间戳" in text:
        return "timestamp refused: this host's clock is off by more than an hour"
    if "whitelist" in lowered or re.search(r"\bip\b", lowered) or "白名单" in text:
        return "IP not in the robot's allow-list"
    return "security check failed"


CHANNEL = DingTalkChannel
