"""`amcompanion tune` on a seeded history with planted patterns, against a copy of the contract catalog plus a file of
the alerts the patterns need. Each pattern must become its edit, worked out here again from the episodes and written
out as the exact lines expected (not with tune's own helpers); ordinary alerts get nothing; the diff patches to the
same files --write writes; those compile and pass promtool and amtool; a second run proposes nothing new."""

import itertools
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml_rs

from amcompanion.cli import main
from amcompanion.history.schema import migrate
from amcompanion.receiver.timeutil import iso
from tests.conftest import CATALOGS, ROOT, require_tool

NOW = datetime.now(UTC).replace(microsecond=0)
START = (NOW - timedelta(days=20)).replace(hour=0, minute=0, second=0)  # a midnight, UTC
TODAY = NOW.date().isoformat()
SINCE = (NOW - timedelta(days=30)).date().isoformat()
FLAP_WINDOW = timedelta(minutes=15)
LADDER_MIN = (1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120)  # the `for` values a raised one is chosen from

HOSTS = """\
# Hosts, their network and a batch: what the seeded history below exercises.
version: 1

x-host: &host                      # shared by the host alerts
  labels: {tier: "1"}

groups:
  - name: hosts
    labels: {team: infra}
    escalation: infra-oncall
    alerts:
      # Up and down every few minutes: it flaps.
      - alert: HostDown
        <<: *host
        expr: up{job="node"} == 0
        severity: critical
        for: 1m
        summary: "{{ $labels.instance }} is down"   # a comment that stays

      - alert: SwitchDown
        expr: snmp_up{job="switch"} == 0
        severity: critical
        summary: "switch {{ $labels.instance }} is down"

      - alert: HostUnreachable
        expr: probe_success{job="icmp"} == 0
        severity: warning
        summary: "{{ $labels.instance }} does not answer pings"

      - alert: QueueBacklog
        kind: expr
        for: 2m
        summary: the queue is backing up
        variants:
          - severity: warning
            expr: queue_depth > 100
          - severity: critical
            expr: queue_depth > 1000
            for: 5m

      - alert: BatchLate
        expr: batch_last_success_age_seconds > 3600
        severity: warning
        escalate: {from: warning, to: critical, after: 2h}
        summary: the nightly batch is late

      - alert: CertificateExpiry       # nothing in the history
        expr: probe_ssl_earliest_cert_expiry - time() < 86400 * 7
        severity: warning

  - name: edge
    alerts:
      - {alert: EdgeLatency, expr: 'edge_latency_seconds > 1', severity: warning}
"""

ORDINARY = ("HighDBConnections", "EdgeLatency", "CheckoutAvailabilityBurn", "RandomNoise")


class Row(NamedTuple):
    name: str
    series: str
    start: datetime
    minutes: float
    acked_after_s: float | None
    labels: dict[str, str]


def row(name: str, series: str, start: datetime, minutes: float, acked: float | None = None, **labels: str) -> Row:
    return Row(name, series, start, minutes, acked, {"alertname": name, **labels})


