"""A generic JSON webhook: the message and its alerts POSTed to any URL (a chat bridge, a ticket system).

The text and every label and annotation value are cut to VALUE_LIMIT characters: a monitored system can put
megabytes in a description, and the servers behind webhooks commonly refuse bodies over 1 MB (nginx's
default), which would fail the page for good.
"""

import aiohttp

from amcompanion.receiver.channels.base import Message, Outcome, Response, http_outcome, truncate

VALUE_LIMIT = 65_536


def _bounded(alert: dict) -> dict:
    """The alert with its label and annotation values cut to VALUE_LIMIT."""
    return {
        **alert,
        **{
            key: {name: truncate(str(value), VALUE_LIMIT) for name, value in (alert.get(key) or {}).items()}
            for key in ("labels", "annotations")
        },
    }


class WebhookChannel:
    type = "webhook"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.url = str(settings["url"])
        self.method = str(settings.get("method", "POST")).upper()
        self.headers = {str(k): str(v) for k, v in dict(settings.get("headers") or {}).items()}  # type: ignore[call-overload]

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        body = {
            "kind": message.kind,
            "title": message.title,
            "text": truncate(message.text, VALUE_LIMIT),
            "recipient": message.recipient_name,
            "ack_url": message.ack_url,
            "alerts": [_bounded(alert) for alert in message.alerts],
        }
        async with session.request(self.method, self.url, json=body, headers=self.headers) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        return http_outcome(response)


CHANNEL = WebhookChannel
