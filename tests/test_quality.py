"""Alert quality (amcompanion.quality) on a history with planted patterns: a flapping series, a cascade, an alert at
03:00 every night that nobody acknowledges, a drill, and ordinary alerts at random times. What each should show is
worked out here again by brute force, from the definitions, not by the code under test."""

import json
import random
import sqlite3
import statistics
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from amcompanion.cli import main
from amcompanion.history.schema import RECEIVER_TABLES, migrate
from amcompanion.history.seed import seed
from amcompanion.quality.findings import WEEKDAYS, AlertQuality, Episode, Quality, Thresholds, assess
from amcompanion.quality.read import assess_history, episodes
from amcompanion.receiver.timeutil import iso
from tests.conftest import ROOT

NOW = datetime.now(UTC).replace(microsecond=0)
START = (NOW - timedelta(days=20)).replace(hour=0, minute=0, second=0)  # a midnight, UTC
LIMITS = Thresholds()


def episode(
    name: str, series: str, start: datetime, minutes: float, acked_after_s: float | None = None, **labels: str
) -> Episode:
    return Episode(
        name,
        series,
        {"alertname": name, **labels},
        start,
        start + timedelta(minutes=minutes),
        start + timedelta(seconds=acked_after_s) if acked_after_s is not None else None,
        start,
    )


def planted() -> list[Episode]:
    rng = random.Random(20261202)
    out: list[Episode] = []
    flap = START + timedelta(days=3, hours=5)
    for _ in range(10):  # one series up and down: 5 min firing, 3 min quiet
        out.append(episode("Flappy", "flappy-1", flap, 5, acked_after_s=60 if rng.random() < 0.2 else None))
        flap += timedelta(minutes=8)
    for day in range(6):  # InstanceDown 20 s after every NodeDown, on the same cluster
        at = START + timedelta(days=day * 3, hours=rng.randrange(24), minutes=rng.randrange(60))
        node = f"node-{day}"
        out.append(episode("NodeDown", node, at, 30, 120, cluster="eu-1", instance=node, severity="critical"))
        later = at + timedelta(seconds=20)
        out.append(
            episode("InstanceDown", f"i-{day}", later, 25, cluster="eu-1", instance=f"{node}:9", severity="warning")
        )
    for day in range(10):  # every night at 03:00, nobody acknowledges
        at = START + timedelta(days=day, hours=3, minutes=rng.randrange(20))
        out.append(episode("NightlyBackupSlow", "backup", at, 20))
    out.append(episode("PathCheck", "drill", START + timedelta(days=1), 1, 5, drill="true"))
    for name in ("DiskFull", "HighLatency", "CertificateExpiring"):  # ordinary: random times, many series
        for n in range(rng.randrange(8, 20)):
            at = START + timedelta(seconds=rng.randrange(int(timedelta(days=19).total_seconds())))
            acked = rng.randrange(30, 900) if rng.random() < 0.7 else None
            out.append(episode(name, f"{name}-{n % 5}", at, rng.randrange(5, 240), acked, team=rng.choice("ab")))
    return out


def expected_flapping(episodes: list[Episode]) -> set[str]:
    names = set()
    for name in {e.alertname for e in episodes}:
        for series in {e.fingerprint for e in episodes if e.alertname == name}:
            mine = sorted(
                (e for e in episodes if e.fingerprint == series and e.alertname == name), key=lambda e: e.starts_at
            )
            gaps = [mine[i + 1].starts_at - mine[i].ended_at for i in range(len(mine) - 1)]  # type: ignore[operator]
            soon = [gap for gap in gaps if gap <= LIMITS.flap_window]
            if len(soon) >= LIMITS.min_flaps and len(soon) >= LIMITS.flap_share * len(gaps):
                names.add(name)
    return names


def expected_cascades(episodes: list[Episode], limits: Thresholds = LIMITS) -> set[tuple[str, str]]:
    found = set()
    names = {e.alertname for e in episodes}
    for a in names:
        mine = [e for e in episodes if e.alertname == a]
        for b in names - {a}:
            theirs = [e for e in episodes if e.alertname == b]
            together = sum(
                any(timedelta(0) <= f.starts_at - e.starts_at <= limits.cascade_window for f in theirs) for e in mine
            )
            if len(mine) >= limits.min_episodes and together >= limits.cascade_share * len(mine):
                found.add((a, b))
    return found


def expected_periodic_hours(episodes: list[Episode]) -> dict[str, int]:
    out = {}
    for name in {e.alertname for e in episodes}:
        mine = [e for e in episodes if e.alertname == name]
        hours = Counter(e.starts_at.hour for e in mine)
        hour, count = hours.most_common(1)[0]
        if len({e.starts_at.date() for e in mine}) >= LIMITS.min_episodes and count >= LIMITS.periodic_share * len(
            mine
        ):
            out[name] = hour
    return out


