"""The history pages as a newcomer reads them, in real headless Chromium against real `amcompanion history serve`:
"no data" on an empty history, whole-number axes for counts, column titles and durations in words, "N of M", the
display time zone, alerts counted by arrival, drills marked and left out of the figures, an alert's timeline in
order with each page's channel and answer, and the quality page's flapping alert and cascade.

Screenshots of the dashboard, the quality page and an alert page go to $AMCOMPANION_ARTIFACTS (default: a temporary
directory); with AMCOMPANION_REFRESH_SCREENSHOTS=1 also to docs/images/ for the README."""

import json
import os
import re
import shutil
import sqlite3
import urllib.error
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from amcompanion.history.schema import migrate
from amcompanion.history.seed import seed
from amcompanion.history.words import duration_words, local_time
from amcompanion.receiver.timeutil import iso
from tests.browser import Browser
from tests.conftest import ROOT, require_tool
from tests.test_history import get_json, served

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
ZONE = "Asia/Shanghai"
WEEK_AGO = (NOW - timedelta(days=7)).date().isoformat()


# -- planted histories ---------------------------------------------------------------------------------------
class History:
    """Rows written as the receiver writes them (the migrated schema), for a story a test can name."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path)
        migrate(self.conn)

    def alert(
        self, name: str, starts: datetime, *, severity: str = "critical", notice_after: float = 20.0,
        resolve_after: float | None = None, acked: tuple[str, str, float] | None = None, series: str = "",
        **labels: str,
    ) -> int:  # fmt: skip
        """One episode; `acked`: (by, via, seconds after the first notice); times in seconds."""
        notice = starts + timedelta(seconds=notice_after)
        resolved = starts + timedelta(seconds=resolve_after) if resolve_after is not None else None
        acked_at = notice + timedelta(seconds=acked[2]) if acked else None
        labels = {"alertname": name, "severity": severity, "service": "database", "instance": "db-1", **labels}
        status = "resolved" if resolved else "acknowledged" if acked else "firing"
        row = {
            "fingerprint": series or f"{name}-{labels.get('instance', '')}", "alertname": name, "severity": severity,
            "labels": json.dumps(labels), "annotations": json.dumps({"summary": f"{name} on {labels.get('instance')}"}),
            "policy": "db-oncall", "status": status, "starts_at": iso(starts), "ends_at": resolved and iso(resolved),
            "acked_at": acked_at and iso(acked_at), "acked_by": acked and acked[0],
            "resolved_at": resolved and iso(resolved), "first_notice_at": iso(notice),
        }  # fmt: skip
        insert = f"INSERT INTO alerts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) RETURNING id"
        alert_id = self.conn.execute(insert, list(row.values())).fetchone()[0]
        self.event(alert_id, "firing", notice)
        if resolved:
            self.event(alert_id, "resolved", resolved)
        if acked and acked_at:
            self.conn.execute(
                "INSERT INTO acks (alert_id, by, via, comment, at) VALUES (?, ?, ?, '', ?)",
                (alert_id, acked[0], acked[1], iso(acked_at)),
            )
        return alert_id

    def event(self, alert_id: int, status: str, at: datetime) -> None:
        self.conn.execute(
            "INSERT INTO alert_events (alert_id, status, received_at, group_key, receiver, policy)"
            " VALUES (?, ?, ?, '', 'db-oncall', 'db-oncall')",
            (alert_id, status, iso(at)),
        )

    def step(self, alert_id: int, step: int, at: datetime, reason: str) -> None:
        self.conn.execute(
            "INSERT INTO escalations (alert_id, step, from_level, to_level, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
            (alert_id, step, step - 1, step, reason, iso(at)),
        )
        self.conn.execute("UPDATE alerts SET escalation_level = ? WHERE id = ?", (step, alert_id))

    def page(
        self, alert_id: int, step: int, channel: str, recipient: str, at: datetime, *, kind: str = "firing",
        failed: str = "", attempts: int = 1,
    ) -> None:  # fmt: skip
        sent = None if failed else iso(at + timedelta(seconds=0.4))
        self.conn.execute(
            "INSERT INTO notifications (alert_id, kind, channel, recipient, step, attempts, status, error, queued_at,"
            " sent_at, next_attempt_at, give_up_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_id, kind, channel, recipient, step, attempts, "failed" if failed else "sent", failed or None,
             iso(at), sent, iso(at), iso(at + timedelta(hours=1))),
        )  # fmt: skip
        if not failed:  # the receiver logs what the channel answered beside the row
            data = {"answer": "HTTP 201" if channel == "voice" else "HTTP 200", "channel": channel,
                    "recipient": recipient, "kind": kind, "error": None}  # fmt: skip
            self.conn.execute(
                "INSERT INTO events (type, alert_id, at, data) VALUES ('notification.sent', ?, ?, ?)",
                (alert_id, sent, json.dumps(data)),
            )

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()


FAILED = "HTTP 502 from the service, gave up after 4 tries"
STARTS = NOW - timedelta(hours=5)


def plant(path: Path) -> int:
    """The story the tests read (on top of whatever is there); the id of the alert with a whole timeline."""
    h = History(path)
    # DiskFull: paged to a group and by SMS (that fails), escalated to a voice call, acknowledged by alice via the
    # link, resolved 3 h 24 min after it started, and the group told so
    disk = h.alert("DiskFull", STARTS, resolve_after=3 * 3600 + 24 * 60, acked=("alice", "link", 14 * 60),
                   instance="db-7", cluster="eu-1")  # fmt: skip
    notice = STARTS + timedelta(seconds=20)
    h.step(disk, 1, notice, "first notice")
    h.page(disk, 1, "ops-wecom", "", notice)
    h.page(disk, 1, "sms", "bob", notice, failed=FAILED, attempts=4)
    h.step(disk, 2, notice + timedelta(minutes=10), "deadline")
    h.page(disk, 2, "voice", "alice", notice + timedelta(minutes=10))
    h.page(disk, 0, "ops-wecom", "", STARTS + timedelta(seconds=3 * 3600 + 24 * 60), kind="resolved")
    # a drill: acknowledged at once; it must not count in any figure
    h.alert("AmcompanionDrill", NOW - timedelta(hours=2), resolve_after=60, acked=("carol", "console", 5),
            drill="true", drill_policy="db-oncall")  # fmt: skip
    # a flapping series: six short firings, each five minutes after the last resolved
    moment = NOW - timedelta(days=2, hours=3)
    for _ in range(6):
        h.alert("LeaseRenewalFailing", moment, severity="warning", resolve_after=180, instance="auth-1", service="auth")
        moment += timedelta(minutes=8)
    # a cascade: InstanceDown 20 s after NodeDown, four times, on different days and hours
    for day, hour in ((3, 1), (4, 7), (5, 13), (6, 19)):
        leader = (NOW - timedelta(days=day)).replace(hour=hour, minute=0, second=0)
        h.alert("NodeDown", leader, resolve_after=900, instance=f"node-{day}", cluster="eu-1")
        h.alert("InstanceDown", leader + timedelta(seconds=20), resolve_after=880, instance=f"node-{day}:9100",
                cluster="eu-1")  # fmt: skip
    # an alert that started ten days ago and reached the receiver an hour ago: it arrived this week
    h.alert("CertificateExpiring", NOW - timedelta(days=10), severity="warning", notice_after=10 * 86400 - 3600)
    h.close()
    return disk


# -- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = Path(os.environ.get("AMCOMPANION_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("mixed") / "history.db"
    seed(path, 600, days=20, now=NOW - timedelta(days=1), seed_value=3)  # a team's background, kept small
    return path, plant(path)


@pytest.fixture(scope="module")
def site(mixed: tuple[Path, int]) -> Iterator[str]:
    with served(mixed[0], "--time-zone", ZONE) as base:
        yield base


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with Browser(require_tool("chromium", "apt-get install chromium fonts-liberation"), 1400, 900) as started:
        yield started


def keep(shot: Path, name: str) -> None:
    """With AMCOMPANION_REFRESH_SCREENSHOTS=1, the screenshot becomes the README's docs/images/<name>."""
    assert shot.stat().st_size > 20_000, f"{shot} looks empty"
    if os.environ.get("AMCOMPANION_REFRESH_SCREENSHOTS") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "images" / name)


