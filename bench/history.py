"""Benchmark the history pages: seed a large history, then time every canned query through Datasette's JSON API.

It seeds `--alerts` synthetic alerts (default 1,000,000, over 90 days; with their events, deliveries,
escalations and acks: about 6.7 rows each) unless `--db` names an existing database, starts
`amcompanion history serve` on it, and times each canned query through `/history/<query>.json`, as the
pages and the dashboard run them: with the default period (the last 7 days; the weekly trend: 28 days),
which the target is about, and for comparison over the last 28 days and over the whole history. Each figure
is the median of `--repeat` runs after one warm-up run. The baseline, in the same run, is the same SQL run
directly with Python's sqlite3 on the same file: the difference is Datasette's share (HTTP, JSON, its
per-query time limit and thread pool).

Usage (from the repository root)::

    python bench/history.py                         # seeds 1,000,000 alerts into a temporary directory
    python bench/history.py --alerts 200000
    python bench/history.py --db history.db         # an existing history, e.g. the receiver's

Then the alert quality page (`/-/quality.json`, 30 days); `amcompanion quality` (issue 21) over the last 30 days
(its default) and over the whole history: reading the episodes (the baseline: the rows it needs, as Python
objects), reading plus assessing them, and `assess_history` (the same figures from columns SQLite fills, without
making the episodes); and `amcompanion tune` of the example catalog, as a user runs it (its baseline:
`amcompanion quality` of the same catalog, each in its own process).

Target: every query under 1 s at 1,000,000 alerts, with its default period and over the whole history; the
database under 2 GB; the quality page, quality and tune under 2 s. Exit status 1 when a query fails or a figure
misses its target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from amcompanion.history.queries import QUERIES  # noqa: E402
from amcompanion.history.seed import seed  # noqa: E402
from amcompanion.quality.findings import assess  # noqa: E402
from amcompanion.quality.read import assess_history, episodes  # noqa: E402
from bench.common import free_port, wait_ready  # noqa: E402

ALL_OF_IT = "2000-01-01"
FOUR_WEEKS = (datetime.now(UTC) - timedelta(days=28)).date().isoformat()
TARGET_MS = 1000.0
QUALITY_TARGET_MS = 2000.0


def timed(run: Callable[[], None], repeat: int) -> float:
    """Median milliseconds of `repeat` calls after a warm-up call."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class QueryFailed(Exception):
    """Datasette refused the query (its time limit, most often): a figure the table shows as failed."""


def through_datasette(base: str, db_name: str, query: str, since: str) -> None:
    url = f"{base}/{db_name}/{query}.json?" + urllib.parse.urlencode({"since": since, "_shape": "objects"})
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        reason = json.loads(exc.read() or b"{}").get("error", exc.reason)
        # Datasette's answer quotes the query as HTML: its first sentence says why
        said = re.sub(r"<[^>]+>", "", str(reason).split("<textarea", 1)[0]).split(".", 1)[0].strip()
        raise QueryFailed(f"HTTP {exc.code}: {said}") from None
    if not answer.get("ok", True) or "rows" not in answer:
        raise SystemExit(f"{query}: Datasette answered {answer}")


def directly(db: Path, query: str, since: str) -> None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute(QUERIES[query].sql, {"since": since, "hours": "", "min_flaps": ""}).fetchall()
    finally:
        conn.close()


def size_mb(db: Path) -> float:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6


def measure(db: Path, repeat: int) -> int:
    conn = sqlite3.connect(db)
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in
              ("alerts", "alert_events", "notifications", "escalations", "acks")}  # fmt: skip
    conn.close()
    events = sum(counts.values()) - counts["alerts"]
    print(f"database: {counts['alerts']:,} alerts, {events:,} events ({counts}), {size_mb(db):,.0f} MB")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "amcompanion", "history", "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    slowest = whole_slowest = 0.0
    failures: list[str] = []
    try:
        wait_ready(f"{base}/-/versions.json", server)
        heading = f"{'default period':>15} {'sqlite3':>9} {'ratio':>6} {'28 days':>10} {'whole history':>14}"
        print(f"\n{'query':<24} {heading}")
        for name in QUERIES:
            served = timed(lambda n=name: through_datasette(base, db.stem, n, ""), repeat)
            direct = timed(lambda n=name: directly(db, n, ""), repeat)
            slowest = max(slowest, served)
            longer = []
            for since in (FOUR_WEEKS, ALL_OF_IT):
                try:
                    ms = timed(lambda n=name, s=since: through_datasette(base, db.stem, n, s), repeat)
                    longer.append(f"{ms:.0f} ms")
                    whole_slowest = max(whole_slowest, ms) if since == ALL_OF_IT else whole_slowest
                except QueryFailed as exc:
                    failures.append(f"{name} since {since}: {exc}")
                    longer.append("failed")
            print(
                f"{name:<24} {served:>12.0f} ms {direct:>6.0f} ms {served / direct:>6.2f}"
                f" {longer[0]:>10} {longer[1]:>14}"
            )
        page_ms = timed(lambda: fetch(f"{base}/-/quality.json?since=30d"), repeat)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nslowest query through Datasette, default period: {slowest:.0f} ms, whole history: {whole_slowest:.0f} ms"
          f" (target < {TARGET_MS:.0f} ms each); database {size_mb(db):,.0f} MB (target < 2,000 MB)")  # fmt: skip
    print(f"the alert quality page (/-/quality.json, 30 days): {page_ms:.0f} ms (target < {QUALITY_TARGET_MS:.0f} ms)")
    for failure in failures:
        print(f"failed: {failure}")
    quality_ms = measure_quality(db, repeat)
    tune_ms = measure_tune(db, repeat)
    pages_met = slowest < TARGET_MS and whole_slowest < TARGET_MS and size_mb(db) < 2000
    met = not failures and pages_met and max(quality_ms, page_ms, tune_ms) < QUALITY_TARGET_MS
    return 0 if met else 1


