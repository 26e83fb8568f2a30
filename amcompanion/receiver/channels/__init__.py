"""Delivery channels, one module each, behind one small protocol (as Alertmanager's notify/<integration>).

A channel turns a rendered message into one API call (`send`) and reads the answer (`classify`): ok, retry
(with the wait the service asked for, if any) or permanent failure with the reason. Retries, backoff,
rate limits and digests are the outbox's job, the same for every channel.

Every module here but `base` is a channel: it names its class in `CHANNEL`, and the class its catalog
`type` in `type`. Adding a channel is adding a module (docs/channels.md).
"""

import importlib
import pkgutil
from collections.abc import Callable

from amcompanion.receiver.channels.base import Channel, Message, Outcome, Response


def _channel_types() -> dict[str, Callable[[str, dict[str, object]], Channel]]:
    types = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name == "base":
            continue
        sender = importlib.import_module(f"{__name__}.{module_info.name}").CHANNEL
        types[sender.type] = sender
    return dict(sorted(types.items()))


# channel type (the catalog's `type:`) → constructor taking the channel's name and settings
CHANNEL_TYPES = _channel_types()

__all__ = ["CHANNEL_TYPES", "Channel", "Message", "Outcome", "Response"]
