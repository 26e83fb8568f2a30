"""Helpers for receiver tests: a config on disk, fake channel servers on loopback, bounded waiting."""

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.conftest import ROOT

PAYLOADS = ROOT / "tests" / "payloads"
TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def payload(name: str = "firing", **changes: object) -> dict:
    body = json.loads((PAYLOADS / f"alertmanager-0.25-{name}.json").read_text())
    body.update(changes)
    return body


def alert_payload(
    status: str, fingerprint: str, alertname: str = "DemoGaugeHigh", starts_at: str = "2026-11-22T22:47:24.568Z"
) -> dict:
    """A version-4 notification with one alert, shaped like the captured ones."""
    body = payload("firing" if status == "firing" else "resolved")
    alert = body["alerts"][0]
    alert.update(fingerprint=fingerprint, startsAt=starts_at, status=status)
    alert["labels"] = {**alert["labels"], "alertname": alertname}
    body["status"] = status
    return body


@dataclass
class FakeChannel:
    """A webhook endpoint that records what it gets and answers as scripted (then 200 when the script ends)."""

    answers: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    received: list[dict] = field(default_factory=list)
    delay: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        if self.delay:
            await asyncio.sleep(self.delay)
        status, headers, body = self.answers.pop(0) if self.answers else (200, {}, "ok")
        return web.Response(status=status, headers=headers, text=body)


def write_config(
    directory: Path, channel_urls: dict[str, str], policy: dict | None = None, **channel_extra: dict
) -> Path:
    """A receiver.yaml (as compile writes it) with webhook channels and one policy `oncall`."""
    channels = {
        name: {"type": "webhook", "url": url, **channel_extra.get(name, {})} for name, url in channel_urls.items()
    }
    names = list(channel_urls)
    policy = policy or {
        "steps": [
            {"after": "0s", "notify": [{"channel": names[0]}]},
            {"after": "10m", "notify": [{"channel": names[-1], "to": ["alice"]}]},
            {"after": "20m", "notify": [{"channel": names[-1], "to": ["alice", "bob"]}]},
        ],
        "on_resolve": "notify_previous",
    }
    config = {
        "version": 1,
        "receiver": {"url": "http://127.0.0.1:1", "external_url": "https://alerts.example.com"},
        "severities": ["info", "warning", "critical"],
        "contacts": {"alice": {"email": "alice@example.com"}, "bob": {"email": "bob@example.com"}},
        "channels": channels,
        "escalations": {"oncall": policy},
    }
    path = directory / "receiver.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


async def eventually(check: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> object:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def rows(db: Path | str, query: str, *args: object) -> list:
    """The rows of `query` (SQLite's dialect) in the history at `db`: a SQLite file, or a PostgreSQL URL."""
    if isinstance(db, str) and db.startswith("postgresql://"):
        import psycopg

        from amcompanion.receiver.postgres import Connection

        with psycopg.connect(db, autocommit=True) as conn:
            return Connection(conn).execute(query, args).fetchall()
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()