def test_each_planted_pattern_is_found_and_nothing_else() -> None:
    episodes = planted()
    real = [e for e in episodes if e.labels.get("drill") != "true"]
    quality = assess(episodes, {"NeverFires": 300.0, "DiskFull": 600.0})
    by_name = {a.alertname: a for a in quality.alerts}
    flapping = {a.alertname for a in quality.alerts if "flapping" in a.findings}
    assert flapping == expected_flapping(real) == {"Flappy"}
    assert (
        {(c.leader, c.follower) for c in quality.cascades} == expected_cascades(real) == {("NodeDown", "InstanceDown")}
    )
    (cascade,) = quality.cascades
    assert (cascade.together, cascade.episodes) == (6, 6)
    assert cascade.shared_labels == {"cluster": "eu-1"}  # what an inhibition would match on (instance differs)
    periodic = {a.alertname: a.peak_hour for a in quality.alerts if a.peak_hour is not None}
    assert periodic == expected_periodic_hours(real) == {"NightlyBackupSlow": 3}
    nightly = by_name["NightlyBackupSlow"]
    assert nightly.findings == ["periodic", "never acknowledged"] and nightly.fired == 10
    assert by_name["NeverFires"].findings == ["never fired"] and by_name["NeverFires"].fired == 0
    assert "PathCheck" not in by_name  # a drill is not an alert
    for ordinary in ("DiskFull", "HighLatency", "CertificateExpiring"):
        assert by_name[ordinary].findings == [], by_name[ordinary]
    disk = by_name["DiskFull"]
    acked = [e for e in real if e.alertname == "DiskFull" and e.acked_at]
    assert disk.acknowledged == len(acked) and disk.for_s == 600.0 and disk.in_catalog
    assert disk.median_ack_s == statistics.median((e.acked_at - e.first_notice_at).total_seconds() for e in acked)  # type: ignore[operator]


def write_history(path: Path, episodes: list[Episode], migrated: bool = True) -> None:
    """The episodes as receiver rows, in a history migrated as today's receiver does it (or with the first release's
    tables only: no `drill` column)."""
    conn = sqlite3.connect(path, isolation_level=None)
    if migrated:
        migrate(conn)
    else:
        for statement in RECEIVER_TABLES:
            conn.execute(statement)
    for e in episodes:
        conn.execute(
            "INSERT INTO alerts (fingerprint, alertname, severity, labels, annotations, policy, status, starts_at,"
            " resolved_at, acked_at, acked_by, first_notice_at, group_key) VALUES (?, ?, ?, ?, '{}', 'oncall', ?, ?,"
            " ?, ?, ?, ?, '{}')",
            (
                e.fingerprint,
                e.alertname,
                e.labels.get("severity", "warning"),
                json.dumps(dict(e.labels)),
                "resolved" if e.ended_at else "firing",
                iso(e.starts_at),
                iso(e.ended_at) if e.ended_at else None,
                iso(e.acked_at) if e.acked_at else None,
                "alice" if e.acked_at else None,
                iso(e.first_notice_at),
            ),
        )
    conn.close()


