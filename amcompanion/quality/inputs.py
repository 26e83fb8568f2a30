"""What `amcompanion quality` and `amcompanion tune` both read: the period and display time zone their arguments
name, the catalog's `for` per alert, and the history's episodes of the period; bad input as `Refused` (the exit
status and the line to print), for the CLI to say."""

from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from amcompanion.catalog.durations import parse_duration
from amcompanion.catalog.model import Catalog
from amcompanion.quality.findings import Episode


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def period(since: str, time_zone: str, now: datetime | None = None) -> tuple[datetime, tzinfo]:
    """The start of the period `since` (a duration) before now, and the display time zone."""
    since_ms = parse_duration(since)
    if not since_ms:
        raise Refused(2, f"--since: expected a duration such as 30d, got {since!r}")
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Refused(2, f"--time-zone: no time zone {time_zone!r} (e.g. UTC, Europe/Berlin)") from None
    return (now or datetime.now(UTC)) - timedelta(milliseconds=since_ms), zone


def catalog_fors(catalog: Catalog) -> dict[str, float]:
    """Each catalog alert's `for` in seconds (of its first variant): what assess compares firing times with."""
    fors: dict[str, float] = {}
    for alert in catalog.alerts():
        fors.setdefault(alert.name, alert.for_ms / 1000)
    return fors


def history(db: Path, since: datetime) -> list[Episode]:
    import sqlite3

    from amcompanion.quality.read import episodes

    if not db.is_file():
        raise Refused(1, f"no history database at {db} (the receiver's --db)")
    try:
        return episodes(db, since)
    except sqlite3.Error as exc:
        raise Refused(1, f"{db}: {exc}") from None
