"""Slack incoming webhook: a Block Kit message (header, mrkdwn section, an Acknowledge button) with a plain
`text` fallback for notifications.

Unlike chat.postMessage, an incoming webhook answers with real HTTP statuses and a plain-text body (`ok`, or an
error string); the string is what tells the errors apart, since their statuses differ between sources.
"""

import aiohttp

from amcompanion.receiver.channels.base import Message, Outcome, Response, rebase, retry_after_header, truncate

SECTION_LIMIT = 3000  # section block text
HEADER_LIMIT = 150  # header block plain_text
FALLBACK_LIMIT = 3000  # top-level `text` when blocks carry the message
RETRY_ERRORS = {"rollup_error", "rate_limited", "ratelimited"}
DEFAULT_RATE_WAIT_S = 1.0  # a 429 without Retry-After: Slack's documented pace is about one message a second


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(message: Message) -> str:
    """`<@U…> ` when the message is for a contact with a Slack id: Slack notifies them by name."""
    who = message.recipient.get("slack_user_id", "")
    return f"<@{who}> " if who else ""


def message_blocks(message: Message) -> list[dict]:
    """The title as a header block and the text (the mention first) as a mrkdwn section, each within Block Kit's
    limits; the Slack app channel posts the same two blocks, with its own buttons after them."""
    return [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(message.title, HEADER_LIMIT, marker="…")}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(mention(message) + message.text, SECTION_LIMIT)},
        },
    ]


def fallback_text(message: Message) -> str:
    """The top-level `text`: what notifications show when the blocks carry the message."""
    return truncate(mention(message) + escape(message.title), FALLBACK_LIMIT)


class SlackChannel:
    type = "slack"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.url = rebase(str(settings["url"]), settings.get("base_url"))
        # honoured by legacy webhooks only; app-created webhooks post where they were installed and ignore them
        self.overrides = {key: str(settings[key]) for key in ("channel", "username") if settings.get(key)}

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        async with session.post(self.url, json=self.body(message)) as response:
            return Response(response.status, response.headers, await response.read())

    def body(self, message: Message) -> dict:
        blocks = message_blocks(message)
        if message.ack_url:  # a button too: it survives truncation of the text
            button = {"type": "button", "text": {"type": "plain_text", "text": "Acknowledge"}, "style": "danger"}
            blocks.append({"type": "actions", "elements": [{**button, "url": message.ack_url, "action_id": "ack"}]})
        return {"text": fallback_text(message), "blocks": blocks, **self.overrides}

    def classify(self, response: Response) -> Outcome:
        text = response.body[:200].decode("utf-8", "replace").strip()
        if response.status == 200 and text == "ok":
            return Outcome("ok")
        reason = f"HTTP {response.status}: {text}" if text else f"HTTP {response.status}"
        if response.status == 429:
            return Outcome("retry", reason, retry_after_header(response) or DEFAULT_RATE_WAIT_S)
        if text in RETRY_ERRORS or response.status >= 500 or response.status == 408:
            return Outcome("retry", reason, retry_after_header(response))
        # 200 with any other body is not a delivery (Alertmanager reads it the same way); 4xx strings are config
        # or payload errors: invalid_payload, no_service, channel_not_found, channel_is_archived, invalid_token, ...
        return Outcome("permanent", reason)


CHANNEL = SlackChannel
