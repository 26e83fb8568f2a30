"""`amcompanion history report`: the history pages' main figures as text, for a terminal or a weekly mail.

It runs the canned queries themselves, so its numbers are the pages' numbers; durations read as on the pages
(12 min, 3 h 24 min); drills are left out, as there."""

import sqlite3
from datetime import datetime
from pathlib import Path

from amcompanion.history.queries import QUERIES
from amcompanion.history.words import duration_words
from amcompanion.wording import plural


def _rows(conn: sqlite3.Connection, query: str, since: str) -> list[sqlite3.Row]:
    return conn.execute(QUERIES[query].sql, {"since": since, "hours": "", "min_flaps": ""}).fetchall()


def _minutes(value: float | None) -> str:
    return duration_words(None if value is None else value * 60)


def report(path: Path, since: datetime, noisy: int = 10) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        day = since.strftime("%Y-%m-%d")  # from the start of its day (UTC): the pages count whole days
        by_severity = _rows(conn, "mtta_mttr_by_severity", day)
        noisiest = _rows(conn, "noisiest_alerts", day)[:noisy]
        deliveries = _rows(conn, "deliveries_by_channel", day)
        escalations = _rows(conn, "escalations_by_policy", day)
        (firing,) = conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE starts_at >= ? AND status <> 'resolved' AND drill = 0", [day]
        ).fetchone()
    finally:
        conn.close()
    total = sum(r["alerts"] for r in by_severity)
    lines = [f"Alert history of {path} since {day} (UTC)", ""]
    split = ", ".join(f"{r['severity']} {r['alerts']}" for r in by_severity) or "none"
    lines.append(
        f"{plural(total, 'alert')} ({split}),"
        f" {sum(r['acknowledged'] for r in by_severity)} acknowledged,"
        f" {sum(r['resolved'] for r in by_severity)} resolved, {firing} not resolved yet"
    )
    if by_severity:
        lines += ["", f"{'severity':<10} {'alerts':>7} {'MTTA median':>12} {'p90':>10} {'MTTR median':>12} {'p90':>10}"]
        for r in by_severity:
            mtta, mttr = _minutes(r["mtta_median_min"]), _minutes(r["mttr_median_min"])
            mtta_p90, mttr_p90 = _minutes(r["mtta_p90_min"]), _minutes(r["mttr_p90_min"])
            lines.append(f"{r['severity']:<10} {r['alerts']:>7} {mtta:>12} {mtta_p90:>10} {mttr:>12} {mttr_p90:>10}")
    if noisiest:
        lines += ["", f"Top {plural(len(noisiest), 'noisiest alert')}:", f"{'fired':>7} {'acked':>6}  alert (service)"]
        for r in noisiest:
            lines.append(f"{r['fired']:>7} {r['acknowledged_pct']:>5}%  {r['alertname']} ({r['service']})")
    if deliveries:
        messages = sum(r["messages"] for r in deliveries)
        failed = [f"{r['channel']} {r['failed']}" for r in deliveries if r["failed"]]
        lines += [
            "",
            f"Deliveries: {plural(messages, 'message')}, "
            f"{100.0 * sum(r['sent'] for r in deliveries) / messages:.1f}% delivered"
            + (f"; failed: {', '.join(failed)}" if failed else ""),
        ]
    if escalations:
        steps = ", ".join(f"{r['policy']} step {r['step']}: {r['alerts']}" for r in escalations)
        lines.append(f"Escalations (alerts per step): {steps}")
    return "\n".join(lines) + "\n"
