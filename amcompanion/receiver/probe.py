"""`amcompanion channels test`: one message through a configured channel, and what its API answered.

It goes through the same channel code and template as a page would, so a wrong secret, an unknown robot
or a keyword rule shows up here, before an incident does.
"""

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from amcompanion.catalog.reader import RECIPIENT_NEEDS
from amcompanion.receiver.channels import CHANNEL_TYPES, Outcome, Response
from amcompanion.receiver.config import ReceiverConfig
from amcompanion.receiver.messages import Renderer, TemplateProblem
from amcompanion.receiver.timeutil import iso
from amcompanion.wording import did_you_mean


class ProbeError(Exception):
    pass


def _needs_a_person(kind: str, settings: dict[str, object]) -> bool:
    """A channel that can only send to someone: SMS and voice always, email unless its settings name a `to`."""
    return RECIPIENT_NEEDS[kind][1] or (kind == "email" and not settings.get("to"))


@dataclass(frozen=True)
class ProbeResult:
    response: Response | None  # None when the request did not get an answer
    outcome: Outcome


def probe_alert(now: datetime) -> dict:
    labels = {"alertname": "AmcompanionChannelTest", "severity": "info", "source": "amcompanion channels test"}
    return {
        "id": 0,
        "fingerprint": "0" * 16,
        "alertname": labels["alertname"],
        "severity": "info",
        "labels": labels,
        "annotations": {
            "summary": "Test message from `amcompanion channels test`: this channel works.",
            "description": "No alert is firing; nothing to acknowledge.",
        },
        "policy": "",
        "status": "firing",
        "starts_at": iso(now),
        "ends_at": None,
        "resolved_at": None,
        "escalation_level": 0,
        "generator_url": "",
        "alertmanager_url": "",
    }


async def probe(config: ReceiverConfig, name: str, recipient: str | None, timeout: float = 15.0) -> ProbeResult:
    settings = config.channels.get(name)
    if settings is None:
        known = ", ".join(sorted(config.channels)) or "none"
        raise ProbeError(
            f'no channel "{name}" in {config.source}{did_you_mean(name, config.channels)} (it has: {known})'
        )
    kind = str(settings["type"])
    sender = CHANNEL_TYPES.get(kind)
    if sender is None:
        raise ProbeError(f'channel "{name}" has type "{kind}", which this amcompanion cannot send to')
    contacts = ", ".join(sorted(config.contacts)) or "none"
    if recipient is not None and recipient not in config.contacts:
        raise ProbeError(f'no contact "{recipient}"{did_you_mean(recipient, config.contacts)} (known: {contacts})')
    if recipient is None and _needs_a_person(kind, settings):
        raise ProbeError(
            f'nothing was sent: channel "{name}" ({kind}) sends to a person; say whom with --to CONTACT '
            f"(the contacts: {contacts})"
        )
    channel = sender(name, settings)
    try:
        renderer = Renderer({name: settings}, Path(config.source).parent if config.source else None)
    except TemplateProblem as exc:
        raise ProbeError(str(exc)) from None
    now = datetime.now(UTC)
    message = renderer.render(
        name, "firing", [probe_alert(now)], recipient or "", config.contacts.get(recipient or "", {}), ""
    )
    message = replace(message, external_url=config.external_url)
    async with aiohttp.ClientSession() as session:
        try:
            async with asyncio.timeout(timeout):
                response = await channel.send(session, message)
        except TimeoutError:
            return ProbeResult(None, Outcome("retry", f"no answer within {timeout:g} s"))
        except (aiohttp.ClientError, OSError) as exc:
            return ProbeResult(None, Outcome("retry", f"{type(exc).__name__}: {exc}"))
    return ProbeResult(response, channel.classify(response))
