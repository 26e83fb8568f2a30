"""What `amcompanion quality` and `amcompanion tune` both read: the period and display time zone their arguments
name, the catalog's `for` per alert, and the history's episodes of the period; bad input as `Refused` (the exit
status and the line to print), for the CLI to say."""

from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from amcompanion.catalog.durations import parse_duration
from amcompanion.catalog.model import Catalog
from amcompanion.quality.findings import Quality, Thresholds


class Refused(Exception):
    """Bad input: `status` is the exit status (2 for arguments, 1 for a missing or broken file), the message what
    to print (error lines already placed as file:line:col for a catalog)."""

    def __init__(self, status: int, message: str, located: bool = False):
        super().__init__(message)
        self.status = status
        self.located = located  # the lines name their file and place already

    def say(self) -> str:
        return str(self) if self.located else f"error: {self}"


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


def read(
    since: str,
    time_zone: str,
    db: Path,
    catalog: Path | None,
    limits: Thresholds,
    now: datetime | None = None,
) -> tuple[datetime, tzinfo, Catalog | None, Quality]:
    """All of it, in the order a user fixes it: the arguments, the catalog (when named), then the history assessed
    (its alerts against the catalog's, when there is one)."""
    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.catalog.reader import load_catalog

    start, zone = period(since, time_zone, now)
    try:
        loaded = load_catalog(catalog) if catalog is not None else None
    except CatalogError as exc:
        lines = [str(diag) if diag.line else f"error: {diag}" for diag in exc.diagnostics]  # no place: say it is one
        raise Refused(1, "\n".join(lines), located=True) from None
    return start, zone, loaded, assessed(db, start, catalog_fors(loaded) if loaded else None, limits, zone)


def assessed(
    db: Path, since: datetime, catalog_for_s: dict[str, float] | None, limits: Thresholds, zone: tzinfo
) -> Quality:
    import sqlite3

    from amcompanion.quality.read import assess_history

    if not db.is_file():
        raise Refused(1, f"no history database at {db} (the receiver's --db)")
    try:
        return assess_history(db, since, catalog_for_s, limits, zone)
    except sqlite3.Error as exc:
        raise Refused(1, f"{db}: {exc}") from None
