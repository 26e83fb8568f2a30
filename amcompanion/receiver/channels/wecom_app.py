"""WeChat Work / WeCom application messages (企业微信应用消息): a markdown message, or a text card whose button
is the ack link, sent by the company's own app to a member (`touser`: the contact's `wecom_user_id`), or to
the channel's departments and tags (`toparty`, `totag`) when a step names no contacts.

Two calls: `gettoken` (corp id + the app's secret) gives an access token for `expires_in` seconds (7200), kept
here until five minutes before it ends, for every send; `message/send` sends with it. WeCom may end a token
early, so a send told 40014 (invalid) or 42001 (expired) fetches another and tries once more. Like the
group robot it answers HTTP 200 with `errcode`. No SDK: the calls are two plain JSON requests (the vendors'
SDKs are blocking, `requests`-based), made on the outbox's aiohttp session; the JSON is sent as UTF-8, as
wechatpy sends it (WeCom's error codes list `\\uXXXX` escapes as refused, 40033).

What WeCom answers and what it means here:
- -1 (busy), 45009 (a call over a limit; a minute's limit lifts after the minute), 45033 (too many at once)
  and 5xx retry. The app may send a member 30 messages a minute and 1,000 an hour (WeCom drops the excess
  without delivering it) and 200 per seat a day: a channel `rate_limit` of `30/min` stays within them.
- 60020: the call came from an IP that is not one of the app's trusted IPs (企业可信IP; apps created since
  2022-06-20 need them): permanent, with the IP WeCom saw, which is the receiver's egress IP to add.
- 40001/40013 (secret, corp id), 40056/301002 (agent id), 81013 (no recipient valid or visible to the app),
  82001, 40008, 44004, 45002 and the like are permanent, explained.
- errcode 0 with recipients in `invaliduser`/`invalidparty`/`invalidtag`/`unlicenseduser`: WeCom delivered
  to the rest. A contact's message has one recipient, so a listed user means it reached nobody: permanent
  (WeCom usually says 81013 then). A departments/tags message that reached some of them is delivered (a
  retry would repeat it to those it reached), its members without a licence listed in `unlicenseduser` too:
  ok, with the skipped ids in the reason. (`send` returns the answer as a `Sent`, which names the member a
  contact's message was for, so that classify can tell the two apart.)

Markdown shows in the WeCom app only (not in WeChat's 企业微信 plugin); a text card shows in both. Its
description is the text as plain lines (`<br>` breaks, as WeCom's card takes them), without the title and
the ack link, which are the card's own; its button reads 确认 (WeCom cuts a button's text at 4 characters,
"Acknowledge" would read "Ackn"), or 详情 and opens the console when there is no ack link (a resolve, a
digest). `enable_duplicate_check` is left off: a retry is never the same
body (its ack link is signed anew), and a repeated page must not be suppressed.

Sources: developer.work.weixin.qq.com/document/path/91039 (gettoken, token lifetime and early expiry),
/path/90236 (message/send: recipients, markdown 2,048 bytes, textcard title 128 bytes, description 512
bytes, button 4 characters, the answer's invalid lists and 81013, rates), /path/90313 (error codes: 60020
and the trusted IP, 45009, 301002, 81013...).
"""

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from amcompanion.receiver.channels.base import (
    TRUNCATED,
    CachedToken,
    Message,
    Outcome,
    Response,
    coded_answer,
    json_answer,
    not_sent,
    not_sent_outcome,
    rebase,
    truncate,
)
from amcompanion.receiver.channels.wecom import plain

API = "https://qyapi.weixin.qq.com"
MARKDOWN_BYTES = 2048
TITLE_BYTES, DESCRIPTION_BYTES = 128, 512
ACK_BUTTON, DETAILS_BUTTON = "确认", "详情"  # a card's button takes 4 characters: "Acknowledge" would be cut
LINE_BREAK = "<br>"
TOKEN_LIFETIME = 7200  # seconds, when gettoken does not say
TOKEN_REFUSED = {40014, 42001}  # invalid, expired: fetch another token and send again
# rate limited: seconds until it lifts (45011 is WeChat's minute quota, not in WeCom's list: read alike if it comes)
_WAITS = {45009: 60.0, 45011: 60.0, 45033: 5.0}
_REASONS = {
    -1: "WeCom is busy",
    40014: "WeCom refused the access token again after a new one was fetched",
    42001: "WeCom refused the access token again after a new one was fetched",
    40001: "invalid corp_secret: it is not this app's Secret (reset, or the app disabled?)",
    40091: "invalid corp_secret",
    40013: "invalid corp_id: see My Company (我的企业) in the admin console",
    40056: "invalid agent_id: no such app in this company",
    41011: "agent_id missing",
    301002: "agent_id names another app than the one corp_secret belongs to",
    48002: "the app may not send messages (API permission)",
    60011: "the app may not reach these recipients: they are outside its visible range (可见范围)",
    81013: "no recipient is valid: unknown user, department or tag, or outside the app's visible range",
    82001: "no recipient given",
    40033: "the request has characters WeCom refuses",
    40003: "invalid user id",
    40008: "invalid msgtype (markdown or textcard)",
    44004: "empty content",
    45002: "content too large",
    40058: "invalid parameter",
    41010: "the text card has no url",
}
_SKIPPED = {
    "invaliduser": "unknown users, or outside the app's visible range",
    "unlicenseduser": "users without a WeCom license for this app",
    "invalidparty": "unknown departments",
    "invalidtag": "unknown tags",
}
_FROM_IP = re.compile(r"from ip: ([0-9A-Fa-f.:]+)")


