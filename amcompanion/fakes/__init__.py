"""Local stand-ins for the channels' APIs: real HTTP (or SMTP) servers on 127.0.0.1 that check what the real
service checks and answer in its wire format, errors and rate limits included. Used by tests and the demo."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Shown:
    """An accepted message as its reader would see it (the demo prints these)."""

    to: str  # the group, chat, phone number or addresses it reached
    text: str
