"""A generic JSON webhook: the message and its alerts POSTed to any URL (a chat bridge, a ticket system)."""

import aiohttp

from amcompanion.receiver.channels.base import Message, Outcome, Response, http_outcome


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
            "text": message.text,
            "recipient": message.recipient_name,
            "ack_url": message.ack_url,
            "alerts": message.alerts,
        }
        async with session.request(self.method, self.url, json=body, headers=self.headers) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        return http_outcome(response)


CHANNEL = WebhookChannel