@dataclass(frozen=True)
class Sent(Response):
    """message/send's answer (or gettoken's), with the member it was for ("" for departments and tags): classify
    reads the answer's skipped recipients for what they mean to this message."""

    touser: str = ""


def _lifetime(expires_in: object) -> float:
    """gettoken's `expires_in` in seconds (a number, or a string of one); WeCom's 7200 when it is neither."""
    if isinstance(expires_in, int | float | str) and not isinstance(expires_in, bool):
        try:
            seconds = float(expires_in)
        except ValueError:
            return float(TOKEN_LIFETIME)
        if 0 < seconds < 10 * TOKEN_LIFETIME:
            return seconds
    return float(TOKEN_LIFETIME)


def _id_list(ids: object) -> list[str]:
    """A `|`-separated id list (`1|2`, `1 | 2`, a lone number) as WeCom reads one."""
    return [part.strip() for part in str(ids or "").split("|") if part.strip()]


class WeComAppChannel:
    type = "wecom_app"

    def __init__(self, name: str, settings: dict[str, object], monotonic: Callable[[], float] = time.monotonic):
        """`monotonic` is the clock the access token's lifetime is kept on (tests pass their own)."""
        self.name = name
        self.corp_id = str(settings["corp_id"])
        self.corp_secret = str(settings["corp_secret"])
        agent = str(settings["agent_id"]).strip()
        # an integer on the wire; anything else is sent as written, and WeCom's 40056 names the mistake
        self.agent_id: int | str = int(agent) if agent.isdigit() else agent
        self.msgtype = str(settings.get("msgtype") or "markdown")
        self.parties, self.tags = _id_list(settings.get("toparty")), _id_list(settings.get("totag"))
        self.token_url = rebase(f"{API}/cgi-bin/gettoken", settings.get("base_url"))
        self.send_url = rebase(f"{API}/cgi-bin/message/send", settings.get("base_url"))
        self.token = CachedToken(self._fetch_token, monotonic=monotonic)

    async def _fetch_token(self, session: aiohttp.ClientSession) -> tuple[str, float] | Response:
        params = {"corpid": self.corp_id, "corpsecret": self.corp_secret}
        async with session.get(self.token_url, params=params) as response:
            answer = Response(response.status, response.headers, await response.read())
        fields = json_answer(answer)
        token = fields.get("access_token")
        if answer.status != 200 or fields.get("errcode", 0) != 0:
            return answer  # refused (a wrong secret or corp id, a 5xx): classify reads why
        if not (isinstance(token, str) and token):
            # "ok" but no token: not an answer to deliver on (classify retries it)
            return Response(answer.status, answer.headers, b"gettoken gave no access_token: " + answer.body)
        return token, _lifetime(fields.get("expires_in"))

    def recipients(self, message: Message) -> dict[str, str] | Response:
        """`touser` for a contact; the channel's departments and tags for a step that names none."""
        if message.recipient_name:
            user = message.recipient.get("wecom_user_id", "").strip()
            if not user:
                return not_sent(
                    f"not sent: {message.recipient_name} has no WeCom user id (contact field `wecom_user_id`)"
                )
            return {"touser": user}
        if not (self.parties or self.tags):
            return not_sent(
                f"not sent: no contact is named, and channel {self.name} has no `toparty` or `totag` to send to"
            )
        return {key: "|".join(ids) for key, ids in (("toparty", self.parties), ("totag", self.tags)) if ids}

    def content(self, message: Message) -> dict[str, object]:
        if self.msgtype == "textcard":
            return {"msgtype": "textcard", "textcard": card(message)}
        marker = TRUNCATED + (f"\n[Acknowledge]({message.ack_url})" if message.ack_url else "")
        # an unknown msgtype is sent as it is: WeCom's 40008 then names the mistake (`amcompanion channels test`)
        return {
            "msgtype": self.msgtype,
            self.msgtype: {"content": truncate(message.text, MARKDOWN_BYTES, "bytes", marker)},
        }

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        recipients = self.recipients(message)
        if isinstance(recipients, Response):
            return recipients
        body = {**recipients, "agentid": self.agent_id, **self.content(message)}
        token, answer = await self._try(session, body)
        if token and answer.status == 200 and json_answer(answer).get("errcode") in TOKEN_REFUSED:
            self.token.forget(token)  # ended early, as WeCom may do: fetch another and send again, once
            token, answer = await self._try(session, body)
        return Sent(answer.status, answer.headers, answer.body, recipients.get("touser", ""))

    async def _try(self, session: aiohttp.ClientSession, body: dict[str, object]) -> tuple[str, Response]:
        """The token used (empty when gettoken refused one) and the answer: message/send's, or gettoken's."""
        token = await self.token.get(session)
        if isinstance(token, Response):
            return "", token
        data = json.dumps(body, ensure_ascii=False).encode()  # UTF-8: WeCom's 40033 refuses \uXXXX escapes
        params, headers = {"access_token": token}, {"Content-Type": "application/json"}
        async with session.post(self.send_url, params=params, data=data, headers=headers) as response:
            return token, Response(response.status, response.headers, await response.read())

    def classify(self, response: Response) -> Outcome:
        if (refused := not_sent_outcome(response)) is not None:
            return refused
        settled, code, text = coded_answer(response)
        if settled is not None:
            touser = response.touser if isinstance(response, Sent) else None
            return settled if settled.result != "ok" else self._delivered(json_answer(response), touser)
        reason = f"errcode {code}: {text[:300]}"
        if code in _WAITS:
            return Outcome("retry", f"rate limited ({reason})", _WAITS[code])
        if code == -1 or code in TOKEN_REFUSED:
            return Outcome("retry", f"{_REASONS[code]} ({reason})")
        if code == 60020:
            seen = _FROM_IP.search(text)
            ip = seen.group(1) if seen else "the receiver's egress IP"
            hint = (
                f"WeCom refuses calls from {ip}: add it to the app's trusted IPs (企业可信IP, on the app's page in "
                "the admin console; apps created since 2022-06-20 need them)"
            )
            return Outcome("permanent", f"{hint} ({reason})")
        if code in _REASONS:
            return Outcome("permanent", f"{_REASONS[code]} ({reason})")
        return Outcome("permanent", reason)

    def _delivered(self, answer: dict, touser: str | None) -> Outcome:
        """errcode 0: delivered, unless every recipient is listed as skipped (then it reached nobody). `touser`: the
        member a contact's message went to, "" for the channel's departments and tags, None when not known (an
        answer read on its own: user ids listed then mean a contact's message, which has only them)."""
        skipped = {key: str(answer.get(key) or "") for key in _SKIPPED}
        named = [f"{_SKIPPED[key]}: {ids}" for key, ids in skipped.items() if ids]
        if not named:
            return Outcome("ok")
        users_skipped = bool(skipped["invaliduser"] or skipped["unlicenseduser"])
        to_user = bool(touser) if touser is not None else users_skipped or not (self.parties or self.tags)
        if to_user:  # a contact's message has one user: listed as skipped (invalid, unlicensed), it reached nobody
            nobody = users_skipped
        else:  # unlicensed members of a department are skipped, the rest reached: only all groups skipped is nobody
            parties_skipped = set(self.parties) <= set(_id_list(skipped["invalidparty"]))
            nobody = parties_skipped and set(self.tags) <= set(_id_list(skipped["invalidtag"]))
        if nobody:
            return Outcome("permanent", f"reached nobody: WeCom skipped {'; '.join(named)}")
        return Outcome("ok", f"delivered, but WeCom skipped {'; '.join(named)}")


