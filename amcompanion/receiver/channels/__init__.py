"""Delivery channels, one module each, behind one small protocol (as Alertmanager's notify/<integration>).

A channel turns a rendered message into one API call (`send`) and reads the answer (`classify`): ok, retry
(with the wait the service asked for, if any) or permanent failure with the reason. Retries, backoff,
rate limits and digests are the outbox's job, the same for every channel.
"""

from collections.abc import Callable

from amcompanion.receiver.channels.base import Channel, Message, Outcome, Response
from amcompanion.receiver.channels.webhook import WebhookChannel

# channel type (the catalog's `type:`) → constructor taking the channel's settings
CHANNEL_TYPES: dict[str, Callable[[str, dict[str, object]], Channel]] = {
    "webhook": WebhookChannel,
}

__all__ = ["CHANNEL_TYPES", "Channel", "Message", "Outcome", "Response"]