async def dashboard(browser: Browser, site: str, since: str = WEEK_AGO) -> dict:
    """The dashboard once every chart has drawn (or said it has nothing to draw): each card's text, by chart."""
    await browser.goto(f"{site}/-/dashboards/weekly?since={since}")
    cards = "[...document.querySelectorAll('.dashboard-card-chart')]"
    await browser.wait_for(
        f"{cards}.every(c => c.querySelector('svg, table, p, .amc-no-data') || c.id === 'chart-links')", timeout=20
    )
    return await browser.evaluate(f"Object.fromEntries({cards}.map(c => [c.id.slice(6), c.innerText.trim()]))")


async def headers_and_cells(browser: Browser, url: str) -> tuple[list[str], list[list[str]]]:
    await browser.goto(url)
    await browser.wait_for("document.querySelector('table.rows-and-columns th')")
    return await browser.evaluate(
        "[[...document.querySelectorAll('table.rows-and-columns th')].map(th => th.innerText.trim()),"
        " [...document.querySelectorAll('table.rows-and-columns tbody tr')]"
        ".map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))]"
    )


async def quality_rows(browser: Browser) -> dict[str, list[str]]:
    """The quality page's table as the reader sees it: each alert's cells, by its name."""
    return await browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('.amc-table tbody tr')]"
        ".map(tr => [tr.cells[0].innerText, [...tr.cells].map(c => c.innerText.trim())]))"
    )


