"""WeChat Work / WeCom group robot (企业微信群机器人): a markdown message to a group, the recipient @-mentioned.

The robot's only credential is the `key` in the URL. Like DingTalk it answers HTTP 200 with the error in
`errcode`, and it counts 20 messages a minute per robot, failures included, with no hint how long to wait.
Mentions differ by message type (CHANNELS.md §4): `markdown` mentions only by `<@userid>` in its content,
`text` by `mentioned_list` (user ids) and `mentioned_mobile_list`, `markdown_v2` not at all. So a contact
known only by a mobile number is paged with a `text` message, since that is the one way to notify them.
"""

import re

import aiohttp

from amcompanion.receiver.channels.base import (
    TRUNCATED,
    Message,
    Outcome,
    Response,
    coded_answer,
    mainland_mobile,
    rebase,
    truncate,
)

DEFAULT_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
LIMITS = {"markdown": 4096, "markdown_v2": 4096, "text": 2048}  # bytes of the content
WINDOW_S = 60.0  # the robot's 20/min window: wait for it to roll

_RATE_CODES = {45009, 45033}
_RETRY_CODES = {-1}  # system busy
_REASONS = {
    93000: "invalid webhook url: the robot's key is wrong or the robot was removed",
    40008: "invalid msgtype",
    44004: "empty content",
    40035: "invalid parameter",
    40063: "empty parameter",
    45002: "content too large",
    40058: "content too large",
    40001: "invalid credential",
    40093: "invalid credential",
}
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\)")
_FONT = re.compile(r"</?font[^>]*>")


def plain(markdown: str) -> str:
    """A markdown text readable as plain text: links spelled out, colour tags and emphasis marks dropped."""
    text = _FONT.sub("", _LINK.sub(r"\1: \2", markdown))
    lines = [re.sub(r"^(#{1,6}|>)\s*", "", line).replace("**", "") for line in text.splitlines()]
    return "\n".join(lines)


class WeComChannel:
    type = "wecom"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.url = rebase(str(settings.get("url") or DEFAULT_URL), settings.get("base_url"))
        # an unknown msgtype is sent as it is: WeCom's 40008 then names the mistake (`amcompanion channels test`)
        self.msgtype = str(settings.get("msgtype") or "markdown")

    def body(self, message: Message) -> dict:
        user_id = message.recipient.get("wecom_user_id", "")
        number = message.recipient.get("wecom_mobile") or message.recipient.get("phone") or ""
        msgtype = self.msgtype
        if msgtype == "markdown" and number and not user_id:
            msgtype = "text"  # markdown cannot mention a mobile number
        if msgtype == "text":
            marker = TRUNCATED + (f"\nAcknowledge: {message.ack_url}" if message.ack_url else "")
            content = truncate(plain(message.text), LIMITS["text"], "bytes", marker)
            text: dict[str, object] = {"content": content}
            if user_id:
                text["mentioned_list"] = [user_id]
            if number:
                text["mentioned_mobile_list"] = [mainland_mobile(number)]
            return {"msgtype": "text", "text": text}
        mention = f"\n<@{user_id}>" if user_id and msgtype == "markdown" else ""
        limit = LIMITS.get(msgtype, LIMITS["markdown"]) - len(mention.encode())
        marker = TRUNCATED + (f"\n[Acknowledge]({message.ack_url})" if message.ack_url else "")
        content = truncate(message.text, limit, "bytes", marker) + mention  # a cut message keeps its ack link
        return {"msgtype": msgtype, msgtype: {"content": content}}

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        async with session.post(self.url, json=self.body(message)) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        settled, code, text = coded_answer(response)
        if settled is not None:
            return settled
        reason = f"errcode {code}: {text[:300]}"
        if code in _RATE_CODES:
            return Outcome("retry", f"rate limited ({reason})", WINDOW_S)
        if code in _RETRY_CODES:
            return Outcome("retry", f"WeCom busy ({reason})")
        if code in _REASONS:
            return Outcome("permanent", f"{_REASONS[code]} ({reason})")
        return Outcome("permanent", reason)


CHANNEL = WeComChannel
