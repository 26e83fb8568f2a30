"""Proving alerts through their own query (amcompanion/proof/): the evaluator agrees with promtool, the generated
tests drive the query of every shape real rules use, and a mutant of any of those queries fails them."""

import math
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from amcompanion.catalog import load_catalog
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.catalog.durations import parse_duration
from amcompanion.compiler.build import compile_catalog
from amcompanion.compiler.unittests import values_notation
from amcompanion.emit.files import render, write_tree
from amcompanion.proof import tree
from amcompanion.proof.evaluate import Evaluator, Inputs, labels_of
from tests.conftest import require_tool

# -- the evaluator against promtool ------------------------------------------------------------------------
STEPS = 40
INTERVAL = 60_000
SERIES = {  # every shape of input the generated tests use, in promtool's terms
    'req_total{job="api", code="200", instance="a"}': [float(i * 30) for i in range(STEPS)],
    'req_total{job="api", code="500", instance="a"}': [float(i * 3 + (i > 20) * (i - 20) * 7) for i in range(STEPS)],
    'req_total{job="api", code="500", instance="b"}': [float((i % 17) * 5) for i in range(STEPS)],  # resets
    'free_bytes{instance="a", mount="/"}': [1000.0 - 7.5 * i for i in range(STEPS)],
    'free_bytes{instance="b", mount="/data"}': [500.0 + (i % 3) for i in range(STEPS)],
    'size_bytes{instance="a", mount="/"}': [2000.0] * STEPS,
    'size_bytes{instance="b", mount="/data"}': [1000.0] * STEPS,
    'boot_time{instance="a"}': [i * 60.0 - 300 for i in range(STEPS)],
    'up{job="api", instance="a"}': [1.0 if i < 25 else 0.0 for i in range(STEPS)],
    'info{instance="a", version="1.2"}': [1.0] * STEPS,
    **{
        f'lat_bucket{{le="{le}", job="api"}}': [float(i * n) for i in range(STEPS)]
        for le, n in (("0.1", 1), ("0.5", 4), ("1", 7), ("+Inf", 8))
    },
}
EXPRESSIONS = [
    "rate(req_total[5m])",
    "irate(req_total[5m])",
    "increase(req_total[10m])",
    "delta(free_bytes[5m])",
    "idelta(free_bytes[5m])",
    "deriv(free_bytes[10m])",
    "predict_linear(free_bytes[10m], 3600)",
    'sum by (code) (rate(req_total{job="api"}[5m]))',
    "sum without (instance) (rate(req_total[5m]))",
    "avg by (mount) (free_bytes)",
    "max(free_bytes) - min(free_bytes)",
    "count by (job) (req_total)",
    "stddev(free_bytes)",
    "topk(1, free_bytes)",
    "quantile(0.9, free_bytes)",
    "100 * (1 - free_bytes / size_bytes)",
    "free_bytes / on (instance) group_left (mount) size_bytes",
    "free_bytes / ignoring (mount) (size_bytes * 1)",
    # two addends a sum: Prometheus adds a nested aggregation's input in map order, so the floats of three or
    # more non-integers may be added in any order, run by run
    'sum(rate(req_total{code=~"5.."}[5m])) / sum(rate(req_total{instance="a"}[5m]))',
    "free_bytes > 600 and on (instance) up == 1",
    "free_bytes < 600 or size_bytes > 1500",
    "free_bytes unless on (instance) up == 0",
    'absent(nothing{job="x"})',
    "absent_over_time(up[5m])",
    "avg_over_time(free_bytes[5m])",
    "max_over_time(free_bytes[5m])",
    "min_over_time(free_bytes[5m])",
    "sum_over_time(free_bytes[5m])",
    "count_over_time(up[10m])",
    "stddev_over_time(free_bytes[10m])",
    "quantile_over_time(0.5, free_bytes[10m])",
    "last_over_time(free_bytes[5m])",
    "present_over_time(up[5m])",
    "histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))",
    "histogram_quantile(0.5, lat_bucket)",
    "time() - boot_time",
    "changes(up[30m])",
    "resets(req_total[30m])",
    'label_replace(info, "major", "$1", "version", "(\\\\d+)\\\\..*")',
    'label_join(info, "id", "-", "instance", "version")',
    "abs(free_bytes - 700)",
    "clamp(free_bytes, 600, 800)",
    "round(free_bytes / 7, 0.5)",
    "max_over_time(rate(req_total[5m])[10m:1m])",
    "rate(req_total[5m] offset 5m)",
    "free_bytes > bool 800",
    "scalar(sum(size_bytes)) - free_bytes",
    "sort_desc(free_bytes)",
    "sqrt(free_bytes) + ln(size_bytes)",
]


