"""Buttons pressed in chat messages (Slack, Feishu): the chat service calls back, the channel that sent the message
verifies the call and reads who pressed what, and the receiver acts as that person.

A press is acted on only for a person: the presser's chat id (a contact field such as `slack_user_id`) must name a
contact who may act (a responder or an admin). Anyone else is answered in the chat with why nothing happened;
nothing is ever acknowledged anonymously. Acks are recorded `via: chat` under the person.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import aiohttp
from aiohttp import web

from amcompanion.catalog.model import display_name
from amcompanion.receiver.channels import CHANNEL_TYPES
from amcompanion.receiver.channels.base import Click, ClickAnswer, Interactive
from amcompanion.receiver.service import RECEIVER_KEY, Receiver
from amcompanion.receiver.store import Conflict, NotFound

log = logging.getLogger("amcompanion.receiver")
# every path a channel type takes its button presses on, registered whether or not a channel of it is configured
# (a reload may add one): a call to a path no configured channel takes is refused like a forged one
CALLBACK_PATHS = sorted({cls.callback_path for cls in CHANNEL_TYPES.values() if hasattr(cls, "callback_path")})
FOLLOWUPS = web.AppKey("chat_followups", set)  # updates of the pressed messages, sent after the answer
FOLLOWUP_TIMEOUT_S = 10.0
ACTING_ROLES = ("responder", "admin")


def add_routes(app: web.Application) -> None:
    app[FOLLOWUPS] = set()
    for path in CALLBACK_PATHS:
        app.router.add_post(path, button_pressed)
    app.on_shutdown.append(_finish_followups)  # before the receiver stops and its client session closes


async def button_pressed(request: web.Request) -> web.Response:
    """The chat service's call: each configured channel that takes this path is asked in turn whether the call is
    its own (it verifies the signature); the first that takes it answers. None does: 401."""
    receiver = request.app[RECEIVER_KEY]
    body = await request.read()
    now = receiver.clock.now()

    async def act(click: Click) -> ClickAnswer:
        return await press(receiver, click)

    for channel in _interactive(receiver, request.path):
        clicked = await channel.answer_click(request.headers, body, now, act)
        if clicked is None:
            continue
        if clicked.after is not None and receiver.outbox.session is not None:
            task = asyncio.create_task(_follow_up(clicked.after, receiver.outbox.session))
            request.app[FOLLOWUPS].add(task)
            task.add_done_callback(request.app[FOLLOWUPS].discard)
        answer = clicked.response
        return web.Response(status=answer.status, headers=dict(answer.headers), body=answer.body)
    receiver.metrics.auth_failures.labels(request.path.strip("/").split("/")[0]).inc()
    return web.json_response(
        {"error": f"the call to {request.path} is not signed by any chat app this receiver sends through"}, status=401
    )


def _interactive(receiver: Receiver, path: str) -> Iterator[Interactive]:
    for lane in receiver.outbox.lanes.values():
        if getattr(lane.channel, "callback_path", None) == path:
            yield lane.channel  # type: ignore[misc]


async def press(receiver: Receiver, click: Click) -> ClickAnswer:
    """Do what the button says as the contact the presser is; or say why not, for the chat to show."""
    contacts = receiver.config.contacts
    ids = {click.user_field: click.user_id, **click.other_ids}
    person = next(
        (name for name, fields in contacts.items() if any(fields.get(f) == value for f, value in ids.items())), None
    )
    presser = click.user_name or click.user_id
    if person is None:
        log.warning("chat: %s (%s %s) pressed %s on alert %s: not a contact", presser, click.user_field,
                    click.user_id, click.action, click.alert_id)  # fmt: skip
        return ClickAnswer(
            False,
            f"Not done: {presser} is not a contact of amcompanion (no contact has {click.user_field}: "
            f"{click.user_id}), so nobody was recorded as acknowledging. Ask an admin to add it to your contact.",
        )
    name = display_name(contacts, person)
    if receiver.config.role(person) not in ACTING_ROLES:
        return ClickAnswer(False, f"Not done: {name} may view alerts but not act on them (role viewer).", person)
    try:
        if click.action == "resolve":
            alert = await receiver.resolve(click.alert_id, person)
            return ClickAnswer(True, f"Resolved by {name}.", person, alert)
        alert = await receiver.acknowledge(click.alert_id, person, "chat", "")
    except NotFound:
        return ClickAnswer(False, f"Not done: alert {click.alert_id} is not in this receiver's history.", person)
    except Conflict as exc:
        return ClickAnswer(False, f"Not done: {exc}.", person)
    if alert["already_acknowledged"]:
        by = display_name(contacts, alert["acked_by"])
        return ClickAnswer(True, f"Already acknowledged by {by}.", person, alert)
    return ClickAnswer(True, f"Acknowledged by {name}.", person, alert)


async def _follow_up(after, session: aiohttp.ClientSession) -> None:  # type: ignore[no-untyped-def]
    """The message update after a press: a failure is logged, the press itself is already done."""
    try:
        async with asyncio.timeout(FOLLOWUP_TIMEOUT_S):
            await after(session)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("chat: the pressed message could not be updated: %s", exc)


async def _finish_followups(app: web.Application) -> None:
    pending = list(app[FOLLOWUPS])
    if pending:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FOLLOWUP_TIMEOUT_S):
                await asyncio.gather(*pending, return_exceptions=True)
