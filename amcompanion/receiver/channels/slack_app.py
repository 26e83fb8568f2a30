"""A Slack app's bot posting with chat.postMessage; a single firing alert gets Acknowledge and Resolve buttons that
work inside Slack.

The message is the incoming-webhook channel's Block Kit (slack.py: the title as a header, the mrkdwn text after the
contact's mention), posted to `channel` with the bot token; the buttons carry the alert's id. Slack sends a press
to the app's Interactivity Request URL, the receiver's POST /slack/interactions, where `answer_click` checks Slack's
signature (`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` under the signing secret, the timestamp within
5 minutes, compared in constant time; an empty signing secret verifies nothing), has the receiver act as the
presser, and answers 200 at once with an empty body (Slack wants an answer within 3 seconds). The press is the
form field `payload` (application/x-www-form-urlencoded, UTF-8) holding a block_actions JSON; anything else signed
(another interaction type, another action, a payload missing what a press needs) is answered 200 and left alone.
Then the press's `response_url` updates the message: in place, its buttons replaced by who did it, or, when
nothing was done, with an ephemeral reply only the presser sees. A response_url on slack.com is moved to
`base_url` when the channel has one; another is used as it is.

chat.postMessage answers most errors in HTTP 200 as `{"ok": false, "error": …}`, so `ok` is what counts: an answer
without it is no delivery. `ratelimited` (HTTP 429 with Retry-After), `rate_limited` and `message_limit_exceeded`
(after Retry-After, else a second and a minute), Slack's transient errors (fatal_error, internal_error,
service_unavailable, request_timeout, team_added_to_org, org_login_required) and 5xx retry; bad credentials, a
channel the bot cannot post to and a refused message are permanent, with what to do about them.

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
from urllib.parse import parse_qs, urlsplit

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
    retry_after_header,
)
from amcompanion.receiver.channels.slack import DEFAULT_RATE_WAIT_S, escape, fallback_text, message_blocks

API_URL = "https://slack.com/api/chat.postMessage"
SIGNATURE_WINDOW_S = 5 * 60  # Slack: refuse a request whose timestamp is more than five minutes from now
ACK, RESOLVE = "amcompanion_ack", "amcompanion_resolve"  # the buttons' action_id
ACTIONS: dict[str, Literal["ack", "resolve"]] = {ACK: "ack", RESOLVE: "resolve"}
# chat.postMessage's errors that pass: rate limits (Slack's `ratelimited` comes as HTTP 429 with Retry-After, but its
# error table also lists `rate_limited`, and a free workspace's `message_limit_exceeded`), its own failures, a
# truncated POST (`request_timeout`) and a workspace moving into an Enterprise org (`team_added_to_org`,
# `org_login_required`: "intermittently unavailable until the transition is complete")
RATE_ERRORS = {"ratelimited": DEFAULT_RATE_WAIT_S, "rate_limited": DEFAULT_RATE_WAIT_S, "message_limit_exceeded": 60.0}
RETRY_ERRORS = {"fatal_error", "internal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
RETRY_ERRORS |= {"org_login_required", *RATE_ERRORS}
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
    "token_expired": "the bot token has expired (token rotation is on?): update bot_token",
    "no_permission": "the token may not post there: add the app to the channel",
    "team_access_not_granted": "the token is not granted access to this workspace: install the app there",
    "ekm_access_denied": "the workspace's administrators have suspended posting to this channel",
    "restricted_action": "a workspace preference keeps the app from posting to the channel",
    "restricted_action_read_only_channel": "the channel is read-only: set another `channel`",
    "msg_too_long": "the message is over Slack's 40,000 characters",
    "msg_blocks_too_long": "the message's blocks are over Slack's size limit",
    "invalid_blocks": "Slack refused the message's Block Kit blocks",
    "invalid_blocks_format": "Slack refused the message's Block Kit blocks",
}
SLACK_HOST = "slack.com"  # a response_url on it (hooks.slack.com) is moved to `base_url` (a proxy, a local fake)
EMPTY = Response(200, {}, b"")  # the answer Slack wants for a press: at once, with nothing to show
RESOLVE_CONFIRM = {
    "title": {"type": "plain_text", "text": "Resolve this alert?"},
    "text": {"type": "plain_text", "text": "It is marked resolved by hand, and everyone paged about it is told."},
    "confirm": {"type": "plain_text", "text": "Resolve"},
    "deny": {"type": "plain_text", "text": "Cancel"},
}


def signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature, version v0."""
    base = b"v0:" + _raw(timestamp) + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def _raw(header: str) -> bytes:
    """A header's value as the bytes that came (aiohttp keeps undecodable bytes as surrogates)."""
    return header.encode("utf-8", "surrogateescape")


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
        if error in RATE_ERRORS:
            return Outcome("retry", reason, retry_after_header(response) or RATE_ERRORS[error])
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
        if not self.signing_secret or not timestamp or not offered:  # an empty secret would verify anyone's HMAC
            return None
        if not hmac.compare_digest(_raw(offered), signature(self.signing_secret, timestamp, body).encode()):
            return None
        try:
            age = abs(now.timestamp() - int(timestamp))
        except (ValueError, OverflowError):
            age = float("inf")
        if age > SIGNATURE_WINDOW_S:
            shown = _raw(timestamp)[:40].decode("utf-8", "replace")
            reason = f"X-Slack-Request-Timestamp {shown!r} is not within 5 minutes of now ({now.isoformat()})"
            return Clicked(Response(401, {"Content-Type": "text/plain; charset=utf-8"}, reason.encode()))
        press = _press(body)
        if press is None:  # signed, but not one of our buttons (another interaction of the same app): nothing to do
            return Clicked(EMPTY)
        click, response_url, message = press
        answer = await act(click)
        if not response_url:  # nothing to update the message through (Slack sends one with every message press)
            return Clicked(EMPTY)
        reply = _updated(message, answer, now) if answer.done else _ephemeral(answer)
        url = self._response_url(response_url)

        async def update(session: aiohttp.ClientSession) -> None:
            async with session.post(url, json=reply, raise_for_status=True):
                pass

        return Clicked(EMPTY, update)

    def _response_url(self, url: str) -> str:
        """Slack's response_url, moved to `base_url` when the channel has one (a proxy, a local fake); a URL that
        is not on Slack's hosts is the one to use as it is."""
        try:
            host = (urlsplit(url).hostname or "").lower()
            return rebase(url, self.base_url) if host == SLACK_HOST or host.endswith("." + SLACK_HOST) else url
        except ValueError:  # not a URL (the update then fails, and is logged): the press itself is done
            return url


