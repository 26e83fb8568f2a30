"""The episodes of a SQLite history since a moment, for `assess` (a PostgreSQL history: its `history mirror` copy).

Drills are left out here, in SQL; the labels stay JSON text until something reads them (the cascades' shared labels
do, for few episodes): parsing a million episodes' labels would be most of the reading."""

import json
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path

from amcompanion.quality.findings import Episode
from amcompanion.receiver.timeutil import iso

_parse = datetime.fromisoformat


class JsonLabels(Mapping[str, str]):
    """A history row's labels, parsed when first read."""

    __slots__ = ("_parsed", "_text")

    def __init__(self, text: str):
        self._text = text
        self._parsed: dict[str, str] | None = None

    def _labels(self) -> dict[str, str]:
        if self._parsed is None:
            self._parsed = json.loads(self._text)
        return self._parsed

    def __getitem__(self, key: str) -> str:
        return self._labels()[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        if self._parsed is None and f'"{key}"' not in self._text:  # not there: no need to parse
            return default
        return self._labels().get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels())

    def __len__(self) -> int:
        return len(self._labels())


def episodes(path: Path, since: datetime) -> list[Episode]:
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        # In id order from the first id in the period: the table read front to back, not row by row through the
        # index on starts_at (alerts are added as they come, so few rows before the period's end are read in vain)
        stamp = iso(since)
        rows = conn.execute(
            "SELECT alertname, fingerprint, labels, starts_at, resolved_at, acked_at, first_notice_at FROM alerts"
            " WHERE id >= (SELECT MIN(id) FROM alerts WHERE starts_at >= ?) AND starts_at >= ?"
            " AND COALESCE(json_extract(labels, '$.drill'), '') <> 'true'",
            (stamp, stamp),
        ).fetchall()
        rows.sort(key=lambda row: row[3])
    finally:
        conn.close()
    return [
        Episode(
            name,
            fingerprint,
            JsonLabels(labels),
            _parse(starts_at),
            _parse(resolved_at) if resolved_at else None,
            _parse(acked_at) if acked_at else None,
            _parse(first_notice_at),
        )
        for name, fingerprint, labels, starts_at, resolved_at, acked_at, first_notice_at in rows
    ]