def test_the_command_reads_the_history_and_the_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "history.db"
    write_history(db, planted())
    assert main(["quality", "--db", str(db), "--json", str(ROOT / "rulesets")]) == 0
    report = json.loads(capsys.readouterr().out)
    findings = {a["alertname"]: a["findings"] for a in report["alerts"]}
    assert findings["Flappy"] == ["flapping"] and findings["NightlyBackupSlow"] == ["periodic", "never acknowledged"]
    assert [(c["leader"], c["follower"], c["share"]) for c in report["cascades"]] == [("NodeDown", "InstanceDown", 1.0)]
    never = {name for name, found in findings.items() if found == ["never fired"]}
    assert "HighCPU" in never and "Flappy" not in never  # the catalog's alerts that the history never saw
    assert main(["quality", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "Flappy: flapping: 1 series fired again within 15 min of resolving, 9 times" in text
    assert "NightlyBackupSlow: periodic: 100% of its episodes start at 03:00" in text
    assert "NodeDown → InstanceDown: in 6 of 6 episodes (100%); shared: cluster=eu-1" in text
    # the same history in Shanghai's hours: the nightly alert comes at 11:00 there
    assert main(["quality", "--db", str(db), "--time-zone", "Asia/Shanghai"]) == 0
    assert "start at 11:00" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "a month"], "--since: expected a duration such as 30d"),
        (["--time-zone", "Mars/Olympus"], "--time-zone: no time zone 'Mars/Olympus'"),
        (["--db", "missing.db"], "no history database at missing.db"),
    ],
)
def test_bad_input_is_told_plainly(args: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quality", *args]) in (1, 2)
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_alerts_that_start_together_are_one_cascade_whichever_came_first() -> None:
    """Rules of one group fire at the same evaluation: the same startsAt. B then follows A and A follows B (the window
    starts at 0), in whatever order the history lists them, and a window's far edge counts to the microsecond."""
    out = []
    for day in range(5):
        at = START + timedelta(days=day, hours=2, microseconds=123457)
        out.append(episode("BWithA", f"b-{day}", at, 3, cluster="x"))
        out.append(episode("AWithB", f"a-{day}", at, 3, cluster="x"))
        out.append(episode("AtTheEdge", f"e-{day}", at + LIMITS.cascade_window, 3, cluster="x"))
        out.append(episode("JustPast", f"p-{day}", at + LIMITS.cascade_window + timedelta(microseconds=1), 3))
    for shuffled in (out, out[::-1]):
        found = {(c.leader, c.follower) for c in assess(shuffled).cascades}
        expected = expected_cascades(shuffled)
        assert ("AWithB", "AtTheEdge") in expected and ("BWithA", "JustPast") not in expected
        assert found <= expected  # one of each pair found both ways round
        assert {frozenset(pair) for pair in found} == {frozenset(pair) for pair in expected}


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe"])
def test_hours_and_weekdays_in_a_zone_are_each_episodes_own(zone: str) -> None:
    """Around a change of clocks (New York on 8 March 2026, Lord Howe's half hour on 5 April) and in a zone half an
    hour off UTC, each episode's hour and weekday are its own, as `astimezone` gives them."""
    rng = random.Random(zone)
    local = ZoneInfo(zone)
    out = []
    for around in (datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 4, 4, 15, tzinfo=UTC)):
        for n in range(300):
            at = around + timedelta(seconds=rng.randrange(-10 * 86400, 10 * 86400), microseconds=rng.randrange(10**6))
            out.append(episode("Anytime", f"s-{n % 7}", at, 5))
    (alert,) = assess(out, None, Thresholds(periodic_share=0.0), local).alerts
    hours = Counter(e.starts_at.astimezone(local).hour for e in out)
    weekdays = Counter(e.starts_at.astimezone(local).weekday() for e in out)
    top_hour = max(hours.items(), key=lambda item: (item[1], -item[0]))
    top_weekday = max(weekdays.items(), key=lambda item: (item[1], -item[0]))
    assert (alert.peak_hour, alert.peak_hour_share) == (top_hour[0], top_hour[1] / len(out))
    assert (alert.peak_weekday, alert.peak_weekday_share) == (WEEKDAYS[top_weekday[0]], top_weekday[1] / len(out))


def test_the_history_is_assessed_in_sql_as_its_episodes_are(tmp_path: Path) -> None:
    """`assess_history` (what `amcompanion quality` runs: columns from SQL, no Episode made) against `assess` of the
    episodes read one by one, on a seeded history with the planted patterns added: the same figures, to the bit."""
    db = tmp_path / "history.db"
    seed(db, 3000, days=25)
    write_history(db, planted())
    catalog = {"NeverFires": 300.0, "DiskFull": 600.0}
    for since in (NOW - timedelta(days=30), START + timedelta(days=4), NOW):
        for zone in (None, ZoneInfo("Asia/Kolkata"), ZoneInfo("America/New_York")):
            straight = assess(episodes(db, since), catalog, LIMITS, zone)
            assert asdict(assess_history(db, since, catalog, LIMITS, zone)) == asdict(straight)
    with sqlite3.connect(db) as conn:  # a stamp not as the receiver writes them: read as text instead
        conn.execute("UPDATE alerts SET starts_at = substr(starts_at, 1, 19) || 'Z' WHERE alertname = 'DiskFull'")
    since = NOW - timedelta(days=30)
    assert asdict(assess_history(db, since, catalog)) == asdict(assess(episodes(db, since), catalog))
    quality = assess_history(db, since, catalog)
    findings = {a.alertname: a.findings for a in quality.alerts}
    assert findings["Flappy"] == ["flapping"] and findings["NightlyBackupSlow"] == ["periodic", "never acknowledged"]
    assert ("NodeDown", "InstanceDown") in {(c.leader, c.follower) for c in quality.cascades}
    assert "PathCheck" not in findings


def both_ways(tmp_path: Path, episodes: list[Episode], catalog: dict[str, float] | None = None) -> Quality:
    """`assess` of the episodes, checked to be what `assess_history` says of them written as a history."""
    db = tmp_path / "edges.db"
    db.unlink(missing_ok=True)
    write_history(db, episodes)
    quality = assess(episodes, catalog)
    assert asdict(assess_history(db, START - timedelta(days=1), catalog)) == asdict(quality)
    return quality