def _inputs() -> Inputs:
    labels, values = [], []
    for text, row in SERIES.items():
        name, _, inner = text.partition("{")
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', inner))
        labels.append(labels_of({"__name__": name, **pairs}))
        values.append(row)
    return Inputs(INTERVAL, labels, values)


def _labels_text(labels: tuple) -> str:
    mapping = dict(labels)
    name = mapping.pop("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(mapping.items()))
    return f"{name}{{{inner}}}"


def test_the_evaluator_computes_what_promtool_computes(tmp_path: Path) -> None:
    """Every shape the generated tests rely on, at several times: the values and labels promtool finds are the
    evaluator's, to the bit (promtool compares them with a relative tolerance of 1e-6 and prints both)."""
    promtool = require_tool("promtool")
    evaluator = Evaluator(_inputs())
    checks = []
    for expr in EXPRESSIONS:
        node = tree.parse(expr)
        assert not isinstance(node, str), node
        for step in (6, 21, 27, 39):
            vector = evaluator.vector(node, step * INTERVAL)
            samples = [{"labels": _labels_text(labels), "value": value} for labels, value in vector]
            assert all(math.isfinite(s["value"]) for s in samples), (expr, samples)
            checks.append({"expr": expr, "eval_time": f"{step}m", "exp_samples": samples})
    assert sum(bool(c["exp_samples"]) for c in checks) > len(checks) * 3 // 4  # mostly non-empty: a real check
    (tmp_path / "rules.yml").write_text("groups: []\n")
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": values_notation(v)} for s, v in SERIES.items()],
                "promql_expr_test": checks,
            }
        ],
    }
    (tmp_path / "t.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


# -- generated tests through the query, and mutants of it --------------------------------------------------
SHAPES = """\
version: 1
defaults: {severities: [warning, critical], scrape_interval: 30s}
groups:
  - name: shapes
    alerts:
      - alert: CpuBusy
        expr: 100 * (1 - avg by (instance) (rate(cpu_seconds_total{mode="idle"}[5m])))
        above: {warning: 80, critical: 95}
        for: 5m
        summary: "CPU {{ $value | humanize }}% on {{ $labels.instance }}"
      - alert: ErrorRatio
        kind: ratio
        errors: sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))
        total: sum by (service) (rate(http_requests_total[5m]))
        above: 0.05
        severity: critical
        summary: "{{ $labels.service }} fails {{ $value | humanizePercentage }}"
      - alert: DiskFull
        expr: node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay"}
        below: 0.1
        severity: warning
        for: 2m
      - alert: SlowRequests
        expr: histogram_quantile(0.99, sum by (le, service) (rate(request_seconds_bucket[5m])))
        above: 0.5
        severity: warning
      - alert: JobStale
        expr: time() - job_last_success_timestamp_seconds
        above: 3600
        severity: warning
      - alert: Flapping
        expr: changes(link_up[15m])
        above: 2
        severity: warning
      - alert: PeakLoad
        expr: max_over_time(load1[10m])
        above: 4
        severity: warning
      - alert: FillingUp
        kind: trend
        expr: disk_free_bytes{mount="/"}
        lookback: 30m
        horizon: 1h
        below: 0
        severity: critical
      - alert: RestartsBurst
        kind: frequency
        expr: restarts_total
        within: 10m
        above: 3
        severity: warning
      - alert: Backlog
        expr: queue_depth > 100 and on (queue) queue_consumers == 0
        severity: critical
        for: 1m
"""
MUTANTS = [  # (alert, what the expression says, a mistake in it)
    ("CpuBusy", "[5m]", "[10m]"),
    ("CpuBusy", "rate(", "irate("),
    ("CpuBusy", 'mode="idle"', 'mode="user"'),
    ("CpuBusy", "avg by (instance)", "avg by (instance, mode)"),
    ("ErrorRatio", 'code=~"5.."', 'code=~"4.."'),
    ("ErrorRatio", "sum by (service) (rate(http_requests_total[5m]))", "sum(rate(http_requests_total[5m]))"),
    ("DiskFull", "} / node_filesystem_size_bytes", "} * node_filesystem_size_bytes"),
    ("DiskFull", "node_filesystem_avail_bytes", "node_filesystem_free_bytes"),
    ("SlowRequests", "0.99", "0.9"),
    ("SlowRequests", "by (le, service)", "by (le)"),
    ("JobStale", "time() -", "1000 +"),
    ("Flapping", "changes(link_up[15m])", "changes(link_up[5m])"),
    ("PeakLoad", "max_over_time(load1[10m])", "max_over_time(load1[5m])"),
    ("PeakLoad", "max_over_time", "avg_over_time"),
    ("FillingUp", "[30m]", "[1h]"),
    ("RestartsBurst", "increase(restarts_total[10m])", "rate(restarts_total[10m])"),
    ("Backlog", "queue_consumers == 0", "queue_consumers == 1"),
    ("Backlog", "queue_depth > 100", "queue_depth < 100"),
]


def proven(tmp_path_factory: pytest.TempPathFactory, name: str, catalog: str) -> Path:
    """The catalog compiled to a generated/ directory, every alert driven through its query."""
    root = tmp_path_factory.mktemp(name)
    (root / "rulesets").mkdir()
    (root / "rulesets" / f"{name}.yaml").write_text(catalog)
    output = compile_catalog(load_catalog(root / "rulesets"))
    assert output.unproven == []
    write_tree(root / "generated", render(output.documents))
    return root / "generated"


def with_mutant_rules(original: Path, out: Path, group: str, alert: str, before: str, after: str) -> Path:
    """A copy of generated/ whose rules of `alert` have `before` edited to `after`, its tests left as they were."""
    for part in ("rules", "tests"):
        (out / "prometheus" / part).mkdir(parents=True)
        for path in (original / "prometheus" / part).iterdir():
            (out / "prometheus" / part / path.name).write_text(path.read_text())
    rules_file = out / f"prometheus/rules/{group}.yml"
    document = yaml.safe_load(rules_file.read_text())
    changed = 0
    for rule in document["groups"][0]["rules"]:
        if rule.get("alert") == alert and before in rule["expr"]:
            rule["expr"] = rule["expr"].replace(before, after, 1)
            changed += 1
    assert changed, f"{before!r} is not in {alert}'s rules"
    rules_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return out


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return proven(tmp_path_factory, "shapes", SHAPES)  # every one of these shapes is driven through its query


def group_tests(out: Path, group: str) -> subprocess.CompletedProcess:
    """promtool over every test file of the group (its longer-horizon ones too)."""
    tests = sorted(str(p.relative_to(out)) for p in (out / "prometheus/tests").glob(f"{group}.*test.yml"))
    assert tests, f"no test files of {group}"
    return subprocess.run(
        [require_tool("promtool"), "test", "rules", *tests], cwd=out, capture_output=True, text=True, timeout=300
    )


def test_every_shape_is_tested_through_its_query_and_passes(shapes: Path) -> None:
    rules = yaml.safe_load((shapes / "prometheus/rules/shapes.yml").read_text())["groups"][0]["rules"]
    # the rules carry the expressions; the only recording rule is none (every trend input is a selector)
    assert [r for r in rules if "record" in r] == []
    assert {r["expr"] for r in rules if r["alert"] == "CpuBusy"} == {
        '100 * (1 - avg by (instance) (rate(cpu_seconds_total{mode="idle"}[5m]))) > 80',
        '100 * (1 - avg by (instance) (rate(cpu_seconds_total{mode="idle"}[5m]))) > 95',
    }
    tests = (shapes / "prometheus/tests/shapes.test.yml").read_text()
    fed = {line.split("{")[0].split()[-1] for line in tests.splitlines() if "- series:" in line}
    assert {"cpu_seconds_total", "http_requests_total", "request_seconds_bucket", "link_up", "queue_depth"} <= fed
    assert "amcompanion:" not in tests  # no stand-in series
    done = group_tests(shapes, "shapes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr


@pytest.mark.parametrize(("alert", "before", "after"), MUTANTS, ids=[f"{a}: {b} → {c}" for a, b, c in MUTANTS])
def test_a_mistake_in_the_query_fails_the_generated_tests(
    shapes: Path, tmp_path: Path, alert: str, before: str, after: str
) -> None:
    """The rules of the mutant, the tests of the original: a changed window, function, matcher, grouping,
    metric or comparison is caught."""
    done = group_tests(with_mutant_rules(shapes, tmp_path / "generated", "shapes", alert, before, after), "shapes")
    assert done.returncode == 1 and f"alertname: {alert}," in done.stderr, done.stdout + done.stderr[-2000:]


# -- examples: and unproven alerts ------------------------------------------------------------------------
NIGHTLY = """\
version: 1
groups:
  - name: batch
    alerts:
      - alert: NightlyBatchFailing
        expr: hour() < 6 and on () (sum(rate(batch_jobs_failed_total[5m])) > 0)
        severity: info
        examples:
          - input:
              - {series: 'batch_jobs_failed_total{job="batch"}', values: '0+1x30'}
            at: 30m
            fires: %s
      - alert: Everything
        expr: count({__name__=~".+"}) > 100000
        severity: info
"""


def test_examples_test_a_query_the_compiler_cannot_drive_and_the_rest_is_reported(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    results = {}
    for fires in ("[info]", "[]"):
        catalog = tmp_path / fires.strip("[]") / "rulesets"
        catalog.mkdir(parents=True)
        (catalog / "batch.yaml").write_text(NIGHTLY % fires)
        output = compile_catalog(load_catalog(catalog))
        # the nightly alert is proven by its example; the other cannot be driven and has none: named, with why
        assert output.unproven == ['batch/Everything: the selector {__name__=~".+"} names no metric']
        out = catalog.parent / "generated"
        write_tree(out, render(output.documents))
        tests = (out / "prometheus/tests/batch.test.yml").read_text()
        assert 'Unproven: Everything: the selector {__name__=~".+"} names no metric' in tests
        assert "examples of NightlyBatchFailing, 1 of 1" in tests
        done = subprocess.run(
            [promtool, "test", "rules", "prometheus/tests/batch.test.yml"], cwd=out, capture_output=True, text=True
        )
        results[fires] = done.returncode
    assert results == {"[info]": 0, "[]": 1}  # the example really checks what fires


def test_a_malformed_example_is_an_error_at_its_place(tmp_path: Path) -> None:
    catalog = tmp_path / "rulesets"
    catalog.mkdir()
    text = textwrap.dedent(
        """\
        version: 1
        groups:
          - name: batch
            alerts:
              - alert: A
                expr: hour() < 6
                severity: info
                examples:
                  - input:
                      - {series: 'x{job="batch"}', values: '0+1'}
                      - {series: 'not a series(', values: '1'}
                    fires: [urgent]
                    interval: 0s
        """
    )
    (catalog / "batch.yaml").write_text(text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(catalog)
    messages = sorted(str(d) for d in caught.value.diagnostics)
    assert any("batch.yaml:10:" in m and "promtool's notation" in m for m in messages), messages
    assert any("batch.yaml:11:" in m and "expected a series" in m for m in messages), messages
    assert any("batch.yaml:12:" in m and 'unknown severity "urgent"' in m for m in messages), messages
    assert any("batch.yaml:13:" in m and "more than 0s" in m for m in messages), messages


def test_values_notation_gives_back_the_exact_floats_promtool_reads() -> None:
    """Progressions only where repeated addition, as promtool expands them, gives the same floats."""
    assert values_notation([0.0, 5.0, 10.0, 15.0, None, None, 7.0, 7.0]) == "0+5x3 _x2 7x1"
    assert values_notation([0.0, 0.1, 0.2, 0.3]) == "0+0.1x2 0.3"  # 0.1 + 0.1 + 0.1 is not 0.3
    assert values_notation([0.0, 0.1, 0.2, 0.30000000000000004]) == "0+0.1x3"


# -- evaluations coarser than samples, files by horizon ------------------------------------------------------
HORIZONS = """\
version: 1
groups:
  - name: horizons
    alerts:
      - alert: ErrorBurst
        expr: rate(errors_total[1m])
        above: {warning: 5, critical: 10}
        for: 10m
      - alert: DiskFull
        expr: >-
          node_fs_avail_bytes{fstype!~"tmpfs"} / node_fs_size_bytes < 0.1
          and on (instance, device) node_fs_readonly == 0
        for: 10m
        severity: critical
      - alert: HotAllNight
        expr: avg_over_time(temperature_celsius[5m])
        above: 80
        for: 6h
        severity: warning
      - alert: IdleForAWeek
        expr: rate(requests_total[5m])
        below: 1
        for: 1w
        severity: info
"""
HORIZON_MUTANTS = [  # evaluations 10 samples apart: each level's case tells apart what the other's does not
    ("ErrorBurst", "[1m]", "[2m]"),
    ("ErrorBurst", "rate(", "irate("),
    ("ErrorBurst", "errors_total", "errors_count"),
    ("DiskFull", "node_fs_readonly == 0", "node_fs_readonly == 1"),
    ("DiskFull", 'fstype!~"tmpfs"', 'fstype=~"tmpfs"'),
    ("HotAllNight", "temperature_celsius", "temperature"),
    ("IdleForAWeek", "requests_total", "requests_count"),
]


@pytest.fixture(scope="module")
def horizons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return proven(tmp_path_factory, "horizons", HORIZONS)  # DiskFull too: `ro == 0` held, fstype on both sides


def test_rules_are_evaluated_as_coarsely_as_their_for_and_sampled_as_finely_as_their_windows(horizons: Path) -> None:
    """`for: 10m` beside `rate[1m]`: evaluated every 5m, inputs every 30s; `for: 6h` and `for: 1w` each in a file
    of longer horizon, so no file evaluates every rule thousands of times; all pass."""
    tests = horizons / "prometheus/tests"
    short = yaml.safe_load((tests / "horizons.test.yml").read_text())
    assert short["evaluation_interval"] == "5m"
    assert {group["interval"] for group in short["tests"]} == {"30s"}
    named = {}
    for name in ("horizons.test.yml", "horizons.long.test.yml", "horizons.long2.test.yml"):
        document = yaml.safe_load((tests / name).read_text())
        named[name] = {check["alertname"] for group in document["tests"] for check in group.get("alert_rule_test", [])}
        steps = max(
            (parse_duration(check["eval_time"]) or 0) // (parse_duration(document["evaluation_interval"]) or 1)
            for group in document["tests"]
            for check in group["alert_rule_test"]
        )
        assert steps <= 60, (name, steps)  # evaluations of every rule, per test group
    assert named == {
        "horizons.test.yml": {"ErrorBurst", "DiskFull"},
        "horizons.long.test.yml": {"HotAllNight"},
        "horizons.long2.test.yml": {"IdleForAWeek"},
    }
    done = group_tests(horizons, "horizons")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr


@pytest.mark.parametrize(
    ("alert", "before", "after"), HORIZON_MUTANTS, ids=[f"{a}: {b} → {c}" for a, b, c in HORIZON_MUTANTS]
)
def test_a_mistake_fails_tests_evaluated_coarser_than_sampled(
    horizons: Path, tmp_path: Path, alert: str, before: str, after: str
) -> None:
    done = group_tests(
        with_mutant_rules(horizons, tmp_path / "generated", "horizons", alert, before, after), "horizons"
    )
    assert done.returncode == 1 and f"alertname: {alert}," in done.stderr, done.stdout + done.stderr[-2000:]


def test_alerts_of_one_name_tested_in_files_of_different_horizons_expect_each_other(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """An alert's `for: 1m` variant and its `for: 1h` one (kube-prometheus writes its severities so) go to different
    test files; promtool evaluates both in each, so each file expects what the other's rule fires too."""
    out = proven(
        tmp_path_factory,
        "volumes",
        """\
version: 1
groups:
  - name: volumes
    alerts:
      - alert: InodesFilling
        kind: expr
        variants:
          - {expr: 'inodes_free < 1000', for: 1m, severity: critical}
          - {expr: 'inodes_used > 5 and inodes_free < 1000', for: 1h, severity: warning}
""",
    )
    tests = sorted(p.name for p in (out / "prometheus/tests").glob("volumes.*test.yml"))
    assert tests == ["volumes.long.test.yml", "volumes.test.yml"]
    done = group_tests(out, "volumes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_filter_of_an_unless_does_not_take_the_labels_that_would_remove_what_it_keeps(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """kube-prometheus's KubeNodeUnreachable: labels matched outside aggregations go to every selector, but not
    to an `unless` filter, which would then match the taint it exists to keep, and the alert could never fire."""
    out = proven(
        tmp_path_factory,
        "taints",
        """\
version: 1
groups:
  - name: taints
    alerts:
      - alert: NodeUnreachable
        expr: >-
          (kube_node_spec_taint{key="node.kubernetes.io/unreachable", effect="NoSchedule"}
          unless ignoring(key, value) kube_node_spec_taint{key=~"ToBeDeletedByClusterAutoscaler"}) == 1
        for: 15m
        severity: warning
""",
    )
    done = group_tests(out, "taints")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
