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
        who = message.recipient.get("slack_user_id", "")
        at = f"<@{who}> " if who else ""
        blocks: list[dict] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": truncate(message.title, HEADER_LIMIT, marker="…")},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(at + message.text, SECTION_LIMIT)}},
        ]
        if message.ack_url:  # a button too: it survives truncation of the text
            button = {"type": "button", "text": {"type": "plain_text", "text": "Acknowledge"}, "style": "danger"}
            blocks.append({"type": "actions", "elements": [{**button, "url": message.ack_url, "action_id": "ack"}]})
        fallback = truncate(at + escape(message.title), FALLBACK_LIMIT)
        return {"text": fallback, "blocks": blocks, **self.overrides}

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
