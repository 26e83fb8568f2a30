"""The episodes of a SQLite history since a moment, for `assess` (a PostgreSQL history: its `history mirror` copy)."""

import json
import sqlite3
from datetime import datetime
from pathlib import Path

from amcompanion.quality.findings import Episode
from amcompanion.receiver.timeutil import iso, parse_iso


def episodes(path: Path, since: datetime) -> list[Episode]:
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT alertname, fingerprint, labels, starts_at, resolved_at, acked_at, first_notice_at FROM alerts"
            " WHERE starts_at >= ? ORDER BY starts_at",
            (iso(since),),
        ).fetchall()
    finally:
        conn.close()
    return [
        Episode(
            alertname=name,
            fingerprint=fingerprint,
            labels=json.loads(labels),
            starts_at=parse_iso(starts_at),
            ended_at=parse_iso(resolved_at) if resolved_at else None,
            acked_at=parse_iso(acked_at) if acked_at else None,
            first_notice_at=parse_iso(first_notice_at),
        )
        for name, fingerprint, labels, starts_at, resolved_at, acked_at, first_notice_at in rows
    ]