# -- empty and tiny histories ------------------------------------------------------------------------------
async def test_an_empty_history_says_no_data_everywhere(tmp_path: Path, browser: Browser) -> None:
    path = tmp_path / "history.db"
    History(path).close()
    with served(path) as base:
        cards = await dashboard(browser, base)
        for tile in ("mtta", "mttr", "unacknowledged", "delivered"):
            assert cards[tile].startswith("no data"), (tile, cards[tile])
        assert cards["alerts"].splitlines() == ["0", "arrived; 0 started in the period"]
        for chart in ("volume", "weekly", "health", "deliveries", "escalations", "noisiest", "sla", "flapping"):
            assert "no data" in cards[chart], (chart, cards[chart])
        assert not any(word in text for text in cards.values() for word in ("null", "undefined", "NaN"))
        await browser.goto(f"{base}/-/quality")
        assert "no data: no alerts in the last 30d" in await browser.evaluate("document.body.innerText")
    assert not browser.errors, browser.errors


async def test_one_alert_draws_whole_number_axes(tmp_path: Path, browser: Browser) -> None:
    path = tmp_path / "history.db"
    h = History(path)
    h.alert("DiskFull", NOW - timedelta(hours=3), resolve_after=600, acked=("alice", "link", 120))
    h.close()
    with served(path) as base:
        cards = await dashboard(browser, base)
        ticks = await browser.evaluate(
            "[...document.querySelectorAll('#chart-volume g[aria-label^=\"Y-axis\"] .role-axis-label text')]"
            ".map(t => t.textContent)"
        )
    assert ticks and all(re.fullmatch(r"\d+", t) for t in ticks), ticks  # not 0.0, 0.2, ... 1.0
    assert cards["alerts"].splitlines() == ["1", "arrived; 1 started in the period"]
    assert cards["mtta"].splitlines() == ["2 min", "1 of 1 acknowledged"]
    assert cards["mttr"].splitlines() == ["10 min", "1 of 1 resolved"]


