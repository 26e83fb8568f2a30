"""Alertmanager silences through its API v2, created when someone acknowledges with `silence`."""

import sqlite3
from datetime import timedelta
from typing import TYPE_CHECKING

import aiohttp

from amcompanion.receiver.timeutil import iso

if TYPE_CHECKING:
    from amcompanion.receiver.service import Receiver


class SilenceError(Exception):
    pass


async def create_silence(receiver: "Receiver", alert: dict, duration_ms: int, by: str, comment: str) -> str:
    """Silence exactly this alert (every label, equality matchers) for `duration_ms`; return the silence id."""
    base = (receiver.settings.alertmanager_url or alert.get("alertmanager_url") or "").rstrip("/")
    if not base:
        raise SilenceError("no Alertmanager URL: start the receiver with --alertmanager-url")
    now = receiver.clock.now()
    body = {
        "matchers": [
            {"name": name, "value": value, "isRegex": False, "isEqual": True}
            for name, value in sorted(alert["labels"].items())
        ],
        "startsAt": iso(now),
        "endsAt": iso(now + timedelta(milliseconds=duration_ms)),
        "createdBy": by,
        "comment": comment or f"acknowledged by {by} in amcompanion (alert {alert['id']})",
    }
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(f"{base}/api/v2/silences", json=body) as response,
        ):
            answer = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SilenceError(f"Alertmanager at {base} did not create the silence: {type(exc).__name__}: {exc}") from None
    if response.status != 200 or not isinstance(answer, dict) or "silenceID" not in answer:
        raise SilenceError(f"Alertmanager at {base} refused the silence: HTTP {response.status}: {answer}")
    silence_id = str(answer["silenceID"])
    await receiver.db.run(_remember, alert["id"], silence_id)
    return silence_id


def _remember(conn: sqlite3.Connection, alert_id: int, silence_id: str) -> None:
    conn.execute("UPDATE alerts SET silence_id = ? WHERE id = ?", (silence_id, alert_id))
