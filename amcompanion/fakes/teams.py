"""A fake Microsoft Teams Workflows webhook (the "Post to a channel when a webhook request is received"
workflow's trigger URL, `/workflows/{id}/triggers/manual/paths/invoke?…&sig=…`) on loopback.

Written from Microsoft's documentation, not from amcompanion's channel, it checks what the service checks when
it takes the request: the workflow id (404 `WorkflowNotFound`), the `sig` query parameter that signs the URL
(401 `DirectApiInvalidAuthorizationSignature`), a JSON body (400 `InvalidRequestContent`), and a per-workflow
rate (429 with Retry-After), answering as Power Automate does (`{"error": {"code", "message"}}`; 202 with
an empty body on success). The workflow posts the card after it answered, so a card Teams would not show
(not `type: message` with an Adaptive Card attachment, an element Teams does not render, over 28 KB) is still
answered 202: it lands in `dropped` instead of `received`, as the workflow's failed run would. It can be told
to answer anything first (`script`).
"""

import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from amcompanion.fakes import Shown
from amcompanion.fakes.window import SlidingWindow, admit_all

WORKFLOW = "0f1e2d3c4b5a49788796a5b4c3d2e1f0"
SIGNATURE = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"
URL_PATH = f"/workflows/{WORKFLOW}/triggers/manual/paths/invoke"
URL_QUERY = f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIGNATURE}"
CARD_BYTES = 28 * 1024
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
ELEMENTS = {"TextBlock", "FactSet", "ColumnSet", "Container", "Image"}  # the body elements checked here
ACTIONS = {"Action.OpenUrl"}  # a Workflows card cannot answer Action.Submit: there is no bot to receive it


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@dataclass
class FakeTeams:
    workflow: str = WORKFLOW
    signature: str = SIGNATURE
    windows: list[tuple[int, float]] = field(default_factory=lambda: [(100, 60.0)])
    retry_after: int = 2
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)  # answers given before any check
    received: list[dict] = field(default_factory=list)  # messages the channel would show
    dropped: list[tuple[dict | None, str]] = field(default_factory=list)  # answered 202, then not posted: why
    answers: list[int] = field(default_factory=list)
    _window: list[SlidingWindow] = field(default_factory=list)

    def shown(self) -> list[Shown]:
        return [Shown("the channel", _visible(body)) for body in self.received]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        # the classic Logic Apps host's path, or the Power Platform one (/powerautomate/automations/direct/workflows/…)
        app.router.add_post("/{prefix:.*}workflows/{workflow}/triggers/manual/paths/invoke", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.script:
            status, headers, text = self.script.pop(0)
            self.answers.append(status)
            return web.Response(status=status, headers=headers, text=text, content_type="application/json")
        response = self._take(request, raw)
        self.answers.append(response.status)
        return response

    def _take(self, request: web.Request, raw: bytes) -> web.Response:
        if request.match_info["workflow"] != self.workflow:
            return _error(
                404, "WorkflowNotFound", f"The workflow '{request.match_info['workflow']}' could not be found."
            )
        if request.query.get("sig") != self.signature:
            return _error(
                401,
                "DirectApiInvalidAuthorizationSignature",
                "The provided authorization signature is invalid for the request.",
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(
                400, "InvalidRequestContent", "The request content is not valid and could not be deserialized."
            )
        if not self._window:
            self._window = [SlidingWindow(count, seconds) for count, seconds in self.windows]
        if not admit_all(self._window, time.monotonic()):
            return _error(
                429, "WorkflowTriggerIsThrottled", "The workflow is throttled.", {"Retry-After": str(self.retry_after)}
            )
        problem = card_problem(body, len(raw))
        if problem:
            self.dropped.append((body if isinstance(body, dict) else None, problem))
        else:
            self.received.append(body)
        return web.Response(status=202)


def card_problem(body: object, size: int) -> str | None:
    """Why Teams would not show the message (the workflow's run fails after the 202), or None."""
    if size > CARD_BYTES:
        return f"the message is {size} bytes, over Teams' {CARD_BYTES}"
    if not isinstance(body, dict) or body.get("type") != "message":
        return 'not a message: `type` must be "message"'
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1 or not isinstance(attachments[0], dict):
        return "`attachments` must hold one card"
    if attachments[0].get("contentType") != CARD_TYPE:
        return f"the attachment's contentType must be {CARD_TYPE}"
    card = attachments[0].get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard" or not isinstance(card.get("version"), str):
        return "the content must be an AdaptiveCard with a version"
    elements = card.get("body")
    if not isinstance(elements, list) or not elements:
        return "the card has no body"
    for element in elements:
        if not isinstance(element, dict) or element.get("type") not in ELEMENTS:
            return f"Teams does not render the element {element!r:.60}"
        if element["type"] == "TextBlock" and not isinstance(element.get("text"), str):
            return "a TextBlock needs its text"
    for action in card.get("actions", []):
        if (
            not isinstance(action, dict)
            or action.get("type") not in ACTIONS
            or not str(action.get("url", "")).startswith(("http://", "https://"))
        ):
            return f"an action Teams cannot run here: {action!r:.80}"
    return None


def _visible(body: dict) -> str:
    card = body["attachments"][0]["content"]
    texts = [element["text"] for element in card["body"] if element["type"] == "TextBlock"]
    buttons = [f"[{action['title']}]({action['url']})" for action in card.get("actions", [])]
    return "\n".join(texts + buttons)
