"""The episodes of a SQLite history since a moment, and their quality (a PostgreSQL history: its `history mirror`
copy).

Drills are left out. The period comes as one row of columns, not a row per alert: Python's sqlite3 costs more per
row than SQLite takes to join a value to a column (texts as JSON arrays, safe for any text; times, ISO-8601 and never
with a comma, joined by commas). `assess_history` reads the times into NumPy as the receiver writes them and never
makes an Episode (a million of them cost more than assessing them); labels are read for the few episodes whose
labels are looked at (the cascades' pairs). `episodes` makes them, with the labels as JSON text parsed when first
read."""

import json
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import datetime, tzinfo
from functools import cache, partial
from itertools import compress
from operator import attrgetter
from pathlib import Path

import numpy as np
import orjson

from amcompanion.quality.findings import Columns, Episode, Flags, Ints, Quality, Thresholds, assess, assess_columns
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


# A stamp as the receiver writes them (`iso`) and the comma group_concat puts after it, where its marks are (not its
# digits), and what stands in the place of a stamp that is not there (SQL NULL), as long as one
_STAMP = np.frombuffer(b"0000-00-00T00:00:00.000000Z,", np.uint8)
_MARKS = np.array([place for place, char in enumerate(_STAMP.tobytes()) if not chr(char).isdigit()])
_NONE = " " * 27
_NONE_ROW = np.frombuffer(f"{_NONE},".encode(), np.uint8)


def _stamps(text: str, count: int, always: bool) -> tuple[Ints, Flags] | None:
    """`count` stamps joined by commas as microseconds since the epoch (exact: SQLite's date functions round to
    milliseconds), and where there is one (`_NONE` where not, unless `always`); None when one is not as `iso` writes
    them, to be read as text. Each is checked in its fixed place (its marks, `Z` and a comma after it: with no comma
    elsewhere, each is 27 characters long), then read by NumPy's own ISO 8601 parser, which refuses what is not a
    time (a digit that is not one, a 13th month)."""
    if not text.isascii() or len(text) != len(_STAMP) * count - 1:
        return None
    rows = np.frombuffer((text + ",").encode(), np.uint8).reshape(count, len(_STAMP))
    there = rows[:, 0] != ord(" ")
    stamps = rows[there]
    if (always and not there.all()) or (rows[~there] != _NONE_ROW).any() or (stamps[:, _MARKS] != _STAMP[_MARKS]).any():
        return None
    try:  # without the Z: NumPy reads times without a zone (as UTC)
        moments = np.ascontiguousarray(stamps[:, :26]).view("S26").ravel().astype("datetime64[us]")
    except ValueError:
        return None
    values = np.zeros(count, np.int64)
    values[there] = moments.astype(np.int64)
    return values, there


# The period's alerts, in id order from the first id in the period (as in _PERIOD), and apart the ids of the drills
# among them: read from the index that holds `drill` (at a million alerts, 0.1 s less than looking into each labels).
_COLUMNS = (
    "SELECT (SELECT group_concat(id) FROM alerts WHERE starts_at >= ?1 AND drill), group_concat(id),"
    " json_group_array(alertname), json_group_array(fingerprint), group_concat(starts_at),"
    f" group_concat(COALESCE(resolved_at, '{_NONE}')), group_concat(COALESCE(acked_at, '{_NONE}')),"
    " group_concat(first_notice_at) FROM alerts"
    " WHERE id >= (SELECT MIN(id) FROM alerts WHERE starts_at >= ?1) AND starts_at >= ?1"
)


def assess_history(
    path: Path,
    since: datetime,
    catalog_for_s: Mapping[str, float] | None = None,
    thresholds: Thresholds | None = None,
    zone: tzinfo | None = None,
) -> Quality:
    """`assess(episodes(path, since), catalog_for_s, thresholds, zone)`, in a fraction of the time: the same figures,
    from columns SQLite fills (for `amcompanion quality`; at a million alerts, the difference is seconds)."""
    limits = thresholds or Thresholds()
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        try:
            drills, ids, names, fingerprints, *texts = conn.execute(_COLUMNS, (iso(since),)).fetchone()
        except sqlite3.OperationalError:  # a history from before `drill` (m0007): read as text
            return assess(episodes(path, since), catalog_for_s, limits, zone)
        if ids is None:  # no alerts in the period
            return assess([], catalog_for_s, limits, zone)
        count = ids.count(",") + 1
        stamps = [_stamps(text, count, always) for text, always in zip(texts, (True, False, False, True), strict=True)]
        if None in stamps:  # a stamp written some other way: read as text, whatever its form
            return assess(episodes(path, since), catalog_for_s, limits, zone)
        alert_ids = np.fromstring(ids, np.int64, sep=",")
        real = ~np.isin(alert_ids, np.fromstring(drills, np.int64, sep=",")) if drills else np.ones(count, bool)
        (starts, _), (ends, ended), (acks, acked), (notices, _) = ((v[real], there[real]) for v, there in stamps)
        alert_ids, kept = alert_ids[real], real.tolist()

        read: dict[int, Mapping[str, str]] = {}  # by id: each row's labels read once, one dict per distinct text
        parse = cache(json.loads)

        def labels(positions: Ints) -> list[Mapping[str, str]]:
            wanted = alert_ids[positions].tolist()
            unread = orjson.dumps(list(set(wanted).difference(read))).decode()
            query = "SELECT id, labels FROM alerts WHERE id IN (SELECT value FROM json_each(?))"
            read.update((alert_id, parse(text)) for alert_id, text in conn.execute(query, (unread,)))
            return list(map(read.__getitem__, wanted))

        columns = Columns(
            list(compress(orjson.loads(names), kept)),
            list(compress(orjson.loads(fingerprints), kept)),
            starts,
            ends,
            ended,
            acks,
            acked,
            notices,
            labels,
        )
        return assess_columns(columns, catalog_for_s, limits, zone)
    finally:
        conn.close()