# -- a team's history with the planted story ------------------------------------------------------------------
async def test_the_dashboard_counts_arrivals_leaves_drills_out_and_reads_in_words(
    site: str, browser: Browser, artifacts: Path
) -> None:
    cards = await dashboard(browser, site)
    rows = get_json(f"{site}/history/alerts_per_hour.json?_shape=array&since={WEEK_AGO}")
    arrived = sum(r["arrived"] for r in rows if r["severity"] != "drill")
    started = sum(r["started"] for r in rows if r["severity"] != "drill")
    assert arrived == started + 1  # CertificateExpiring started ten days ago and arrived this week
    assert cards["alerts"].splitlines() == [str(arrived), f"arrived; {started} started in the period; 1 drill apart"]
    critical = get_json(f"{site}/history/mtta_mttr_by_severity.json?_shape=array&since={WEEK_AGO}")[0]
    mtta = duration_words(critical["mtta_median_min"] * 60)
    assert cards["mtta"].splitlines() == [mtta, f"{critical['acknowledged']} of {critical['alerts']} acknowledged"]
    assert re.fullmatch(r"\d+( s| min| h( \d+ min)?)", mtta)
    assert "Asia/Shanghai" in cards["links"] and "no data" not in "".join(cards.values())
    ticks = await browser.evaluate(
        "[...document.querySelectorAll('[id^=chart-] g[aria-label^=\"Y-axis\"] .role-axis-label text')]"
        ".map(t => t.textContent)"
    )
    assert ticks and not [t for t in ticks if re.fullmatch(r"\d+\.\d+", t)], ticks
    assert re.search(r"\d+ of \d+", cards["noisiest"]) and "_" not in cards["noisiest"].split("\n")[0]
    shot = await browser.screenshot(artifacts / "history-dashboard.png", 1400, 900)
    keep(shot, "history-dashboard.png")
    assert not browser.errors, browser.errors


async def test_query_pages_have_titles_in_words_durations_counts_of_a_whole_and_local_times(
    site: str, browser: Browser
) -> None:
    headers, cells = await headers_and_cells(browser, f"{site}/history/mtta_mttr_by_severity?since={WEEK_AGO}")
    assert headers[:4] == ["Severity", "Alerts", "Acknowledged", "MTTA, median"], headers
    raw = get_json(f"{site}/history/mtta_mttr_by_severity.json?_shape=array&since={WEEK_AGO}")
    for row, shown in zip(raw, cells, strict=True):
        assert shown[2] == f"{row['acknowledged']} of {row['alerts']}"
        assert shown[3] == duration_words(row["mtta_median_min"] * 60) and "." not in shown[3].split()[0]
    assert raw[0]["alerts"] == len([a for a in get_json(
        f"{site}/history/alert_times.json?_shape=array&severity=critical&starts_at__gte={WEEK_AGO}&_size=max"
    )])  # fmt: skip
    headers, cells = await headers_and_cells(browser, f"{site}/history/latest_alerts?since={WEEK_AGO}")
    assert "Arrived" in headers and "arrived_at" not in headers
    drill = next(row for row in cells if row[1] == "AmcompanionDrill")
    assert "drill" in drill
    certificate = next(row for row in cells if row[1] == "CertificateExpiring")
    started = (NOW - timedelta(days=10)).astimezone(ZoneInfo(ZONE))
    assert started.strftime("%Y-%m-%d %H:%M") in " ".join(certificate) and "CST" in " ".join(certificate)


