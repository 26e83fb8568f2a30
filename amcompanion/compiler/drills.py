"""The scheduled drill (catalog `drills:`): per policy, an alerting rule that fires once a week for a few minutes
with the labels that the catalog's routes send to that policy, so the path to everyone's first step is proven
every week. Its promtool tests prove that it fires at that minute and not the minute before or after.

The rule reads Prometheus's clock (UTC): `day_of_week()`, `hour()` and `minute()` of the evaluation time, as a
minute of the week. The labels are chosen as `amcompanion drill` chooses them, and must be live (out of quiet
hours) at that minute in January and in July, so that daylight saving time in a quiet hours' location cannot mute
the drill half of the year."""

from datetime import UTC, datetime, timedelta

from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import Catalog, Drills
from amcompanion.catalog.reader import WEEKDAYS
from amcompanion.drill.labels import ID_LABEL, summary
from amcompanion.drill.plan import Target, targets

GROUP = "amcompanion-drills"
WEEK_MINUTES = 7 * 24 * 60
MINUTE_OF_WEEK = "(day_of_week() * 1440 + hour() * 60 + minute())"
REFERENCE_WEEKS = (datetime(2026, 1, 4, tzinfo=UTC), datetime(2026, 7, 5, tzinfo=UTC))  # Sundays, winter and summer
EPOCH_MINUTE_OF_WEEK = 4 * 1440  # promtool's tests start at 1970-01-01 00:00 UTC, a Thursday


def when(drills: Drills) -> str:
    return f"{WEEKDAYS[drills.weekday].capitalize()} {drills.minute // 60:02d}:{drills.minute % 60:02d} UTC"


def expression(drills: Drills) -> str:
    start = drills.weekday * 1440 + drills.minute
    end = start + drills.lasts_ms // 60_000
    if end <= WEEK_MINUTES:
        window = f"{MINUTE_OF_WEEK} >= {start} < {end}"
    else:  # over the end of Saturday into Sunday
        window = f"{MINUTE_OF_WEEK} >= {start} or {MINUTE_OF_WEEK} < {end - WEEK_MINUTES}"
    return f"vector(1) and on () ({window})"


def plan(catalog: Catalog, config: dict) -> tuple[list[Target], list[str]]:
    """The drill's target per policy, and why a policy could not be drilled (no route, or muted at that minute)."""
    assert catalog.drills is not None
    drills = catalog.drills
    moments = [week + timedelta(days=drills.weekday, minutes=drills.minute) for week in REFERENCE_WEEKS]
    chosen, problems = [], []
    for policy in drills.escalations or list(catalog.policies):
        per_moment = [targets(config, policy, catalog.defaults.severities, moment) for moment in moments]
        live = [
            t
            for t in per_moment[0]
            if all(any(o.labels == t.labels and o.muted is None for o in f) for f in per_moment)
        ]
        if live:
            chosen.append(live[0])
        elif per_moment[0]:
            muted = sorted({t.muted or "" for found in per_moment for t in found if t.muted})
            problems.append(f"{policy}: every route to it is muted at {when(drills)} ({', '.join(muted)})")
        else:
            problems.append(f"{policy}: no route of the catalog sends alerts to it")
    return chosen, problems


def rule_labels(target: Target) -> dict[str, str]:
    return {k: v for k, v in {**target.labels, ID_LABEL: "weekly"}.items() if k != "alertname"}


def rules_document(catalog: Catalog, chosen: list[Target]) -> dict:
    assert catalog.drills is not None
    drills = catalog.drills
    rules = [
        {
            "alert": target.labels["alertname"],
            "expr": expression(drills),
            "labels": rule_labels(target),
            "annotations": {
                "summary": summary(target.policy, f"the weekly drill ({when(drills)})"),
                "description": f"amcompanion's scheduled drill: every {when(drills)}, for"
                f" {format_duration(drills.lasts_ms)}, it proves that pages reach the first step of {target.policy}."
                " Its pages and their answers are in the alert history.",
            },
        }
        for target in chosen
    ]
    return {"groups": [{"name": GROUP, "rules": rules}]}


def tests_document(catalog: Catalog, chosen: list[Target], rule_file: str) -> dict:
    """Silent the minute before, firing at the first and the last minute of the window, silent when it ends (the
    drills of one alert name checked together: promtool compares all of a name's alerts at once)."""
    assert catalog.drills is not None
    drills = catalog.drills
    start = (drills.weekday * 1440 + drills.minute - EPOCH_MINUTE_OF_WEEK) % WEEK_MINUTES or WEEK_MINUTES
    end = start + drills.lasts_ms // 60_000
    rules = rules_document(catalog, chosen)["groups"][0]["rules"]
    by_name: dict[str, list[dict]] = {}
    for rule in rules:
        by_name.setdefault(rule["alert"], []).append(
            {"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}
        )
    checks = [
        {"eval_time": format_duration(minute * 60_000), "alertname": name, "exp_alerts": firing if fires else []}
        for name, firing in by_name.items()
        for minute, fires in ((start - 1, False), (start, True), (end - 1, True), (end, False))
    ]
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": f"the weekly drill fires at {when(drills)} only",
                "interval": "1m",
                "input_series": [],
                "alert_rule_test": checks,
            }
        ],
    }
