"""What real rule files say, the catalog can say: records, every comparison, variants, keep_firing_for, any
alert name, severity-less rules, group names unique per file, no interval unless set, no alert_kind on request.
The generated promtool tests of such a catalog pass, and its mistakes get errors that say what to do."""

import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from amcompanion.catalog import load_catalog
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.catalog.durations import parse_duration
from amcompanion.compiler.build import compile_catalog
from amcompanion.emit.files import render, write_tree
from amcompanion.validate import run_checks
from tests.conftest import require_tool

EVERYTHING = """\
version: 1
defaults: {kind_label: false}
groups:
  - name: disks
    alerts:
      - record: instance:disk_free:ratio
        expr: disk_free_bytes / disk_size_bytes
      - alert: DiskFull
        expr: instance:disk_free:ratio
        at_most: {warning: 0.1, critical: 0.05}
        for: 2m
        keep_firing_for: 3m
      - alert: DiskFillingUp
        kind: threshold
        summary: "{{ $labels.instance }} fills up"
        variants:
          - severity: warning
            expr: predict_linear(disk_free_bytes[1h], 86400)
            below: 0
            for: 5m
          - severity: critical
            expr: predict_linear(disk_free_bytes[30m], 14400)
            below: 0
            for: 2m
            labels: {pager: "yes"}
      - alert: "Disk-Gone (any)"
        kind: absent
        expr: disk_size_bytes{job="node"}
        variants:
          - {severity: warning, for: 2m}
          - {severity: critical, for: 6m}
      - alert: DiskNotMounted
        expr: disk_mounted
        equals: 0
        severity: null
      - alert: DiskFlaky
        expr: disk_errors
        not_equals: {info: 0}
      - alert: DiskBusy
        expr: disk_busy
        at_least: 0.9
        labels: {team: storage}
  - name: disks-pageteam
    interval: 30s
    alerts:
      - alert: DiskPaging
        expr: disk_busy > 0.99
        labels: {severity: pageteam}
"""


def write(root: Path, files: dict[str, str]) -> Path:
    catalog = root / "rulesets"
    for name, text in files.items():
        (catalog / name).parent.mkdir(parents=True, exist_ok=True)
        (catalog / name).write_text(textwrap.dedent(text))
    return catalog


def test_every_new_shape_compiles_and_its_generated_tests_pass(tmp_path: Path) -> None:
    other = "version: 1\ngroups:\n  - name: disks\n    alerts: [{alert: Other, expr: up == 0, severity: critical}]\n"
    catalog = write(tmp_path, {"a.yaml": EVERYTHING, "team/b.yaml": other})
    out = tmp_path / "generated"
    write_tree(out, render(compile_catalog(load_catalog(catalog)).documents))
    # two groups named "disks" in two files: both kept, their files told apart by the catalog file
    assert sorted(p.name for p in (out / "prometheus" / "rules").iterdir()) == [
        "a.disks.yml",
        "amcompanion.yml",
        "disks-pageteam.yml",
        "team-b.disks.yml",
    ]
    disks = yaml.safe_load((out / "prometheus" / "rules" / "a.disks.yml").read_text())["groups"][0]
    assert disks["name"] == "disks" and "interval" not in disks  # none set: Prometheus's global interval
    rules = disks["rules"]
    assert rules[0] == {"record": "instance:disk_free:ratio", "expr": "disk_free_bytes / disk_size_bytes"}
    full = [r for r in rules if r.get("alert") == "DiskFull"]
    assert [(r["expr"], r["keep_firing_for"], r["labels"]) for r in full] == [
        ("instance:disk_free:ratio <= 0.1", "3m", {"severity": "warning"}),
        ("instance:disk_free:ratio <= 0.05", "3m", {"severity": "critical"}),
    ]
    filling = [r for r in rules if r.get("alert") == "DiskFillingUp"]
    assert [(r["expr"], r["for"], r["labels"]) for r in filling] == [
        ("predict_linear(disk_free_bytes[1h], 86400) < 0", "5m", {"severity": "warning"}),
        ("predict_linear(disk_free_bytes[30m], 14400) < 0", "2m", {"pager": "yes", "severity": "critical"}),
    ]
    assert next(r for r in rules if r.get("alert") == "DiskNotMounted").get("labels") is None
    paging = yaml.safe_load((out / "prometheus" / "rules" / "disks-pageteam.yml").read_text())["groups"][0]
    assert paging["interval"] == "30s" and paging["rules"][-1]["labels"] == {"severity": "pageteam"}
    # promtool (rules and the generated tests) and amtool (config, and route tests naming "Disk-Gone (any)")
    require_tool("promtool")
    require_tool("amtool")
    failures = [f"{r.name}\n{r.detail}" for r in run_checks(out, lambda result: None) if not r.ok]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    ("alert", "message"),
    [
        (
            "{alert: A, expr: up, above: 1, below: 2}",
            "groups[0].alerts[0]: give exactly one of above, below",
        ),
        (
            "{alert: A, expr: up, above: {warning: 1}, labels: {severity: high}}",
            "groups[0].alerts[0].labels.severity: the severity comes from `severity:` or the levels' map, not from "
            "labels",
        ),
        (
            "{alert: A, kind: threshold, expr: up, above: {warning: 1}, variants: [{severity: critical, above: 2}]}",
            "groups[0].alerts[0].above: with variants, each variant gives its own level (one number)",
        ),
        (
            "{alert: A, kind: expr, variants: [{severity: critical}]}",
            "groups[0].alerts[0].variants[0]: needs expr (here or in the alert)",
        ),
        (
            "{alert: A, kind: expr, expr: up, variants: [{severity: critical, alert: B}]}",
            'groups[0].alerts[0].variants[0].alert: unknown field "alert"',
        ),
        ('{alert: " A", expr: up}', "groups[0].alerts[0].alert: an alert name must be non-empty, without spaces"),
        ("{record: 'bad name', expr: up}", 'groups[0].alerts[0].record: "bad name" is not a valid metric name'),
        ("{alert: A, kind: record, expr: up}", "groups[0].alerts[0].kind: a recording rule is written `record: NAME`"),
    ],
)
def test_mistakes_in_the_new_shapes_say_what_to_do(tmp_path: Path, alert: str, message: str) -> None:
    catalog = write(tmp_path, {"a.yaml": f"version: 1\ngroups:\n  - name: g\n    alerts:\n      - {alert}\n"})
    with pytest.raises(CatalogError) as caught:
        load_catalog(catalog)
    texts = [str(d) for d in caught.value.diagnostics]
    assert any(message in text for text in texts), texts