def fetch(url: str) -> None:
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()


def measure_tune(db: Path, repeat: int) -> float:
    """`amcompanion tune` of the example catalog against the last 30 days, as a user runs it (its own process: the
    assessment, the proposals, the edited catalog compiled and checked with promtool and amtool); the baseline is
    `amcompanion quality` of the same catalog and period, also in its own process."""

    def command(*words: str) -> Callable[[], None]:
        argv = [sys.executable, "-m", "amcompanion", *words, "rulesets", "--db", str(db), "--json"]
        return lambda: subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, check=True, timeout=600)

    quality_ms = timed(command("quality"), repeat)
    tune_ms = timed(command("tune"), repeat)
    print(f"\n{'amcompanion quality rulesets/ (baseline)':<44} {quality_ms:>8.0f} ms")
    print(f"{'amcompanion tune rulesets/':<44} {tune_ms:>8.0f} ms  ratio {tune_ms / quality_ms:.2f}"
          f" (target < {QUALITY_TARGET_MS:.0f} ms)")  # fmt: skip
    return tune_ms


def measure_quality(db: Path, repeat: int) -> float:
    """`amcompanion quality`'s work over 30 days and the whole history: the episodes read (the baseline), read and
    assessed (`assess(episodes(...))`, what other callers run), and `assess_history` (columns from SQL, no episodes:
    what the target is about); the 30 days' `assess_history` figure."""
    heading = f"{'episodes':>10} {'read':>10} {'read + assess':>14} {'assess_history':>15}"
    print(f"\n{'amcompanion quality':<24} {heading}")
    figures = {}
    for label, since in (("last 30 days", datetime.now(UTC) - timedelta(days=30)), ("whole history", None)):
        moment = since or datetime(2000, 1, 1, tzinfo=UTC)
        count = len(episodes(db, moment))
        read = timed(lambda m=moment: episodes(db, m), repeat)
        both = timed(lambda m=moment: assess(episodes(db, m)), repeat)
        figures[label] = timed(lambda m=moment: assess_history(db, m), repeat)
        print(f"{label:<24} {count:>10,} {read:>7.0f} ms {both:>11.0f} ms {figures[label]:>12.0f} ms")
    print(f"quality over the last 30 days: {figures['last 30 days']:.0f} ms (target < {QUALITY_TARGET_MS:.0f} ms)")
    return figures["last 30 days"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python bench/history.py --alerts 1000000",
    )  # fmt: skip
    parser.add_argument("--alerts", type=int, default=1_000_000, help="alerts to seed (default 1,000,000)")
    parser.add_argument("--days", type=int, default=90, help="days the seeded history spans (default 90)")
    parser.add_argument("--db", type=Path, help="time this existing database instead of seeding one")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per query, after a warm-up (default 3)")
    args = parser.parse_args()
    print(f"== history benchmark (Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs) ==")  # fmt: skip
    if args.db:
        sys.exit(measure(args.db, args.repeat))
    with tempfile.TemporaryDirectory(prefix="amcompanion-history-") as work:
        db = Path(work) / "history.db"
        started = time.perf_counter()

        def progress(done: int) -> None:
            print(f"\rseeding: {done:,}/{args.alerts:,} alerts", end="", flush=True)

        seed(db, args.alerts, days=args.days, progress=progress)
        print(f"\nseeded {args.alerts:,} alerts over {args.days} days in {time.perf_counter() - started:.0f} s")
        sys.exit(measure(db, args.repeat))


if __name__ == "__main__":
    main()