def card(message: Message) -> dict[str, str]:
    """A text card: the title, the text as plain lines, and a button to the ack link (else the console)."""
    text = message.text
    if message.ack_url:  # the button is the ack link: the text's own link to it would be said twice
        text = re.sub(r"\[[^\]]*\]\(" + re.escape(message.ack_url) + r"\)", "", text)
    lines = plain(text).strip().splitlines()
    if lines and lines[0].strip() == message.title:  # the card shows the title above the description
        lines = lines[1:]
    url = message.ack_url or (f"{message.external_url.rstrip('/')}/console" if message.external_url else "")
    return {
        "title": truncate(message.title, TITLE_BYTES, "bytes", marker="…"),
        "description": _card_lines("\n".join(lines).strip()),
        "url": url,
        "btntxt": ACK_BUTTON if message.ack_url else DETAILS_BUTTON,
    }


def _card_lines(text: str) -> str:
    """`text` with `<br>` line breaks, cut so that it fits the card's 512 bytes once the breaks are in."""

    def cut(budget: int) -> str:
        return truncate(text, budget, "bytes").replace("\n", LINE_BREAK)

    shortest, longest = 0, DESCRIPTION_BYTES  # the most of the text that fits: more text is never shorter
    while shortest < longest:
        middle = (shortest + longest + 1) // 2
        shortest, longest = (
            (middle, longest) if len(cut(middle).encode()) <= DESCRIPTION_BYTES else (shortest, middle - 1)
        )
    return cut(shortest)


CHANNEL = WeComAppChannel