def _payload(body: bytes) -> object:
    """The interaction: the JSON in the form field `payload` (application/x-www-form-urlencoded, UTF-8), or a JSON
    body as it stands (as Slack's Bolt also takes one)."""
    text = body.decode("utf-8")
    if text.lstrip().startswith("{"):
        return json.loads(text)
    payload = parse_qs(text, keep_blank_values=True, errors="strict").get("payload")
    return json.loads(payload[0]) if payload else None


def _press(body: bytes) -> tuple[Click, str, dict] | None:
    """The press in a block_actions payload: the Click, its response_url ("" when it has none) and the message
    pressed ({} when the payload does not carry it); None when it is not a press of one of this channel's buttons."""
    try:
        payload = _payload(body)
    except (ValueError, RecursionError):  # not UTF-8, not a form, not JSON (ValueError covers UnicodeDecodeError)
        return None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    actions, user = payload.get("actions"), payload.get("user")
    ours = (
        [
            a
            for a in actions
            if isinstance(a, dict) and isinstance(a.get("action_id"), str) and a["action_id"] in ACTIONS
        ]
        if isinstance(actions, list)
        else []
    )
    if not ours or not isinstance(user, dict) or not isinstance(user.get("id"), str) or not user["id"]:
        return None
    action = ours[0]
    value = str(action.get("value") or "").strip()  # the alert's id, as the button was sent
    if not (value.isdecimal() and len(value) <= 18):
        return None
    name = next((user[key] for key in ("username", "name") if isinstance(user.get(key), str) and user[key]), "")
    click = Click("slack_user_id", user["id"], ACTIONS[action["action_id"]], int(value), name)
    response_url = payload.get("response_url")
    message = payload.get("message")
    return click, response_url if isinstance(response_url, str) else "", message if isinstance(message, dict) else {}


def _updated(message: dict, answer: ClickAnswer, now: datetime) -> dict:
    """The pressed message in place: its buttons gone, a line saying what was done, by whom and when. The blocks
    drop the block_ids Slack gave them: an updated message should get new ones (Block Kit's reference)."""
    line = f"{escape(answer.text.rstrip('.'))} (via Slack) at {when(now)}"
    blocks = message.get("blocks")
    kept = [b for b in blocks if isinstance(b, dict) and b.get("type") != "actions"] if isinstance(blocks, list) else []
    blocks = [{key: value for key, value in block.items() if key != "block_id"} for block in kept]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": line}]})
    text = message.get("text")
    return {"replace_original": True, "text": text if isinstance(text, str) and text else answer.text, "blocks": blocks}


def _ephemeral(answer: ClickAnswer) -> dict:
    """Why nothing was done, for the presser's eyes only; the message stays as it was."""
    return {"response_type": "ephemeral", "replace_original": False, "text": escape(answer.text)}


CHANNEL = SlackAppChannel