def planted() -> list[Row]:
    rng = random.Random(20261203)
    out: list[Row] = []

    def flapping(name: str, series: str, at: datetime, firing: float, gap: float, **labels: str) -> None:
        for n in range(10):
            out.append(row(name, series, at, firing, 60 if n % 3 == 0 else None, **labels))
            at += timedelta(minutes=firing + gap)

    flapping("HostDown", "host-1", START + timedelta(days=2, hours=10), 3, 4, instance="h1", severity="critical")
    flapping("SlowQueries", "sq-1", START + timedelta(days=5, hours=14), 5, 3, instance="db1", severity="warning")
    flapping("QueueBacklog", "queue-1", START + timedelta(days=8, hours=9), 2, 2, severity="warning")
    flapping("ExternalFlap", "ext-1", START + timedelta(days=12, hours=16), 2, 3)  # only in the history
    for day in range(10):  # every night at 03:00, nobody acknowledges; SlowQueries follows (inhibited already)
        at = START + timedelta(days=day, hours=3, minutes=rng.randrange(20))
        out.append(row("DatabaseDown", "db-1", at, 10, instance="db1", severity="critical"))
        out.append(row("SlowQueries", "sq-night", at + timedelta(seconds=20), 10, 300, instance="db1"))
        late = START + timedelta(days=day, hours=2, minutes=rng.randrange(20))
        out.append(row("BatchLate", "batch", late, 15, severity="warning"))  # its edit cannot compile: dropped
    for n, hour in enumerate((1, 7, 13, 19, 22, 4)):  # HostUnreachable 20 s after every SwitchDown, same rack
        at = START + timedelta(days=n * 3, hours=hour, minutes=rng.randrange(60))
        common = {"cluster": "eu-1", "rack": "r1", "alert_kind": "threshold"}
        out.append(row("SwitchDown", f"sw-{n}", at, 30, 120, instance=f"sw-{n}", severity="critical", **common))
        later = at + timedelta(seconds=20)
        out.append(row("HostUnreachable", f"h-{n}", later, 25, instance=f"h-{n}", severity="warning", **common))
    for n, hour in enumerate((11, 15, 6, 20, 2)):  # a cause that is not in the catalog
        at = START + timedelta(days=n * 4, hours=hour)
        out.append(row("UpstreamDown", "up-1", at, 20, 60))
        out.append(row("EdgeLatency", f"edge-{n}", at + timedelta(seconds=10), 15, 90))
    for name in ORDINARY:  # random times, many series, mostly acknowledged
        for n in range(rng.randrange(8, 20)):
            at = START + timedelta(seconds=rng.randrange(int(timedelta(days=19).total_seconds())))
            acked = rng.randrange(30, 900) if rng.random() < 0.7 else None
            out.append(row(name, f"{name}-{n % 5}", at, rng.randrange(5, 240), acked, team=rng.choice("ab")))
    return out


def write_history(path: Path, rows: list[Row]) -> None:
    """The receiver's own schema (its migrations), one alert row per episode."""
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn)
    for r in rows:
        end = r.start + timedelta(minutes=r.minutes)
        acked = r.start + timedelta(seconds=r.acked_after_s) if r.acked_after_s is not None else None
        conn.execute(
            "INSERT INTO alerts (fingerprint, alertname, severity, labels, annotations, policy, status, starts_at,"
            " resolved_at, acked_at, acked_by, first_notice_at, group_key) VALUES (?, ?, ?, ?, '{}', 'oncall',"
            " 'resolved', ?, ?, ?, ?, ?, '{}')",
            (
                r.series,
                r.name,
                r.labels.get("severity", "warning"),
                json.dumps(r.labels),
                iso(r.start),
                iso(end),
                iso(acked) if acked else None,
                "alice" if acked else None,
                iso(r.start),
            ),
        )
    conn.close()


def flaps(rows: list[Row], name: str) -> int:
    """Re-fires within the flap window, in the series that flap (3 or more, half of their re-fires or more)."""
    total = 0
    for series in {r.series for r in rows if r.name == name}:
        mine = sorted((r for r in rows if r.name == name and r.series == series), key=lambda r: r.start)
        gaps = [b.start - (a.start + timedelta(minutes=a.minutes)) for a, b in itertools.pairwise(mine)]
        soon = sum(gap <= FLAP_WINDOW for gap in gaps)
        if soon >= 3 and soon >= 0.5 * len(gaps):
            total += soon
    return total


def raised_for(rows: list[Row], name: str, for_minutes: float) -> str:
    """The first `for` of the ladder above `for` + the median firing time of the alert's episodes."""
    median = statistics.median(r.minutes for r in rows if r.name == name)
    return f"{next(m for m in LADDER_MIN if m > for_minutes + median)}m"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, list[Row]]:
    catalog = tmp_path / "rulesets"
    shutil.copytree(CATALOGS / "contract", catalog)
    (catalog / "hosts.yaml").write_text(HOSTS, encoding="utf-8")
    rows = planted()
    write_history(tmp_path / "history.db", rows)
    return catalog, tmp_path / "history.db", rows


def tune(*args: str) -> int:
    """The command in this process, through amcompanion's own parser."""
    return main(["tune", *args])


