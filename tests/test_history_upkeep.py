"""`amcompanion history seed`, `prune` and `report`: deterministic seeds, retention that leaves no orphans and
keeps open alerts, and a report whose numbers are the database's."""

import re
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from amcompanion.history.prune import CHILD_TABLES, prune
from amcompanion.history.seed import seed
from amcompanion.receiver.timeutil import iso

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def dump(db: Path, table: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    finally:
        conn.close()


def amcompanion(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "amcompanion", *args], capture_output=True, text=True, timeout=120)


def test_the_same_seed_gives_the_same_history(tmp_path: Path) -> None:
    for name in ("a.db", "b.db"):
        seed(tmp_path / name, 800, days=10, now=NOW, seed_value=3)
    for table in ("alerts", "alert_events", "notifications", "escalations", "acks"):
        assert dump(tmp_path / "a.db", table) == dump(tmp_path / "b.db", table)
    assert len(dump(tmp_path / "a.db", "alerts")) == 800


def test_prune_removes_old_resolved_alerts_with_their_rows_and_keeps_open_ones(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    seed(db, 1500, days=30, now=NOW, seed_value=5)
    cutoff = NOW - timedelta(days=10)
    conn = sqlite3.connect(db)
    for days_ago in (20, 2):  # hand-offs: events about no alert, which go by their own age
        stamp = iso(NOW - timedelta(days=days_ago))
        conn.execute("INSERT INTO events (type, alert_id, at, data) VALUES ('oncall.changed', NULL, ?, '{}')", [stamp])
    conn.commit()
    before = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("alerts", *CHILD_TABLES)}
    old = conn.execute(
        "SELECT COUNT(*) FROM alerts WHERE status = 'resolved' AND resolved_at < ?", [cutoff.isoformat()[:19]]
    ).fetchone()[0]
    conn.execute(  # an old alert nobody resolved: someone's work, whatever its age
        "UPDATE alerts SET status = 'firing', resolved_at = NULL WHERE id = (SELECT MIN(id) FROM alerts)"
    )
    conn.commit()
    pruned = prune(db, cutoff)
    after = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("alerts", *CHILD_TABLES)}
    assert 0 < pruned["alerts"] <= old
    assert {t: before[t] - after[t] for t in before} == pruned
    assert conn.execute("SELECT COUNT(*) FROM alerts WHERE id = 1").fetchone()[0] == 1
    assert [row[0] for row in conn.execute("SELECT at FROM events WHERE alert_id IS NULL")] == [
        iso(NOW - timedelta(days=2))
    ]
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE status = 'resolved' AND resolved_at < ?", [cutoff.isoformat()[:19]]
        ).fetchone()[0]
        == 0
    )
    for table in CHILD_TABLES:
        orphans = f"SELECT COUNT(*) FROM {table} WHERE alert_id NOT IN (SELECT id FROM alerts)"
        assert conn.execute(orphans).fetchone()[0] == 0
    conn.close()


def test_the_cli_seeds_reports_and_prunes(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    seeded = amcompanion("history", "seed", "--alerts", "1200", "--days", "14", "--db", str(db))
    assert seeded.returncode == 0, seeded.stderr
    assert f"seeded 1200 alerts over 14 days into {db}" in seeded.stdout

    shown = amcompanion("history", "report", "--since", "7d", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    conn = sqlite3.connect(db)
    # the report's own cut-off (the start of the day 7 days ago, UTC), as its heading says: a day may turn meanwhile
    heading = re.search(r" since (\d{4}-\d\d-\d\d) \(UTC\)$", shown.stdout.splitlines()[0])
    assert heading, shown.stdout
    week = heading[1]
    assert abs(date.fromisoformat(week) - (datetime.now(UTC) - timedelta(days=7)).date()) <= timedelta(days=1)
    (total,) = conn.execute("SELECT COUNT(*) FROM alerts WHERE starts_at >= ?", [week]).fetchone()
    top = conn.execute(
        "SELECT alertname, json_extract(labels, '$.service'), COUNT(*) AS n FROM alerts WHERE starts_at >= ?"
        " GROUP BY 1, 2 ORDER BY n DESC LIMIT 1",
        [week],
    ).fetchone()
    conn.close()
    lines = shown.stdout.splitlines()
    assert any(line.startswith(f"{total} alerts (critical") for line in lines), shown.stdout
    noisy = lines[lines.index("Top 10 noisiest alerts:") + 2]
    assert noisy.split()[0] == str(top[2]) and noisy.endswith(f"{top[0]} ({top[1]})")
    assert any(line.startswith("Deliveries: ") and "% delivered" in line for line in lines)

    pruned = amcompanion("history", "prune", "--older-than", "7d", "--db", str(db))
    assert pruned.returncode == 0 and "pruned alerts resolved before" in pruned.stdout
    assert " 0 alerts," not in pruned.stdout


def test_the_cli_explains_bad_input(tmp_path: Path) -> None:
    missing = amcompanion("history", "report", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "none.db: no such database" in missing.stderr
    seed(tmp_path / "h.db", 10, days=2, now=NOW)
    wrong = amcompanion("history", "prune", "--older-than", "ninety days", "--db", str(tmp_path / "h.db"))
    assert wrong.returncode == 2 and "'ninety days' is not a duration (e.g. 7d, 12h, 90d)" in wrong.stderr
