"""A Slack app's bot posting with chat.postMessage; a single firing alert gets Acknowledge and Resolve buttons that
work inside Slack.

The message is the incoming-webhook channel's Block Kit (slack.py: the title as a header, the mrkdwn text after the
contact's mention), posted to `channel` with the bot token; the buttons carry the alert's id. Slack sends a press
to the app's Interactivity Request URL, the receiver's POST /slack/interactions, where `answer_click` checks Slack's
signature (`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` under the signing secret, the timestamp within
5 minutes, compared in constant time), has the receiver act as the presser, and answers 200 at once (Slack wants
an answer within 3 seconds). Then the press's `response_url` updates the message: in place, its buttons replaced
by who did it, or, when nothing was done, with an ephemeral reply only the presser sees.

chat.postMessage answers most errors in HTTP 200 as `{"ok": false, "error": …}`, so `ok` is what counts: an answer
without it is no delivery. `ratelimited` (HTTP 429 with Retry-After), Slack's transient errors and 5xx retry; bad
credentials, a channel the bot cannot post to and a refused message are permanent, with what to do about them.

Slack's SDKs (slack_sdk, slack_bolt) are not used: they are blocking or bring a framework, while the call is one
JSON POST on the outbox's aiohttp session and the signature a few lines of hmac/hashlib.

Sources: docs.slack.dev/reference/methods/chat.postMessage (arguments, answer, errors, rate limit),
docs.slack.dev/apis/web-api/rate-limits (about 1 message a second per channel; 429 with Retry-After),
docs.slack.dev/authentication/verifying-requests-from-slack (the signature, its 5-minute window, the worked example),
docs.slack.dev/interactivity/handling-user-interaction (the 3-second answer, response_url, replace_original,
ephemeral replies), docs.slack.dev/reference/interaction-payloads/block_actions-payload (the press),
docs.slack.dev/reference/block-kit/block-elements/button-element (value 2,000, action_id 255), the confirmation
dialog object, docs.slack.dev/messaging/formatting-message-text (`<!date^…>`), and the python-slack-sdk's
slack_sdk/signature (the signer).
"""

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qs

import aiohttp

from amcompanion.receiver.channels.base import (
    Act,
    Click,
    ClickAnswer,
    Clicked,
    Message,
    Outcome,
    Response,
    http_outcome,
    json_answer,
    rebase,
)
from amcompanion.receiver.channels.slack import DEFAULT_RATE_WAIT_S, escape, fallback_text, message_blocks

API_URL = "https://slack.com/api/chat.postMessage"
SIGNATURE_WINDOW_S = 5 * 60  # Slack: refuse a request whose timestamp is more than five minutes from now
ACK, RESOLVE = "amcompanion_ack", "amcompanion_resolve"  # the buttons' action_id
ACTIONS: dict[str, Literal["ack", "resolve"]] = {ACK: "ack", RESOLVE: "resolve"}
RETRY_ERRORS = {"ratelimited", "fatal_error", "internal_error", "service_unavailable"}
# What a permanent error means for whoever reads the failed row.
EXPLAINED = {
    "invalid_auth": "Slack does not know the bot token: check bot_token (the app's xoxb-… Bot User OAuth Token)",
    "not_authed": "no bot token reached Slack: check bot_token",
    "account_inactive": "the bot token belongs to a deleted app or workspace: reinstall the app, update bot_token",
    "token_revoked": "the bot token was revoked (the app was uninstalled?): reinstall the app, update bot_token",
    "missing_scope": "the app lacks the chat:write scope: add it under OAuth & Permissions and reinstall the app",
    "channel_not_found": "no channel with that id, or a private one the app is not in: check `channel` (a C… id)",
    "not_in_channel": "the app is not a member of the channel: invite it there (/invite @the-app)",
    "is_archived": "the channel is archived: unarchive it or set another `channel`",
    "msg_too_long": "the message is over Slack's 40,000 characters",
    "invalid_blocks": "Slack refused the message's Block Kit blocks",
}
EMPTY = Response(200, {}, b"")  # the answer Slack wants for a press: at once, with nothing to show
RESOLVE_CONFIRM = {
    "title": {"type": "plain_text", "text": "Resolve this alert?"},
    "text": {"type": "plain_text", "text": "It is marked resolved by hand, and everyone paged about it is told."},
    "confirm": {"type": "plain_text", "text": "Resolve"},
    "deny": {"type": "plain_text", "text": "Cancel"},
}


def signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature, version v0."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def buttons(alert_id: int) -> dict:
    """The actions block of a single firing alert: Acknowledge, and Resolve behind a confirmation."""
    value = str(alert_id)
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": ACK,
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": RESOLVE,
                "text": {"type": "plain_text", "text": "Resolve"},
                "value": value,
                "confirm": RESOLVE_CONFIRM,
            },
        ],
    }


def when(moment: datetime) -> str:
    """A moment as Slack shows it in each reader's own time zone, with UTC for clients that cannot."""
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