def swap(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def expected(catalog: Path, rows: list[Row]) -> dict[str, str]:
    """The planted patterns' edits, line by line, into the files as they are before tune."""
    db = (catalog / "db.yaml").read_text(encoding="utf-8")
    hosts = (catalog / "hosts.yaml").read_text(encoding="utf-8")
    main = (catalog / "main.yaml").read_text(encoding="utf-8")
    severity = f"      # amcompanion tune {TODAY}: severity critical → warning (periodic, never acknowledged)\n"
    slow = raised_for(rows, "SlowQueries", 5)  # the catalog's default `for`
    db = swap(
        db,
        "      - {alert: DatabaseDown, kind: absent, expr: 'mysql_up{job=\"mysql\"}', for: 1m, severity: critical}\n",
        severity
        + "      - {alert: DatabaseDown, kind: absent, expr: 'mysql_up{job=\"mysql\"}', for: 1m, severity: warning}\n",
    )
    db = swap(
        db,
        "      - {alert: SlowQueries, expr:",
        f"      # amcompanion tune {TODAY}: for 5m → {slow} (flapped {flaps(rows, 'SlowQueries')} times)\n"
        f"      - {{alert: SlowQueries, for: {slow}, expr:",
    )
    host_for, queue_for = raised_for(rows, "HostDown", 1), raised_for(rows, "QueueBacklog", 5)
    host_note = f"# amcompanion tune {TODAY}: for 1m → {host_for} (flapped {flaps(rows, 'HostDown')} times)"
    queue_note = f"# amcompanion tune {TODAY}: for 2m / 5m → {queue_for} (flapped {flaps(rows, 'QueueBacklog')} times)"
    never = f"# amcompanion tune: never fired in the last 30d (since {SINCE}): review or delete"
    inhibit = "    inhibits:\n      - source: SwitchDown\n"
    inhibit += "        targets: [HostUnreachable]\n        equal: [cluster, rack]\n"
    for old, new in (
        ("        for: 1m\n", f"        {host_note}\n        for: {host_for}\n"),
        ("        for: 2m\n", f"        {queue_note}\n        for: {queue_for}\n"),
        ("            for: 5m\n", f"            {queue_note}\n            for: {queue_for}\n"),
        ("      - alert: CertificateExpiry", f"      {never}\n      - alert: CertificateExpiry"),
        ("        severity: warning\n\n  - name: edge", f"        severity: warning\n{inhibit}\n  - name: edge"),
    ):
        hosts = swap(hosts, old, new)
    main = swap(main, "      - alert: HighCPU\n", f"      {never}\n      - alert: HighCPU\n")
    return {"db.yaml": db, "hosts.yaml": hosts, "main.yaml": main}


def snapshot(catalog: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(catalog.iterdir())}


def test_each_planted_pattern_becomes_its_edit_and_nothing_else(
    setup: tuple[Path, Path, list[Row]], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, db, rows = setup
    before = snapshot(catalog)
    assert tune(str(catalog), "--db", str(db), "--json") == 0
    out, err = capsys.readouterr()
    proposals = json.loads(out)
    assert sorted((p["alert"], p["kind"], p["file"]) for p in proposals) == [
        ("CertificateExpiry", "review", "hosts.yaml"),
        ("DatabaseDown", "severity", "db.yaml"),
        ("HighCPU", "review", "main.yaml"),
        ("HostDown", "for", "hosts.yaml"),
        ("QueueBacklog", "for", "hosts.yaml"),
        ("SlowQueries", "for", "db.yaml"),
        ("SwitchDown", "inhibit", "hosts.yaml"),
    ]
    named = " ".join(p["why"] for p in proposals)
    for ordinary in (*ORDINARY, "ExternalFlap", "UpstreamDown", "HostUnreachable"):
        assert not any(p["alert"] == ordinary for p in proposals)
    assert "UpstreamDown" not in named and "ExternalFlap" not in named
    by = {p["alert"]: p for p in proposals}
    host = by["HostDown"]
    median = statistics.median(r.minutes for r in rows if r.name == "HostDown")
    assert host["figures"] == {
        "flaps": flaps(rows, "HostDown"),
        "flapping_series": 1,
        "flap_window_s": 900.0,
        "median_firing_s": median * 60,
        "for_s": 60.0,
        "new_for_s": 300.0,
    }
    assert host["why"].startswith("HostDown flapped 9 times in 30d on 1 series (re-fired within 15 min of resolving")
    assert "`for` 1m → 5m" in host["why"]
    inhibit = by["SwitchDown"]
    ((item,),) = [inhibit["figures"]["inhibitions"]]
    assert (item["source"], item["targets"], item["equal"]) == ("SwitchDown", ["HostUnreachable"], ["cluster", "rack"])
    assert (item["cascades"][0]["together"], item["cascades"][0]["episodes"]) == (6, 6)
    assert inhibit["why"] == (  # severity and alert_kind are shared too, but say nothing of the cause
        "HostUnreachable started within 1 min of SwitchDown in 6 of SwitchDown's 6 episodes (100%) in 30d, sharing"
        " cluster=eu-1, rack=r1: SwitchDown inhibits HostUnreachable on equal cluster, rack"
    )
    nightly = by["DatabaseDown"]
    assert nightly["figures"]["peak_hour"] == 3 and nightly["figures"]["acknowledged"] == 0
    assert "100% of them at 03:00" in nightly["why"] and "quiet_hours" in nightly["why"]
    assert "severity critical → warning" in nightly["why"]
    for proposal in proposals:  # each diff is its proposal's alone
        assert proposal["diff"].startswith(f"--- a/{proposal['file']}\n+++ b/{proposal['file']}\n")
    # the edit whose catalog fails to load is dropped, and said so, with the catalog's own words
    assert "dropped: hosts.yaml: BatchLate fired 10 times" in err
    assert 'escalate.from: the alert has no "warning" level to escalate from' in err
    assert snapshot(catalog) == before  # without --write, nothing is written


def test_the_diff_patches_to_what_write_writes(
    setup: tuple[Path, Path, list[Row]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, db, rows = setup
    want = expected(catalog, rows)
    untouched = {name: data for name, data in snapshot(catalog).items() if name not in want}
    patched = tmp_path / "patched"
    shutil.copytree(catalog, patched)
    assert tune(str(catalog), "--db", str(db)) == 0
    report = capsys.readouterr().out
    assert "Dropped (the edited catalog failed with them):\n  hosts.yaml: BatchLate" in report
    assert "passes amcompanion compile" in report
    # the whole report, as `amcompanion tune | patch -p1 -d rulesets` gives it
    done = subprocess.run(
        ["patch", "-p1", "-d", str(patched)], input=report, text=True, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert tune(str(catalog), "--db", str(db), "--write") == 0
    assert "wrote db.yaml, hosts.yaml, main.yaml in " in capsys.readouterr().out
    written = snapshot(catalog)
    assert written == snapshot(patched)
    for name, text in want.items():  # the edits' lines, and every other line, comment and space as it was
        assert written[name].decode() == text, name
    assert {name: written[name] for name in untouched} == untouched
    hosts = yaml_rs.loads(written["hosts.yaml"].decode())
    assert hosts["groups"][0]["inhibits"] == [
        {"source": "SwitchDown", "targets": ["HostUnreachable"], "equal": ["cluster", "rack"]}
    ]


def test_the_written_catalog_compiles_and_passes_promtool_and_amtool(
    setup: tuple[Path, Path, list[Row]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, db, _ = setup
    assert tune(str(catalog), "--db", str(db), "--write") == 0
    capsys.readouterr()
    out = tmp_path / "generated"
    compiled = subprocess.run(
        [sys.executable, "-m", "amcompanion", "compile", str(catalog), "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert compiled.returncode == 0, compiled.stderr
    rules = sorted(str(p) for p in (out / "prometheus/rules").glob("*.yml"))
    checks = [
        [require_tool("promtool"), "check", "rules", *rules],
        [require_tool("amtool"), "check-config", str(out / "alertmanager/alertmanager.yml")],
    ]
    for command in checks:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    config = yaml_rs.loads((out / "alertmanager/alertmanager.yml").read_text(encoding="utf-8"))
    assert {
        "source_matchers": ['alertname="SwitchDown"'],
        "target_matchers": ['alertname="HostUnreachable"'],
        "equal": ["cluster", "rack"],
    } in config["inhibit_rules"]


def test_a_second_run_proposes_nothing_new(
    setup: tuple[Path, Path, list[Row]], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, db, _ = setup
    assert tune(str(catalog), "--db", str(db), "--write") == 0
    capsys.readouterr()
    written = snapshot(catalog)
    assert tune(str(catalog), "--db", str(db), "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    # the history still describes the old values: tune says it leaves them, and why
    assert f"note: HostDown: flapping, but tune set its `for` on {TODAY}" in err
    assert (
        "note: DatabaseDown: periodic (100% of them at 03:00) and never acknowledged, but tune set its severity"
        f" on {TODAY}" in err
    )
    assert tune(str(catalog), "--db", str(db), "--write") == 0
    assert "No proposals" in capsys.readouterr().out
    assert snapshot(catalog) == written


def test_ordinary_alerts_alone_give_no_proposal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "rulesets"
    shutil.copytree(CATALOGS / "minimal", catalog)
    rng = random.Random(7)
    rows = [
        row(
            "InstanceDown", f"i-{n % 4}", START + timedelta(seconds=rng.randrange(19 * 86400)), rng.randrange(5, 90), 60
        )
        for n in range(15)
    ]
    write_history(tmp_path / "history.db", rows)
    assert tune(str(catalog), "--db", str(tmp_path / "history.db")) == 0
    out = capsys.readouterr().out
    assert "No proposals: nothing in the history calls for an edit of the catalog." in out and "---" not in out


def test_line_ends_and_a_last_line_without_one_are_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "rulesets"
    catalog.mkdir()
    text = (
        "version: 1\r\ngroups:\r\n  - name: g\r\n    alerts:\r\n      - alert: Flappy  # flaps\r\n"
        "        expr: up == 0\r\n        severity: critical"
    )
    (catalog / "crlf.yaml").write_bytes(text.encode())
    rows: list[Row] = []
    at = START + timedelta(days=1)
    for _ in range(10):
        rows.append(row("Flappy", "f-1", at, 5, 60))
        at += timedelta(minutes=8)
    write_history(tmp_path / "history.db", rows)
    assert tune(str(catalog), "--db", str(tmp_path / "history.db"), "--write") == 0
    capsys.readouterr()
    new = raised_for(rows, "Flappy", 5)  # no `for`: the default, 5m
    assert (catalog / "crlf.yaml").read_bytes().decode() == (
        f"{text}\r\n        # amcompanion tune {TODAY}: for 5m → {new} (flapped 9 times)\r\n        for: {new}\r\n"
    )


SHAPES = """\
version: 1
groups:
  - name: alpha
    alerts:
      - alert: Blocky
        expr: |
          up{job="blocky"} == 0
          # the last line of the query, not a comment of the file
      - {alert: PowerLost, expr: 'ups_on_battery == 1', severity: critical}
      - {alert: CoolingFailed, expr: 'cooling_ok == 0', severity: critical}
      - {alert: RackHot, expr: 'rack_temp_celsius > 35', severity: warning}
      - {alert: FanStopped, expr: 'fan_rpm == 0', severity: warning}
    inhibits: []

  - name: beta
    alerts:
      - alert: LinkDown
        expr: link_up == 0
      - alert: PacketLoss
        expr: packet_loss_ratio > 0.1
      - alert: BgpDown
        expr: bgp_up == 0
      - alert: DiskSlow
        expr: disk_latency_seconds
        above: {warning: 0.5, critical: 2}   # seconds
    inhibits:
      - source: BgpDown
        targets: [LinkDown]
    # the group ends here
"""


def test_each_shape_of_yaml_takes_its_edit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `for` after a block scalar whose last line starts with #, each level of a map one severity lower,
    inhibitions into an empty flow list (two, in one proposal) and after a block list's last item, and none that would
    close a loop of inhibitions."""
    catalog = tmp_path / "rulesets"
    catalog.mkdir()
    (catalog / "shapes.yaml").write_text(SHAPES, encoding="utf-8")
    rows: list[Row] = []
    at = START + timedelta(days=1, hours=8)
    for _ in range(10):
        rows.append(row("Blocky", "b-1", at, 2, 60))
        at += timedelta(minutes=4)
    for n in range(5):
        for k, (leader, follower) in enumerate((("PowerLost", "RackHot"), ("CoolingFailed", "FanStopped"))):
            at = START + timedelta(days=2 + n, hours=4 + 6 * k)
            rows.append(row(leader, f"{leader}-{n}", at, 30, 60, dc="x", instance=f"l{n}"))
            rows.append(row(follower, f"{follower}-{n}", at + timedelta(seconds=20), 20, 60, dc="x", instance=f"f{n}"))
        at = START + timedelta(days=2 + n, hours=16)  # LinkDown, then PacketLoss and BgpDown, which mutes LinkDown
        rows.append(row("LinkDown", f"link-{n}", at, 30, 60, dc="x", instance=f"r{n}"))
        rows.append(row("PacketLoss", f"loss-{n}", at + timedelta(seconds=20), 20, 60, dc="x", instance=f"p{n}"))
        rows.append(row("BgpDown", f"bgp-{n}", at + timedelta(seconds=30), 20, 60, dc="x", instance=f"g{n}"))
    for night in range(6):  # at 04:00, nobody acknowledges
        rows.append(row("DiskSlow", "disk", START + timedelta(days=night, hours=4, minutes=3 * night), 10))
    write_history(tmp_path / "history.db", rows)
    assert tune(str(catalog), "--db", str(tmp_path / "history.db"), "--write") == 0
    capsys.readouterr()
    new = raised_for(rows, "Blocky", 5)
    want = swap(
        SHAPES,
        "          # the last line of the query, not a comment of the file\n",
        "          # the last line of the query, not a comment of the file\n"
        f"        # amcompanion tune {TODAY}: for 5m → {new} (flapped 9 times)\n        for: {new}\n",
    )
    want = swap(
        want,
        "        above: {warning: 0.5, critical: 2}   # seconds\n",
        f"        # amcompanion tune {TODAY}: severity warning, critical → info, warning"
        " (periodic, never acknowledged)\n"
        "        above: {info: 0.5, warning: 2}   # seconds\n",
    )
    want = swap(
        want,
        "    inhibits: []\n",
        "    inhibits: [{source: CoolingFailed, targets: [FanStopped], equal: [dc]},"  # as strong: by name
        " {source: PowerLost, targets: [RackHot], equal: [dc]}]\n",
    )
    want = swap(
        want,
        "        targets: [LinkDown]\n",
        "        targets: [LinkDown]\n      - source: LinkDown\n        targets: [PacketLoss]\n        equal: [dc]\n",
    )
    assert (catalog / "shapes.yaml").read_text(encoding="utf-8") == want
    loaded = yaml_rs.loads(want)
    assert loaded["groups"][0]["alerts"][0]["expr"] == yaml_rs.loads(SHAPES)["groups"][0]["alerts"][0]["expr"]
    assert tune(str(catalog), "--db", str(tmp_path / "history.db"), "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    # LinkDown → BgpDown and PacketLoss → BgpDown would close a loop: BgpDown mutes LinkDown, which mutes PacketLoss
    assert "note: LinkDown → BgpDown: a cascade, but BgpDown already mutes LinkDown" in err
    assert "note: PacketLoss → BgpDown: a cascade, but BgpDown already mutes PacketLoss" in err


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--since", "a month"], 2, "error: --since: expected a duration such as 30d, got 'a month'"),
        (["--time-zone", "Mars/Olympus"], 2, "error: --time-zone: no time zone 'Mars/Olympus'"),
        (["--db", "missing.db"], 1, "error: no history database at missing.db"),
        (["no-such-dir"], 1, "error: no-such-dir: no such catalog directory"),
        (["broken"], 1, "broken/a.yaml:3:"),
    ],
)
def test_bad_input_is_told_plainly(
    args: list[str],
    code: int,
    says: str,
    setup: tuple[Path, Path, list[Row]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog, db, _ = setup
    (catalog.parent / "broken").mkdir()
    (catalog.parent / "broken/a.yaml").write_text("version: 1\ngroups:\n  - name: [\n", encoding="utf-8")
    monkeypatch.chdir(catalog.parent)
    where = [] if not args[0].startswith("-") else ["rulesets"]
    assert tune(*where, *args, *([] if "--db" in args else ["--db", str(db)])) == code
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        tune("--no-such-flag")
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_the_command_line_runs_it(setup: tuple[Path, Path, list[Row]]) -> None:
    """The real command, as a person runs it."""
    catalog, db, _ = setup
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "amcompanion", "tune", str(catalog), "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert {p["kind"] for p in json.loads(done.stdout)} == {"for", "inhibit", "severity", "review"}
    helped = subprocess.run(
        [sys.executable, "-m", "amcompanion", "tune", "--help"], capture_output=True, text=True, check=False, env=env
    )
    assert "amcompanion tune | patch -p1 -d rulesets" in helped.stdout
