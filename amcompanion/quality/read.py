"""The episodes of a SQLite history since a moment, and their quality (a PostgreSQL history: its `history mirror`
copy).

Drills are left out here, in SQL. The period comes as one row of columns, not a row per alert: Python's sqlite3
costs more per row than SQLite takes to join a value to a column (texts as JSON arrays, safe for any text; times,
ISO-8601 and never with a comma, joined by commas). `assess_history` asks SQLite for the times as microseconds and
never makes an Episode (a million of them cost more than assessing them); labels are read for the few episodes
whose labels are looked at (the cascades' pairs). `episodes` makes them, with the labels as JSON text parsed when
first read."""

import json
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import datetime, tzinfo
from functools import partial
from operator import attrgetter
from pathlib import Path

import orjson

from amcompanion.quality.findings import Columns, Episode, Quality, Thresholds, assess, assess_columns
from amcompanion.receiver.timeutil import iso

_parse = datetime.fromisoformat
_episode = partial(tuple.__new__, Episode)  # what Episode._make does, without its Python frame per row


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


class _SharedLabels(dict[str, JsonLabels]):
    """One JsonLabels per distinct labels text: a series' episodes share it (thousands of objects, not a million)."""

    def __missing__(self, text: str) -> JsonLabels:
        labels = self[text] = JsonLabels(text)
        return labels


# The period's alerts but drills, in id order from the first id in the period: the table read front to back, not row
# by row through the index on starts_at (alerts are added as they come, so few rows before the period's end are
# read in vain). A drill's labels name it: only those rows are parsed as JSON.
_PERIOD = (
    " FROM alerts WHERE id >= (SELECT MIN(id) FROM alerts WHERE starts_at >= ?) AND starts_at >= ?"
    " AND (instr(labels, '\"drill\"') = 0 OR COALESCE(json_extract(labels, '$.drill'), '') <> 'true')"
)


def _times(texts: str) -> list[datetime | None]:
    return [_parse(text) if text else None for text in texts.split(",")]


def episodes(path: Path, since: datetime) -> list[Episode]:
    """The episodes that started at `since` or later, drills left out, in the order they started."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        stamp = iso(since)
        names, fingerprints, labels, *times = conn.execute(
            "SELECT json_group_array(alertname), json_group_array(fingerprint), json_group_array(labels),"
            " group_concat(starts_at), group_concat(COALESCE(resolved_at, '')), group_concat(COALESCE(acked_at, '')),"
            " group_concat(first_notice_at)" + _PERIOD,
            (stamp, stamp),
        ).fetchone()
    finally:
        conn.close()
    if times[0] is None:  # no alerts in the period
        return []
    starts, resolved, acked, noticed = map(_times, times)
    found = list(
        map(
            _episode,
            zip(
                orjson.loads(names),
                orjson.loads(fingerprints),
                map(_SharedLabels().__getitem__, orjson.loads(labels)),
                starts,
                resolved,
                acked,
                noticed,
                strict=True,
            ),
        )
    )
    found.sort(key=attrgetter("starts_at"))
    return found


def _micros(column: str) -> str:
    """SQL for a stamp as microseconds since the epoch, exact: SQLite's own date functions stop at milliseconds, and
    the receiver writes every stamp one way (`iso`: 27 characters, six digits of fraction)."""
    return f"unixepoch({column}) * 1000000 + substr({column}, 21, 6)"


def _ints(text: str) -> list[int]:
    return list(map(int, text.split(",")))


def _ints_or_none(text: str) -> list[int | None]:
    return [int(value) if value else None for value in text.split(",")]


def assess_history(
    path: Path,
    since: datetime,
    catalog_for_s: Mapping[str, float] | None = None,
    thresholds: Thresholds | None = None,
    zone: tzinfo | None = None,
) -> Quality:
    """`assess(episodes(path, since), catalog_for_s, thresholds, zone)`, in about half the time: the same figures,
    from columns SQLite fills (for `amcompanion quality`; at a million alerts, the difference is seconds)."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        stamp = iso(since)
        times = ("starts_at", "resolved_at", "acked_at", "first_notice_at")
        ids, names, fingerprints, starts, ends, acks, notices, other = conn.execute(
            "SELECT group_concat(id), json_group_array(alertname), json_group_array(fingerprint),"
            f" group_concat({_micros('starts_at')}), group_concat(COALESCE({_micros('resolved_at')}, '')),"
            f" group_concat(COALESCE({_micros('acked_at')}, '')), group_concat({_micros('first_notice_at')}),"
            f" total({' OR '.join(f'length({t}) <> 27' for t in times)})" + _PERIOD,
            (stamp, stamp),
        ).fetchone()
        limits = thresholds or Thresholds()
        if other or ids is None:  # a stamp written some other way (read as text, whatever its form), or no alerts
            return assess(episodes(path, since), catalog_for_s, limits, zone)
        alert_ids = _ints(ids)

        def labels(position: int) -> Mapping[str, str]:
            (text,) = conn.execute("SELECT labels FROM alerts WHERE id = ?", (alert_ids[position],)).fetchone()
            return JsonLabels(text)

        columns = Columns(
            orjson.loads(names),
            orjson.loads(fingerprints),
            _ints(starts),
            _ints_or_none(ends),
            _ints_or_none(acks),
            _ints(notices),
            labels,
        )
        return assess_columns(columns, catalog_for_s, limits, zone)
    finally:
        conn.close()