class SlackAppChannel:
    type = "slack_app"
    callback_path = "/slack/interactions"

    def __init__(self, name: str, settings: dict[str, object]):
        self.name = name
        self.bot_token = str(settings["bot_token"])
        self.signing_secret = str(settings["signing_secret"])
        self.channel = str(settings["channel"])
        self.base_url = settings.get("base_url")
        self.url = rebase(API_URL, self.base_url)

    def body(self, message: Message) -> dict:
        blocks = message_blocks(message)
        if message.ack_url and message.kind == "firing":  # one alert, not yet acknowledged: it can be acted on
            blocks.append(buttons(int(message.alerts[0]["id"])))
        return {"channel": self.channel, "text": fallback_text(message), "blocks": blocks}

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        data = json.dumps(self.body(message), ensure_ascii=False).encode()
        headers = {"Authorization": f"Bearer {self.bot_token}", "Content-Type": "application/json; charset=utf-8"}
        async with session.post(self.url, data=data, headers=headers) as response:
            return Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        """`ok: true` is a delivery; 429 (`ratelimited`, after its Retry-After), 408, 5xx and Slack's transient
        errors retry; every other error is permanent, explained when it is one of the usual ones."""
        if response.status == 429:
            outcome = http_outcome(response)
            return Outcome("retry", outcome.reason, outcome.retry_after or DEFAULT_RATE_WAIT_S)
        if response.status != 200:
            return http_outcome(response)
        answer = json_answer(response)
        if answer.get("ok") is True:
            return Outcome("ok")
        error = answer.get("error")
        if answer.get("ok") is not False or not isinstance(error, str):  # a 200 that is not Slack's (a proxy page)
            return Outcome("retry", f"unexpected answer: {response.body[:200].decode('utf-8', 'replace').strip()}")
        reason = f"chat.postMessage {error}"
        if error in RETRY_ERRORS:
            return Outcome("retry", reason)
        details = [EXPLAINED[error]] if error in EXPLAINED else []
        if answer.get("needed"):
            details.append(f"needed {answer['needed']}, the token has {answer.get('provided') or 'none'}")
        details += [str(m) for m in (answer.get("response_metadata") or {}).get("messages") or []][:3]
        return Outcome("permanent", f"{reason}: {'; '.join(details)}" if details else reason)

    async def answer_click(self, headers: Mapping[str, str], body: bytes, now: datetime, act: Act) -> Clicked | None:
        """A press Slack signed with this app's secret: acted on, answered 200 at once, the message updated after;
        a stale one (replayed, or a clock far off) refused with 401; None when the secret is not this one's."""
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        offered = headers.get("X-Slack-Signature", "")
        if not hmac.compare_digest(offered.encode(), signature(self.signing_secret, timestamp, body).encode()):
            return None
        try:
            age = abs(now.timestamp() - int(timestamp))
        except ValueError:
            age = float("inf")
        if age > SIGNATURE_WINDOW_S:
            reason = f"X-Slack-Request-Timestamp {timestamp!r} is not within 5 minutes of now ({now.isoformat()})"
            return Clicked(Response(401, {"Content-Type": "text/plain; charset=utf-8"}, reason.encode()))
        press = _press(body)
        if press is None:  # signed, but not one of our buttons (another interaction of the same app): nothing to do
            return Clicked(EMPTY)
        click, response_url, message = press
        answer = await act(click)
        reply = _updated(message, answer, now) if answer.done else _ephemeral(answer)
        url = rebase(response_url, self.base_url)

        async def update(session: aiohttp.ClientSession) -> None:
            async with session.post(url, json=reply, raise_for_status=True):
                pass

        return Clicked(EMPTY, update)


def _press(body: bytes) -> tuple[Click, str, dict] | None:
    """The press in a block_actions payload (the form field `payload`, JSON): the Click, its response_url and the
    message pressed; None when it is not a press of one of the buttons this channel sends."""
    try:
        payload = json.loads(parse_qs(body.decode()).get("payload", [""])[0])
        action = payload["actions"][0]
        user = payload["user"]
        kind = ACTIONS.get(action["action_id"])
        if payload["type"] != "block_actions" or kind is None:
            return None
        name = str(user.get("username") or user.get("name") or "")
        click = Click("slack_user_id", str(user["id"]), kind, int(action["value"]), name)
        return click, str(payload["response_url"]), payload.get("message") or {}
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _updated(message: dict, answer: ClickAnswer, now: datetime) -> dict:
    """The pressed message in place: its buttons gone, a line saying what was done, by whom and when. The blocks
    drop the block_ids Slack gave them: an updated message should get new ones (Block Kit's reference)."""
    line = f"{escape(answer.text.rstrip('.'))} (via Slack) at {when(now)}"
    kept = [block for block in message.get("blocks") or [] if block.get("type") != "actions"]
    blocks = [{key: value for key, value in block.items() if key != "block_id"} for block in kept]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": line}]})
    return {"replace_original": True, "text": str(message.get("text") or answer.text), "blocks": blocks}


def _ephemeral(answer: ClickAnswer) -> dict:
    """Why nothing was done, for the presser's eyes only; the message stays as it was."""
    return {"response_type": "ephemeral", "replace_original": False, "text": escape(answer.text)}


CHANNEL = SlackAppChannel
