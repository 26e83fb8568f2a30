"""Telegram Bot API `sendMessage`: to the channel's chat, or to a contact's own chat (`telegram_chat_id`).

The default template writes Telegram's HTML subset with every alert value escaped, so a label holding `<` or
`&` cannot break the message. Telegram limits a message to 4096 characters *after* entity parsing and
rejects a longer one, so the text is cut on its visible characters, never inside a tag or an entity, and
every tag left open is closed: the cut message still parses.
"""

import html
import re

import aiohttp

from amcompanion.receiver.channels.base import TRUNCATED, Message, Outcome, Response, json_answer, retry_after_header
from amcompanion.receiver.channels.base import truncate as truncate_plain

BASE_URL = "https://api.telegram.org"
LIMIT = 4096  # characters after entity parsing; counted here in UTF-16 code units, which is never fewer
# a tag, an entity Telegram knows (named or numeric), a run of text, or a lone `<`/`&` (which Telegram rejects)
_HTML_TOKEN = re.compile(r"<[^<>]*>|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);|[^<&]+|[<&]")
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][a-zA-Z0-9-]*)")
_MARKDOWN_V2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def units(text: str) -> int:
    """Length as Telegram measures it (UTF-16 code units: an emoji outside the BMP counts two)."""
    return len(text.encode("utf-16-le")) // 2


def truncate_html(text: str, limit: int, marker: str = TRUNCATED, tail: str = "") -> str:
    """`text` (Telegram HTML) cut so that its visible text, `marker` and `tail` (both HTML) fit `limit`;
    tags still open at the cut are closed. Unchanged when it fits."""
    if visible_units(text) <= limit:
        return text
    budget = max(0, limit - visible_units(marker) - visible_units(tail))
    out: list[str] = []
    open_tags: list[str] = []
    used = 0
    for match in _HTML_TOKEN.finditer(text):
        token = match.group()
        if token.startswith("<") and len(token) > 1:
            name = _TAG_NAME.match(token)
            if name is None:
                continue  # not a tag Telegram could read: drop it rather than send something it rejects
            if token.startswith("</"):
                if open_tags and open_tags[-1] == name.group(1).lower():
                    open_tags.pop()
                    out.append(token)
            else:
                open_tags.append(name.group(1).lower())
                out.append(token)
            continue
        size = units(html.unescape(token)) if token.startswith("&") else units(token)
        if used + size <= budget:
            out.append(token)
            used += size
            continue
        if not token.startswith(("&", "<")):  # a text run: keep the characters that still fit
            for char in token:
                if used + units(char) > budget:
                    break
                out.append(char)
                used += units(char)
        break
    out.extend(f"</{name}>" for name in reversed(open_tags))
    return "".join(out).rstrip() + marker + tail


def visible_units(text: str) -> int:
    """Length of `text` (Telegram HTML) once its tags are dropped and its entities read."""
    return units(html.unescape(re.sub(r"<[^<>]*>", "", text)))


class TelegramChannel:
    type = "telegram"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.token = str(settings["bot_token"])
        self.chat_id = str(settings["chat_id"])
        self.parse_mode = str(settings.get("parse_mode", "HTML") or "")
        self.base_url = str(settings.get("base_url") or BASE_URL).rstrip("/")

    @property
    def url(self) -> str:
        return f"{self.base_url}/bot{self.token}/sendMessage"

    def body(self, message: Message) -> dict[str, object]:
        """The sendMessage request: the contact's own chat when the step names one, else the channel's chat."""
        body: dict[str, object] = {
            "chat_id": message.recipient.get("telegram_chat_id") or self.chat_id,
            "text": self.fit(message),
            "disable_web_page_preview": True,  # the spelling every Bot API server version knows
        }
        if self.parse_mode and self.parse_mode.lower() != "none":
            body["parse_mode"] = self.parse_mode
        return body

    def fit(self, message: Message) -> str:
        """The text within Telegram's limit; a cut firing message keeps its ack link at the end."""
        text = message.text
        mode = self.parse_mode.lower()
        if mode == "html":
            tail = f"\nAcknowledge: {html.escape(message.ack_url)}" if message.ack_url else ""
            return truncate_html(text, LIMIT, html.escape(TRUNCATED), tail) if visible_units(text) > LIMIT else text
        if units(text) <= LIMIT:
            return text
        marker, tail = TRUNCATED, f"\nAcknowledge: {message.ack_url}" if message.ack_url else ""
        if mode == "markdownv2":  # every special character outside an entity must be escaped
            marker, tail = _MARKDOWN_V2_SPECIAL.sub(r"\\\1", marker), _MARKDOWN_V2_SPECIAL.sub(r"\\\1", tail)
        allowed = LIMIT - units(tail)
        cut = truncate_plain(text, allowed, marker=marker)
        while units(cut) > allowed:  # characters outside the BMP count two: cut again by the excess
            cut = truncate_plain(text, len(cut) - (units(cut) - allowed), marker=marker)
        if mode == "markdownv2" and re.search(r"(?<!\\)(\\\\)*\\$", cut.removesuffix(marker)):
            cut = cut.removesuffix(marker)[:-1] + marker  # never leave a dangling escape before the marker
        return cut + tail

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        async with session.post(self.url, json=self.body(message)) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        """On the Bot API's `ok`/`error_code`, not on the status alone: HTTP status equals error_code, but a
        proxy's 200 page is no delivery."""
        answer = json_answer(response)
        if answer.get("ok") is True and 200 <= response.status < 300:
            return Outcome("ok")
        code = answer.get("error_code") if isinstance(answer.get("error_code"), int) else response.status
        description = str(answer.get("description") or response.body[:200].decode("utf-8", "replace").strip())
        reason = f"Telegram {code}: {description}"
        parameters = answer.get("parameters") if isinstance(answer.get("parameters"), dict) else {}
        if code == 429:
            wait = parameters.get("retry_after")
            retry_after = float(wait) if isinstance(wait, int | float) else retry_after_header(response)
            return Outcome("retry", reason, retry_after)
        if code == 408 or code >= 500:
            return Outcome("retry", reason, retry_after_header(response))
        if "migrate_to_chat_id" in parameters:
            reason += f" (set chat_id to {parameters['migrate_to_chat_id']})"
        if not answer and 200 <= response.status < 300:
            reason = f"HTTP {response.status} without a Bot API answer (is base_url a Bot API server?)"
        return Outcome("permanent", reason)


CHANNEL = TelegramChannel
