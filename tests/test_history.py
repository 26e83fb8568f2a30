"""The history pages on a seeded database, through a real Datasette: every canned query against a computation of
its own from the raw rows (Python, no SQL date functions), and the pages in a real headless Chromium.

The screenshot of the dashboard is kept at artifacts/history-dashboard.png (CI keeps it as an artifact)."""

import json
import math
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path

import pytest

from amcompanion.demo.daemons import free_port
from amcompanion.history.pages import DASHBOARD, dashboard
from amcompanion.history.queries import QUERIES
from amcompanion.history.seed import seed
from amcompanion.history.words import duration_words
from tests.conftest import ROOT, require_tool

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SINCE = "2026-10-26"  # 28 days before NOW
ARTIFACT = ROOT / "artifacts" / "history-dashboard.png"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.db"
    seed(path, 4000, days=40, now=NOW, seed_value=7)
    return path


@contextmanager
def served(db: Path, *options: str) -> Iterator[str]:
    """`amcompanion history serve` on `db` on a free port (with `options`); its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "amcompanion", "history", "serve", "--db", str(db), "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if server.poll() is not None:
                pytest.fail(f"history serve exited with {server.returncode}")
            try:
                get_json(f"{base}/-/versions.json")
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("history serve did not answer within 15 s")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=15)


@pytest.fixture(scope="module")
def site(history_db: Path) -> Iterator[str]:
    with served(history_db) as base:
        yield base


def page_rows(site: str, query: str, **params: str) -> list[dict]:
    arguments = "&".join(f"{k}={v}" for k, v in {"since": SINCE, **params}.items())
    answer = get_json(f"{site}/history/{query}.json?_shape=array&{arguments}")
    assert isinstance(answer, list), answer
    return answer


# -- the raw rows, read without SQL arithmetic ------------------------------------------------------------
def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def raw_alerts(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = []
    for row in conn.execute("SELECT * FROM alerts"):
        alert = dict(row)
        alert["service"] = json.loads(alert["labels"]).get("service")
        for key in ("starts_at", "first_notice_at", "acked_at", "resolved_at"):
            alert[key] = moment(alert[key])
        rows.append(alert)
    conn.close()
    since = datetime.fromisoformat(SINCE).replace(tzinfo=UTC)
    return [a for a in rows if a["starts_at"] >= since]


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = -(-len(ordered) * int(p * 10) // 10)  # ceil(p × n), in integers
    return ordered[rank - 1]


def ack_s(a: dict) -> float | None:
    return (a["acked_at"] - a["first_notice_at"]).total_seconds() if a["acked_at"] else None


def resolve_s(a: dict) -> float | None:
    return (a["resolved_at"] - a["starts_at"]).total_seconds() if a["resolved_at"] else None


def shown_unit(seconds: float) -> float:
    """The unit the pages count a time in: whole seconds under a minute (rounded down), the nearest minute under a
    day, the nearest hour beyond (what `duration_words` shows)."""
    if seconds < 60:
        return math.floor(seconds)
    if seconds < 86400:
        return math.floor(seconds / 60 + 0.5) * 60
    return math.floor(seconds / 3600 + 0.5) * 3600


def latency_unit(seconds: float) -> float:
    """Delivery latencies: 10 ms under 10 s, 100 ms under a minute (rounded down), then as other times."""
    for limit, step in ((10, 0.01), (60, 0.1)):
        if seconds < limit:
            return math.floor(seconds / step) * step
    return shown_unit(seconds)


def assert_counted(shown: float | None, computed: float | None, unit: Callable[[float], float], scale: float) -> None:
    """`shown` (in `scale` seconds) is the `unit` of `computed` (seconds); SQLite's julianday differs from exact
    arithmetic by microseconds, which may move a value across a unit's edge."""
    if computed is None:
        assert shown is None
    else:
        assert shown is not None, computed
        assert any(math.isclose(shown * scale, unit(computed + d), abs_tol=1e-6) for d in (-0.002, 0, 0.002)), (
            shown,
            computed,
        )