def test_a_long_for_is_tested_in_a_file_of_its_own_at_a_coarse_step_that_still_catches_its_edits(
    tmp_path: Path,
) -> None:
    """A `for: 1w` beside `for: 2m`s would take 20,000 steps at 1m: it goes to <group>.long.test.yml, evaluated every
    tenth of 1w (its inputs sampled finer); its tests pass, and still fail when the `for` is cut by a fifth."""
    alerts = (
        "version: 1\ngroups:\n  - name: host\n    alerts:\n"
        "      - {alert: Quick, expr: load1, above: 5, for: 2m}\n"
        "      - {alert: Idle, expr: cpu_busy, below: 0.1, for: %s}\n"
    )
    catalog = write(tmp_path, {"a.yaml": alerts % "1w"})
    out = tmp_path / "generated"
    write_tree(out, render(compile_catalog(load_catalog(catalog)).documents))
    long_file = out / "prometheus" / "tests" / "host.long.test.yml"
    long_tests = yaml.safe_load(long_file.read_text())
    step = parse_duration(long_tests["evaluation_interval"])
    assert step == 7 * 86_400_000 // 10
    assert {t["alertname"] for test in long_tests["tests"] for t in test["alert_rule_test"]} == {"Idle"}
    short = yaml.safe_load((out / "prometheus" / "tests" / "host.test.yml").read_text())
    assert short["evaluation_interval"] == "1m"  # half the shortest for: a for halved fails
    assert {t["alertname"] for test in short["tests"] for t in test["alert_rule_test"]} == {"Quick"}
    require_tool("promtool")
    failures = [f"{r.name}\n{r.detail}" for r in run_checks(out, lambda result: None) if not r.ok]
    assert not failures, "\n\n".join(failures)
    # the same tests against the rules of a `for` cut by a fifth: they fail
    mutant = tmp_path / "mutant"
    write_tree(
        mutant, render(compile_catalog(load_catalog(write(tmp_path / "m", {"a.yaml": alerts % "134h24m"}))).documents)
    )
    (mutant / "prometheus" / "tests" / "host.long.test.yml").write_text(long_file.read_text())
    done = subprocess.run(
        [require_tool("promtool"), "test", "rules", "host.long.test.yml"],
        cwd=mutant / "prometheus" / "tests",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, done.stdout
