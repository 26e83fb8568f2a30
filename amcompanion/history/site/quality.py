"""The alert quality page's content: `amcompanion quality`'s assessment (the same code, the same thresholds) of the
period, as rows a template lays out. Drills are left out by the reading, as for the command."""

from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from amcompanion.history.words import duration_words
from amcompanion.quality.findings import Quality, Thresholds
from amcompanion.quality.read import assess_history
from amcompanion.quality.text import findings_said  # the command's own sentences: the page says what it says

LIMITS = Thresholds()


@dataclass(frozen=True)
class AlertRow:
    alertname: str
    fired: int
    acknowledged: str  # "3 of 12"
    mtta: str
    mttr: str
    firing: str
    findings: list[str]  # the finding names, as badges
    reasons: list[str]  # each finding with its figures


def assessed(path: Path, since: datetime, zone: tzinfo, catalog_for_s: dict[str, float] | None = None) -> Quality:
    """`catalog_for_s` (from `history serve --catalog`): also the catalog's alerts that never fired."""
    return assess_history(path, since, catalog_for_s, LIMITS, zone)


def rows(quality: Quality) -> list[AlertRow]:
    return [
        AlertRow(
            a.alertname,
            a.fired,
            f"{a.acknowledged} of {a.fired}",
            duration_words(a.median_ack_s),
            duration_words(a.median_resolve_s),
            duration_words(a.median_firing_s),
            list(a.findings),
            findings_said(a, LIMITS),
        )
        for a in quality.alerts
    ]


def cascade_window() -> str:
    return duration_words(LIMITS.cascade_window.total_seconds())
