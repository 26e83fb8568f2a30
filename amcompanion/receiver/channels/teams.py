"""Microsoft Teams through a Workflows webhook ("Post to a channel when a webhook request is received"): the
message as one Adaptive Card, in the shape Alertmanager's notify/msteamsv2 sends, with an Acknowledge button.

A workflow answers 202 as soon as it has the request and posts the card afterwards, so a card Teams cannot
show fails where no answer tells it: the card is kept to what Teams takes (a message of at most 28 KB, cut
here with the ack link kept) and to the elements every Teams client renders (TextBlock, FactSet,
Action.OpenUrl). 429 (the workflow is throttled) and 5xx retry; any other error is permanent.
"""

import json

import aiohttp

from amcompanion.receiver.channels.base import Message, Outcome, Response, http_outcome, json_answer, rebase, truncate

CARD_BYTES = 28 * 1024  # Teams' limit for a message, the card included
ENVELOPE_BYTES = 2 * 1024  # what the card's frame, title and button take besides the text, generously
RED, GREEN = "Attention", "Good"  # the Adaptive Card colours Alertmanager's msteamsv2 uses for firing and resolved


class TeamsChannel:
    type = "teams"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.url = rebase(str(settings["url"]), settings.get("base_url"))

    def body(self, message: Message) -> dict[str, object]:
        room = CARD_BYTES - ENVELOPE_BYTES - len(message.title.encode()) - len(message.ack_url.encode())
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
                {"type": "TextBlock", "text": truncate(message.text, room, measure="bytes"), "wrap": True},
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
        data = json.dumps(self.body(message), ensure_ascii=False).encode()
        async with session.post(self.url, data=data, headers={"Content-Type": "application/json"}) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        """2xx ok (a workflow answers 202); 429 (throttled, with Retry-After) and 5xx retry; any other answer
        (400 a body the trigger cannot read, 401 a workflow URL whose signature is wrong, 404 a deleted
        workflow) is permanent, with the service's error code and message."""
        outcome = http_outcome(response)
        error = json_answer(response).get("error")
        if outcome.result == "ok" or not isinstance(error, dict):
            return outcome
        reason = f"Teams workflow {response.status} {error.get('code', '')}: {error.get('message', '')}".strip()
        return Outcome(outcome.result, reason, outcome.retry_after)


CHANNEL = TeamsChannel
