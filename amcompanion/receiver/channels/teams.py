"""Microsoft Teams through a Workflows webhook ("Post to a channel when a webhook request is received"): the
message as one Adaptive Card, in the shape Alertmanager's notify/msteamsv2 sends, with an Acknowledge button.

A workflow answers 202 as soon as it has the request and posts the card afterwards, so a card Teams cannot
show fails where no answer tells it: the card is kept to what Teams takes (a message of at most 28 KB as sent,
JSON escapes included, cut here with the ack link kept) and to the elements every Teams client renders
(TextBlock, FactSet, Action.OpenUrl). 429 (the workflow is throttled) and 5xx retry; any other error is
permanent. The trigger's success is 202 Accepted; a 2xx that is a web page (a proxy's or a captive portal's) is no
proof that the workflow has the card, and is retried. Another 2xx is taken (an old Office 365 connector URL answers
200 "1"): retrying what was posted would post it again, and again.
"""

import json

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

CARD_BYTES = 28 * 1024  # Teams' limit for a message, the card included
RED, GREEN = "Attention", "Good"  # the Adaptive Card colours Alertmanager's msteamsv2 uses for firing and resolved


class TeamsChannel:
    type = "teams"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.url = rebase(str(settings["url"]), settings.get("base_url"))

    def body(self, message: Message) -> dict[str, object]:
        """The message, within CARD_BYTES once encoded: the text is cut (the title and button kept) to the longest
        that fits, JSON escapes counted (a quote, a backslash or a newline takes two bytes on the wire)."""
        text = longest_cut(message.text, lambda text: len(_encode(self._body(message, text))), CARD_BYTES)
        return self._body(message, text)

    def _body(self, message: Message, text: str) -> dict[str, object]:
        card: dict[str, object] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.2",
            "body": [
                {
                    "type": "TextBlock",
                    "text": truncate(message.title, 400, marker="…"),
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                    "style": "heading",
                    "color": GREEN if message.kind == "resolved" else RED,
                },
                {"type": "TextBlock", "text": text, "wrap": True},
            ],
            "msteams": {"width": "full"},
        }
        if message.ack_url and message.kind != "resolved":
            card["actions"] = [{"type": "Action.OpenUrl", "title": "Acknowledge", "url": message.ack_url}]
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
            ],
        }

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        data = _encode(self.body(message))
        async with session.post(self.url, data=data, headers={"Content-Type": "application/json"}) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        """202 ok (the trigger's answer once it has the request), and any 2xx that is not a web page; a page is not
        the workflow's answer and is retried; 429 (throttled, with Retry-After) and 5xx retry; any other answer
        (400 a body the trigger cannot read, 401 a workflow URL whose signature is wrong, 404 a deleted workflow)
        is permanent, with the service's error code and message."""
        outcome = http_outcome(response)
        if outcome.result == "ok":
            if not _a_page(response):
                return outcome
            answer = response.body[:200].decode("utf-8", "replace").strip()
            return Outcome("retry", f"not the workflow's answer (it answers 202): HTTP {response.status} {answer}")
        error = json_answer(response).get("error")
        if not isinstance(error, dict):
            return outcome
        reason = f"Teams workflow {response.status} {error.get('code', '')}: {error.get('message', '')}".strip()
        return Outcome(outcome.result, reason, outcome.retry_after)


def _a_page(response: Response) -> bool:
    """An HTML page where the service answers JSON or nothing: a proxy, a captive portal, a login wall."""
    content_type = str(response.headers.get("Content-Type", "")).lower()
    return "html" in content_type or response.body.lstrip()[:1] == b"<"


def _encode(body: dict[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


CHANNEL = TeamsChannel
