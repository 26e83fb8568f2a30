"""A Discord channel webhook: the message as one embed (title, markdown description, colour by state).

Discord rejects an over-long field rather than cut it (400, code 50035), so title and description are cut to
its limits here, a cut firing message keeping its ack link. Mentions are off (`allowed_mentions`) except
the contact a step names (`discord_user_id`), so an alert label holding `@everyone` pings nobody.
"""

import aiohttp
from yarl import URL

from amcompanion.receiver.channels.base import (
    Message,
    Outcome,
    Response,
    json_answer,
    rebase,
    retry_after_header,
    truncate,
)

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
USERNAME_LIMIT = 80
FIRING_COLOUR = 0xE74C3C
RESOLVED_COLOUR = 0x2ECC71


class DiscordChannel:
    type = "discord"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.url = rebase(str(settings["url"]), settings.get("base_url"))
        self.username = str(settings.get("username") or "")

    def body(self, message: Message) -> dict[str, object]:
        description = message.text
        if len(description) > DESCRIPTION_LIMIT:
            tail = f"\n**[Acknowledge]({message.ack_url})**" if message.ack_url else ""
            description = truncate(description, DESCRIPTION_LIMIT - len(tail)) + tail
        embed: dict[str, object] = {
            "title": truncate(message.title, TITLE_LIMIT, marker="…"),
            "description": description,
            "color": RESOLVED_COLOUR if message.kind == "resolved" else FIRING_COLOUR,
        }
        if message.ack_url:
            embed["url"] = message.ack_url  # the title links to the ack page
        body: dict[str, object] = {"embeds": [embed], "allowed_mentions": {"parse": []}}
        user = message.recipient.get("discord_user_id")
        if user:
            body["content"] = f"<@{user}>"
            body["allowed_mentions"] = {"parse": [], "users": [user]}
        if self.username:
            body["username"] = self.username[:USERNAME_LIMIT]
        return body

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        # wait=true: Discord answers 200 with the message it created, not a bare 204, once it is stored
        url = URL(self.url, encoded=True).update_query(wait="true")
        async with session.post(url, json=self.body(message)) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        """2xx ok; 429 and 5xx retry (after Discord's Retry-After header, else its `retry_after` in
        seconds); any other answer (400 50035/50006, 401 50027, 404 10015, 403) is permanent."""
        status = response.status
        if 200 <= status < 300:
            return Outcome("ok")
        answer = json_answer(response)
        code, text = answer.get("code"), answer.get("message")
        if text:
            reason = f"Discord {status}" + (f" code {code}" if code is not None else "") + f": {text}"
            detail = _first_error(answer.get("errors"))
            if detail:
                reason += f" ({detail})"
        else:
            reason = f"HTTP {status}: {response.body[:200].decode('utf-8', 'replace').strip()}"
        if status == 429:
            wait = retry_after_header(response)
            if wait is None and isinstance(answer.get("retry_after"), int | float):
                wait = max(0.0, float(answer["retry_after"]))
            if answer.get("global"):
                reason += " (global limit)"
            return Outcome("retry", reason, wait)
        if status == 408 or status >= 500:
            return Outcome("retry", reason, retry_after_header(response))
        return Outcome("permanent", reason)


def _first_error(errors: object, path: str = "") -> str:
    """The first entry of Discord's nested `errors` tree as `field.path: message`."""
    if not isinstance(errors, dict):
        return ""
    for key, value in errors.items():
        if key == "_errors" and isinstance(value, list) and value and isinstance(value[0], dict):
            return f"{path or 'body'}: {value[0].get('message', '')}"
        found = _first_error(value, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return ""


CHANNEL = DiscordChannel