async def test_the_alert_page_tells_its_timeline_in_order(
    site: str, mixed: tuple[Path, int], browser: Browser, artifacts: Path
) -> None:
    await browser.goto(f"{site}/-/alert/{mixed[1]}")
    steps = await browser.evaluate(
        "[...document.querySelectorAll('.amc-timeline li')].map(li => ["
        "li.querySelector('time')?.textContent, li.querySelector('strong').textContent,"
        " li.querySelector('.amc-detail')?.textContent])"
    )
    titles = [title for _, title, _ in steps]
    assert titles == [
        "Started firing",
        "Reached the receiver",
        "Escalation step 1",
        "Paged the channel's own audience via ops-wecom (step 1)",
        "Paged bob via sms (step 1)",
        "Escalation step 2",
        "Paged alice via voice (step 2)",
        "Acknowledged by alice via link",
        "Resolved",
        "Told the channel's own audience via ops-wecom that it was resolved",
    ]
    details = {title: detail for _, title, detail in steps}
    assert details["Paged bob via sms (step 1)"] == f"failed after 4 tries: {FAILED}"
    assert details["Paged alice via voice (step 2)"].startswith("delivered (HTTP 201) in 0.4 s, 1 try; 10 min after")
    assert details["Acknowledged by alice via link"] == "14 min after the first notice"
    assert details["Resolved"] == "3 h 24 min after it started"
    assert steps[0][0] == local_time(iso(STARTS), ZoneInfo(ZONE)) and steps[0][0].endswith("CST")
    text = await browser.evaluate("document.body.innerText")
    assert "Time to resolve\n3 h 24 min" in text and "{" not in text.split("Labels", 1)[1]
    shot = await browser.screenshot(artifacts / "history-alert.png", 1100, 800)
    keep(shot, "history-alert.png")
    drill = get_json(f"{site}/history/alerts.json?_shape=array&alertname=AmcompanionDrill")[0]["id"]
    await browser.goto(f"{site}/-/alert/{drill}")
    assert "left out of MTTA" in await browser.evaluate("document.querySelector('.amc-note').innerText")
    assert not browser.errors, browser.errors


async def test_the_quality_page_shows_the_flapping_alert_and_the_cascade(
    site: str, browser: Browser, artifacts: Path
) -> None:
    await browser.goto(f"{site}/-/quality?since=30d")
    rows = await quality_rows(browser)
    assert "AmcompanionDrill" not in rows
    token = rows["LeaseRenewalFailing"]
    assert token[1:3] == ["6", "0 of 6"] and token[5] == "3 min" and "flapping" in token[6]
    findings = await browser.evaluate("document.querySelector('.amc-findings').innerText")
    assert "LeaseRenewalFailing: flapping: 1 series fired again within 15 min of resolving, 5 times" in findings
    cascades = await browser.evaluate("document.querySelector('.amc-cascades').innerText")
    assert "NodeDown → InstanceDown: in 4 of 4 episodes (100%)" in cascades and "cluster=eu-1" in cascades
    answer = get_json(f"{site}/-/quality.json?since=30d")
    assert {(c["leader"], c["follower"]) for c in answer["cascades"]} >= {("NodeDown", "InstanceDown")}
    shot = await browser.screenshot(artifacts / "history-quality.png", 1400, 900)
    keep(shot, "history-quality.png")
    assert not browser.errors, browser.errors


async def test_with_the_catalog_the_quality_page_lists_what_never_fired(tmp_path: Path, browser: Browser) -> None:
    path = tmp_path / "history.db"
    h = History(path)
    h.alert("DiskFull", NOW - timedelta(hours=3), resolve_after=600, acked=("alice", "link", 120))
    h.close()
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog.yaml").write_text(
        "version: 1\ngroups:\n  - name: g\n    alerts:\n"
        "      - {alert: DiskFull, expr: disk_free < 1, severity: critical}\n"
        "      - {alert: NeverSeen, expr: never_seen > 1, severity: warning}\n"
    )
    with served(path, "--catalog", str(catalog)) as base:
        await browser.goto(f"{base}/-/quality")
        rows = await quality_rows(browser)
        with pytest.raises(urllib.error.HTTPError) as refused:
            get_json(f"{base}/-/quality.json?since=soon")
    assert "never fired" in rows["NeverSeen"][6] and rows["NeverSeen"][1] == "0"
    assert "never fired" not in rows["DiskFull"][6]
    assert refused.value.code == 400