def expected_mtta_mttr(alerts: list[dict], key: str) -> dict[str, dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for a in alerts:
        groups[a[key]].append(a)
    out = {}
    for name, members in groups.items():
        acks = [ack_s(a) for a in members if a["acked_at"]]
        fixes = [resolve_s(a) for a in members if a["resolved_at"]]
        out[name] = {
            "alerts": len(members),
            "acknowledged": len(acks),
            "resolved": len(fixes),
            "mtta": (nearest_rank(acks, 0.5), nearest_rank(acks, 0.9)) if acks else (None, None),
            "mttr": (nearest_rank(fixes, 0.5), nearest_rank(fixes, 0.9)) if fixes else (None, None),
        }
    return out


def assert_minutes(shown: float | None, computed: float | None) -> None:
    """A page's minutes are the shown unit of the exact time (seconds)."""
    assert_counted(shown, computed, shown_unit, 60)


def assert_mtta_mttr(rows: list[dict], label: str, expected: dict[str, dict]) -> None:
    assert {r[label] for r in rows} == set(expected)
    for r in rows:
        e = expected[r[label]]
        assert (r["alerts"], r["acknowledged"], r["resolved"]) == (e["alerts"], e["acknowledged"], e["resolved"])
        assert_minutes(r["mtta_median_min"], e["mtta"][0])
        assert_minutes(r["mtta_p90_min"], e["mtta"][1])
        assert_minutes(r["mttr_median_min"], e["mttr"][0])
        assert_minutes(r["mttr_p90_min"], e["mttr"][1])


# -- the canned queries, each against its own computation ----------------------------------------------------
def test_mtta_and_mttr_by_severity_service_week_and_person(site: str, history_db: Path) -> None:
    alerts = raw_alerts(history_db)
    for a in alerts:
        a["week"] = (a["starts_at"].date() - timedelta(days=a["starts_at"].weekday())).isoformat()
        a["service"] = a["service"] or "(none)"
    by_severity = page_rows(site, "mtta_mttr_by_severity")
    assert [r["severity"] for r in by_severity] == ["critical", "warning", "info"]
    assert_mtta_mttr(by_severity, "severity", expected_mtta_mttr(alerts, "severity"))
    assert_mtta_mttr(page_rows(site, "mtta_mttr_by_service"), "service", expected_mtta_mttr(alerts, "service"))
    assert_mtta_mttr(page_rows(site, "mtta_mttr_by_week"), "week", expected_mtta_mttr(alerts, "week"))
    people = [a for a in alerts if a["acked_by"]]
    assert_mtta_mttr(page_rows(site, "mtta_by_person"), "acknowledged_by", expected_mtta_mttr(people, "acked_by"))


def test_sla_breaches_and_service_health(site: str, history_db: Path) -> None:
    targets = {"critical": (300, 1800), "warning": (900, 7200)}
    alerts = [a for a in raw_alerts(history_db) if a["severity"] in targets]

    def late_ack(a: dict) -> bool:
        ack_target = targets[a["severity"]][0]
        if a["acked_at"]:
            return ack_s(a) > ack_target
        return a["resolved_at"] is not None and (a["resolved_at"] - a["first_notice_at"]).total_seconds() > ack_target

    def late_fix(a: dict) -> bool:
        return a["resolved_at"] is not None and resolve_s(a) > targets[a["severity"]][1]

    rows = {r["severity"]: r for r in page_rows(site, "sla_breaches")}
    assert set(rows) == set(targets)
    for severity, (ack_target, fix_target) in targets.items():
        mine = [a for a in alerts if a["severity"] == severity]
        r = rows[severity]
        assert (r["mtta_target_min"], r["mttr_target_min"]) == (ack_target / 60, fix_target / 60)
        assert (r["alerts"], r["mtta_breaches"], r["mttr_breaches"]) == (
            len(mine),
            sum(map(late_ack, mine)),
            sum(map(late_fix, mine)),
        )
        assert r["mtta_breaches"] > 0 and r["mttr_breaches"] > 0  # the seed makes some people late

    health = {r["service"]: r for r in page_rows(site, "service_health")}
    services = Counter(a["service"] for a in alerts)
    assert set(health) == set(services)
    for service, count in services.items():
        mine = [a for a in alerts if a["service"] == service]
        in_time = sum(1 for a in mine if a["acked_at"] and ack_s(a) <= targets[a["severity"]][0])
        fixed = sum(1 for a in mine if a["resolved_at"] and resolve_s(a) <= targets[a["severity"]][1])
        r = health[service]
        assert (r["alerts"], r["acknowledged_in_time"], r["resolved_in_time"]) == (count, in_time, fixed)
        assert r["health_score"] == round(100 * (in_time + fixed) / (2 * count), 1)


def test_noisiest_never_acknowledged_and_flapping_alerts(site: str, history_db: Path) -> None:
    alerts = raw_alerts(history_db)
    fired = Counter((a["alertname"], a["service"]) for a in alerts)
    noisiest = page_rows(site, "noisiest_alerts")
    assert [r["fired"] for r in noisiest] == sorted(fired.values(), reverse=True)[: len(noisiest)]
    for r in noisiest:
        assert r["fired"] == fired[(r["alertname"], r["service"])]
        acked = sum(
            1 for a in alerts if (a["alertname"], a["service"]) == (r["alertname"], r["service"]) and a["acked_at"]
        )
        assert r["acknowledged"] == acked

    paged = [a for a in alerts if a["severity"] in ("critical", "warning") and not a["acked_at"]]
    never = Counter((a["alertname"], a["service"], a["severity"]) for a in paged)
    firing = Counter((a["alertname"], a["service"], a["severity"]) for a in paged if a["status"] == "firing")
    assert len(never) < 100  # the page's limit: all of them are shown
    rows = page_rows(site, "never_acknowledged")
    assert {(r["alertname"], r["service"], r["severity"]): r["never_acknowledged"] for r in rows} == never
    assert {
        (r["alertname"], r["service"], r["severity"]): r["still_firing"] for r in rows if r["still_firing"]
    } == firing

    window = timedelta(hours=4)
    starts: dict[str, list[datetime]] = defaultdict(list)
    for a in alerts:
        starts[a["fingerprint"]].append(a["starts_at"])
    most = {}
    for fingerprint, times in starts.items():
        times.sort()
        most[fingerprint] = max(sum(1 for t in times if end - window <= t <= end) for end in times)
    flapping = {f: n for f, n in most.items() if n > 5}
    rows = page_rows(site, "flapping_alerts")
    assert flapping, "the seed has flapping series"
    assert {r["fingerprint"]: r["most_firings_in_window"] for r in rows} == flapping
    wider = page_rows(site, "flapping_alerts", hours="24", min_flaps="3")
    assert len(wider) >= len(rows)


def test_escalations_deliveries_and_volume(site: str, history_db: Path) -> None:
    conn = sqlite3.connect(history_db)
    since = datetime.fromisoformat(SINCE).replace(tzinfo=UTC)
    alert_of = {
        alert_id: (policy, acked)
        for alert_id, policy, acked, starts in conn.execute(
            "SELECT id, policy, acked_at IS NOT NULL, starts_at FROM alerts"
        )
        if moment(starts) >= since
    }
    repeats: Counter[tuple[str, int]] = Counter()
    alerts_at: dict[tuple[str, int], set[int]] = defaultdict(set)
    for alert_id, step, reason in conn.execute("SELECT alert_id, step, reason FROM escalations"):
        if alert_id in alert_of:
            alerts_at[(alert_of[alert_id][0], step)].add(alert_id)
            repeats[(alert_of[alert_id][0], step)] += reason == "repeat"
    rows = page_rows(site, "escalations_by_policy")
    assert {(r["policy"], r["step"]): (r["alerts"], r["repeats"], r["acknowledged_later"]) for r in rows} == {
        key: (len(ids), repeats[key], sum(alert_of[i][1] for i in ids)) for key, ids in alerts_at.items()
    }
    assert any(r["repeats"] for r in rows), "the seed repeats the last step"

    channels: dict[str, list[tuple]] = defaultdict(list)
    for channel, status, attempts, queued, sent in conn.execute(
        "SELECT channel, status, attempts, queued_at, sent_at FROM notifications"
    ):
        if moment(queued) >= since:
            channels[channel].append((status, attempts, moment(queued), moment(sent)))
    rows = {r["channel"]: r for r in page_rows(site, "deliveries_by_channel")}
    assert set(rows) == set(channels)
    for channel, messages in channels.items():
        r = rows[channel]
        latencies = [(sent - queued).total_seconds() for _, _, queued, sent in messages if sent]
        assert (r["messages"], r["sent"], r["failed"]) == (
            len(messages),
            sum(1 for m in messages if m[0] == "sent"),
            sum(1 for m in messages if m[0] == "failed"),
        )
        assert r["retries"] == sum(max(m[1] - 1, 0) for m in messages)
        assert_counted(r["latency_median_s"], nearest_rank(latencies, 0.5), latency_unit, 1)
        assert_counted(r["latency_p90_s"], nearest_rank(latencies, 0.9), latency_unit, 1)
    assert any(r["failed"] for r in rows.values()) and any(r["retries"] for r in rows.values())

    started_in: Counter[str] = Counter()
    arrived_in: Counter[str] = Counter()
    week_ago = NOW - timedelta(days=7)
    for start, notice in conn.execute("SELECT starts_at, first_notice_at FROM alerts"):
        for when, counts in ((moment(start), started_in), (moment(notice), arrived_in)):
            if when >= week_ago.replace(hour=0, minute=0):
                counts[when.strftime("%Y-%m-%dT%H:00Z")] += 1
    conn.close()
    since_week = week_ago.date().isoformat()
    volume = page_rows(site, "alerts_per_hour", since=since_week)
    per_hour: Counter[str] = Counter()
    arrivals: Counter[str] = Counter()
    for r in volume:
        per_hour[r["hour"]] += r["started"]
        arrivals[r["hour"]] += r["arrived"]
    assert per_hour == started_in and +arrivals == arrived_in
    assert statistics.pstdev(per_hour.values()) > 0  # a daily rhythm, not a flat line


def test_every_canned_query_has_a_title_a_description_and_rows(site: str) -> None:
    metadata = get_json(f"{site}/-/metadata.json")
    queries = metadata["databases"]["history"]["queries"]
    assert set(queries) == set(QUERIES)
    for name in QUERIES:
        assert queries[name]["title"] and queries[name]["description"]
        assert page_rows(site, name), f"{name} returned no rows"


# -- the rewritten queries against a straightforward formulation of the same question ------------------
PERIOD = "COALESCE(NULLIF(:since, ''), date('now', '-7 days'))"
STRAIGHTFORWARD = {
    # strftime per row (the page: the first 13 characters of the ISO time)
    "alerts_per_hour": f"""SELECT hour, severity, SUM(started) AS started, SUM(arrived) AS arrived FROM (
  SELECT strftime('%Y-%m-%dT%H:00Z', starts_at) AS hour, CASE WHEN drill THEN 'drill' ELSE severity END AS severity,
    1 AS started, 0 AS arrived FROM alerts WHERE starts_at >= {PERIOD}
  UNION ALL SELECT strftime('%Y-%m-%dT%H:00Z', first_notice_at), CASE WHEN drill THEN 'drill' ELSE severity END, 0, 1
    FROM alerts WHERE first_notice_at >= {PERIOD}
) GROUP BY hour, severity""",
    # one GROUP BY over the period (the page: hour by hour, then added up)
    "escalations_by_policy": f"""WITH RECURSIVE paged AS (
  SELECT policy, escalation_level AS level, repeats, ack_seconds IS NOT NULL AS acked, COUNT(*) AS alerts
  FROM alert_times WHERE starts_at >= {PERIOD} AND escalation_level > 0
  GROUP BY policy, level, repeats, acked
),
steps(step) AS (SELECT 1 UNION ALL SELECT step + 1 FROM steps WHERE step < (SELECT MAX(level) FROM paged))
SELECT p.policy, s.step, SUM(p.alerts) AS alerts,
  SUM(CASE WHEN p.level = s.step THEN p.alerts * p.repeats ELSE 0 END) AS repeats,
  SUM(p.alerts * p.acked) AS acknowledged_later
FROM paged p JOIN steps s ON s.step <= p.level GROUP BY p.policy, s.step""",
    # a plain join grouped by severity (the page: the targets as the outer loop)
    "sla_breaches": f"""SELECT t.severity, s.ack_seconds / 60.0 AS mtta_target_min,
  s.resolve_seconds / 60.0 AS mttr_target_min, COUNT(*) AS alerts,
  SUM(t.wait_seconds > s.ack_seconds) AS mtta_breaches,
  ROUND(100.0 * SUM(t.wait_seconds > s.ack_seconds) / COUNT(*), 1) AS mtta_breach_pct,
  SUM(t.resolve_seconds > s.resolve_seconds) AS mttr_breaches,
  ROUND(100.0 * SUM(t.resolve_seconds > s.resolve_seconds) / COUNT(*), 1) AS mttr_breach_pct
FROM alert_times t JOIN sla_targets s ON s.severity = t.severity WHERE t.starts_at >= {PERIOD}
GROUP BY t.severity""",
    # joined with the targets and grouped (the pages: counted against the targets as alerts come, kept by triggers)
    "never_acknowledged": f"""SELECT t.alertname, COALESCE(t.service, '(none)') AS service, t.severity,
  COUNT(*) AS never_acknowledged, SUM(t.resolve_seconds IS NULL) AS still_firing,
  MAX(t.escalation_level) AS highest_escalation_step, MAX(t.starts_at) AS last_fired
FROM alert_times t JOIN sla_targets s ON s.severity = t.severity
WHERE t.starts_at >= {PERIOD} AND t.ack_seconds IS NULL
GROUP BY t.alertname, t.service, t.severity ORDER BY never_acknowledged DESC LIMIT 100""",
    "service_health": f"""SELECT COALESCE(t.service, '(none)') AS service, COUNT(*) AS alerts,
  SUM(t.ack_seconds <= s.ack_seconds) AS acknowledged_in_time,
  SUM(t.resolve_seconds <= s.resolve_seconds) AS resolved_in_time,
  ROUND(100.0 * (SUM(t.ack_seconds <= s.ack_seconds) + SUM(t.resolve_seconds <= s.resolve_seconds)) / (2 * COUNT(*)), 1)
    AS health_score
FROM alert_times t JOIN sla_targets s ON s.severity = t.severity
WHERE t.starts_at >= {PERIOD}
GROUP BY t.service ORDER BY health_score""",
    # one GROUP BY over the period (the page: counts per day, name and service, kept by triggers)
    "noisiest_alerts": f"""SELECT alertname, COALESCE(service, '(none)') AS service, COUNT(*) AS fired,
  COUNT(DISTINCT fingerprint) AS series, SUM(ack_seconds IS NOT NULL) AS acknowledged,
  ROUND(100.0 * SUM(ack_seconds IS NOT NULL) / COUNT(*), 1) AS acknowledged_pct,
  ROUND(AVG(resolve_seconds) / 60, 1) AS avg_duration_min, MAX(starts_at) AS last_fired
FROM alert_times WHERE starts_at >= {PERIOD}
GROUP BY alertname, service ORDER BY fired DESC, json_array(alertname, service) LIMIT 25""",
    # every episode's window, counted by a window function (the page: counted as episodes come, in the default window)
    "flapping_alerts": f"""WITH windows AS (
  SELECT fingerprint, alertname, service, starts_at, ack_seconds, COUNT(*) OVER (
    PARTITION BY fingerprint ORDER BY julianday(starts_at) * 24.0 / CAST(COALESCE(NULLIF(:hours, ''), 4) AS REAL)
    RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) AS in_window
  FROM alerts WHERE starts_at >= {PERIOD} AND drill = 0
),
flapping AS (
  SELECT fingerprint, alertname, service, MAX(in_window) AS most_firings_in_window, COUNT(*) AS firings,
    COUNT(ack_seconds) AS acknowledged, MAX(starts_at) AS last_fired
  FROM windows GROUP BY fingerprint
  HAVING most_firings_in_window > CAST(COALESCE(NULLIF(:min_flaps, ''), 5) AS INTEGER)
)
SELECT alertname, COALESCE(service, '(none)') AS service,
  (SELECT json_extract(labels, '$.instance') FROM alerts a WHERE a.fingerprint = f.fingerprint LIMIT 1) AS instance,
  fingerprint, most_firings_in_window, firings, acknowledged, last_fired
FROM flapping f ORDER BY most_firings_in_window DESC, firings DESC, fingerprint LIMIT 100""",
}


# the flapping page's default window (counted as episodes come), others (counted by the page), other thresholds
WINDOWS = ({"hours": "", "min_flaps": ""}, {"hours": "2", "min_flaps": "2"}, {"hours": "4", "min_flaps": "3"})


@pytest.mark.parametrize("name", sorted(STRAIGHTFORWARD))
def test_rewritten_queries_give_what_a_straightforward_formulation_gives(history_db: Path, name: str) -> None:
    conn = sqlite3.connect(history_db)
    compared = 0
    try:
        for since, window in product((SINCE, "2000-01-01", "2026-11-16", "2026-11-23", "2027-01-01"), WINDOWS):
            parameters = {"since": since, **window}
            rows = conn.execute(QUERIES[name].sql, parameters).fetchall()
            assert sorted(rows) == sorted(conn.execute(STRAIGHTFORWARD[name], parameters).fetchall()), parameters
            compared += bool(rows)
    finally:
        conn.close()
    assert compared >= 3, "the periods have rows to compare"


# -- in a real browser ----------------------------------------------------------------------------------
def chromium(*arguments: str) -> str:
    binary = require_tool("chromium", "apt-get install chromium fonts-liberation")
    with tempfile.TemporaryDirectory(prefix="amcompanion-chromium-") as profile:
        done = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_dashboard_renders_every_chart_with_data_and_is_screenshotted(site: str) -> None:
    url = f"{site}/-/dashboards/{DASHBOARD}?since={SINCE}"
    dom = chromium("--virtual-time-budget=15000", "--window-size=1400,2300", "--dump-dom", url)
    for name, chart in dashboard()["charts"].items():
        start = dom.index(f'id="chart-{name}"')
        card = dom[start : dom.find('class="dashboard-card"', start)]
        if chart["library"] == "vega-lite":
            assert "<svg" in card and card.count("<path") + card.count("<rect") > 3, f"{name}: no marks drawn"
        elif chart["library"] == "metric":
            value = card.split('font-weight: 900;">', 1)[1].split("</p>", 1)[0]
            assert re.match(r"\d", value), f"{name}: metric shows {value!r}"
        elif chart["library"] == "table":
            assert card.count("<tr>") > 1, f"{name}: empty table"
    critical = page_rows(site, "mtta_mttr_by_severity")[0]
    assert f">{duration_words(critical['mtta_median_min'] * 60)}<small>" in dom  # the canned query's figure
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.unlink(missing_ok=True)
    chromium("--virtual-time-budget=15000", "--window-size=1400,2300", f"--screenshot={ARTIFACT}", url)
    assert ARTIFACT.stat().st_size > 50_000


def test_every_canned_query_page_shows_rows_in_the_browser(site: str) -> None:
    for name in QUERIES:
        dom = chromium("--dump-dom", f"{site}/history/{name}?since={SINCE}")
        table = dom[dom.index('<table class="rows-and-columns">') :]
        assert table.count("<tr>") > 1, f"{name}: no rows on the page"
        if name == "mtta_mttr_by_severity":
            assert ">MTTA, median</th>" in table and ">mtta_median_min<" not in table and "critical" in table