def test_no_alerts_one_alert_and_alerts_still_firing(tmp_path: Path) -> None:
    """The edges of the columns: an empty period (the catalog's alerts only), one alert, and alerts with no end (still
    firing) or no acknowledgement: no median of what is not there, no re-fire after an episode that did not end."""
    assert both_ways(tmp_path, [], {"Quiet": 60.0}).alerts == [
        AlertQuality("Quiet", 0, 0, None, None, None, 60.0, 0, 0, None, 0.0, None, 0.0, True, ["never fired"])
    ]
    firing = episode("Lonely", "l-1", START + timedelta(hours=5), 10)._replace(ended_at=None)
    (alone,) = both_ways(tmp_path, [firing]).alerts
    assert (alone.fired, alone.acknowledged, alone.median_ack_s, alone.median_resolve_s, alone.median_firing_s) == (
        1, 0, None, None, None
    )  # fmt: skip
    assert (alone.peak_hour, alone.peak_hour_share, alone.peak_weekday_share, alone.findings) == (None, 1.0, 1.0, [])
    # one series: ended, then twice again within a minute of the one before (the second still firing), and once more
    # after that one, which is no re-fire
    at = START + timedelta(days=2)
    series = [
        episode("Stuck", "s-1", at, 1, acked_after_s=30.000001),
        episode("Stuck", "s-1", at + timedelta(minutes=2), 1, acked_after_s=61.5),
        episode("Stuck", "s-1", at + timedelta(minutes=3, seconds=30), 10)._replace(ended_at=None),
        episode("Stuck", "s-1", at + timedelta(minutes=4), 1),
    ]
    (stuck,) = both_ways(tmp_path, series).alerts
    assert stuck.median_ack_s == statistics.median([30.000001, 61.5]) and stuck.acknowledged == 2
    assert stuck.median_firing_s == 60.0 and stuck.median_resolve_s == 60.0  # of the three that ended
    assert (stuck.flaps, stuck.flapping_series) == (0, 0)  # 2 re-fires soon: fewer than min_flaps


def test_ties_count_each_episode_once(tmp_path: Path) -> None:
    """Episodes that start at one moment, of one name and of two: each counts once in its name's figures, and the
    two names follow each other (one cascade, led by the one followed more often: each of its 18 episodes)."""
    out = []
    for day in range(6):
        at = START + timedelta(days=day, hours=7, microseconds=999_999)
        out += [episode("Tied", f"t-{n}", at, 5 + n, cluster="c") for n in range(3)]
        out += [episode("AlsoTied", f"a-{day}", at, 5, cluster="c", instance=f"i-{day}")]
    quality = both_ways(tmp_path, out)
    tied = next(a for a in quality.alerts if a.alertname == "Tied")
    assert (tied.fired, tied.peak_hour, tied.peak_hour_share, tied.median_firing_s) == (18, 7, 1.0, 360.0)
    assert [(c.leader, c.follower, c.together, c.episodes) for c in quality.cascades] == [("Tied", "AlsoTied", 18, 18)]
    assert quality.cascades[0].shared_labels == {"cluster": "c"}


def test_stamps_are_read_to_the_microsecond(tmp_path: Path) -> None:
    """A stamp's fraction of a second is read whole: SQLite's date functions round to milliseconds, which put
    12:00:00.999600 at 12:00:01 (a second off, once read as seconds plus the fraction)."""
    at = START + timedelta(hours=12, microseconds=999_600)
    noticed = [episode("Late", f"l-{n}", at + timedelta(minutes=n), 5, acked_after_s=10) for n in range(3)]
    noticed = [e._replace(acked_at=e.starts_at.replace(microsecond=0) + timedelta(seconds=10)) for e in noticed]
    (late,) = both_ways(tmp_path, noticed).alerts
    assert late.median_ack_s == 9.0004


def test_a_history_before_drills_were_marked_and_stamps_in_another_form(tmp_path: Path) -> None:
    """A history from before the `drill` column (m0007), and one whose stamps are 27 characters but not as the
    receiver writes them: read as text, with the same figures."""
    since = NOW - timedelta(days=30)
    old = tmp_path / "old.db"
    write_history(old, planted(), migrated=False)
    assert asdict(assess_history(old, since)) == asdict(assess(planted()))
    spaced = tmp_path / "spaced.db"
    write_history(spaced, planted())
    with sqlite3.connect(spaced) as conn:  # a space for the T: SQLite reads it, and so does fromisoformat
        conn.execute("UPDATE alerts SET acked_at = replace(acked_at, 'T', ' ') WHERE alertname = 'DiskFull'")
    assert asdict(assess_history(spaced, since)) == asdict(assess(planted()))
