"""amcompanion lint: each check fires on a real-shaped mistake and stays silent on its fix."""

import json
from pathlib import Path

import pytest

from amcompanion.catalog import load_catalog
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.cli import main
from amcompanion.importers.run import import_sources
from amcompanion.lint import CHECKS, lint, locate_findings

DATA = Path(__file__).parent / "data" / "rules"


def catalog_of(tmp_path: Path, alerts: str, defaults: str = "") -> Path:
    root = tmp_path / "rulesets"
    root.mkdir(exist_ok=True)
    head = f"version: 1\n{defaults}groups:\n  - name: g\n    alerts:\n"
    body = "".join(f"      {line}\n" for line in alerts.strip("\n").splitlines())
    (root / "alerts.yaml").write_text(head + body, encoding="utf-8")
    return root


def findings(tmp_path: Path, alerts: str, defaults: str = "") -> list[str]:
    root = catalog_of(tmp_path, alerts, defaults)
    catalog = load_catalog(root)
    return [str(f) for f in locate_findings(lint(catalog), root, catalog.root_name)]


CASES = {
    "template-label": (
        """- alert: PostgresDeadlocks
  expr: sum by (datname) (rate(pg_stat_database_deadlocks[5m])) > 0
  summary: "deadlocks on {{ $labels.instance }} in {{ $labels.datname }}"
""",
        """- alert: PostgresDeadlocks
  expr: sum by (instance, datname) (rate(pg_stat_database_deadlocks[5m])) > 0
  summary: "deadlocks on {{ $labels.instance }} in {{ $labels.datname }}"
""",
        '7:18: template-label: reads label "instance"',
    ),
    "vector-matching": (
        """- alert: HighErrorRatio
  expr: sum by (job) (rate(errors_total[5m])) / on (instance) sum by (instance) (rate(requests_total[5m])) > 0.05
""",
        """- alert: HighErrorRatio
  expr: sum by (instance) (rate(errors_total[5m])) / on (instance) sum by (instance) (rate(requests_total[5m])) > 0.05
""",
        '6:15: vector-matching: "/ on (instance)" matches on label "instance", which the left side\'s output does not '
        "carry (it keeps job): no series of the right side that has it can pair",
    ),
    "rate-window": (
        """- alert: HighErrors
  expr: rate(http_errors_total[1m]) > 1
""",
        """- alert: HighErrors
  expr: rate(http_errors_total[2m]) > 1
""",
        "6:15: rate-window: rate() over [1m] is under 2× the scrape interval (1m)",
    ),
    "regex": (
        """- alert: NodeNetworkInterfaceFlapping
  expr: changes(node_network_up{integration!~".*"}[2m]) > 2
""",
        """- alert: NodeNetworkInterfaceFlapping
  expr: changes(node_network_up{device!~"veth.+"}[2m]) > 2
""",
        'regex: integration!~".*" matches no series',
    ),
    "counter-without-rate": (
        """- alert: ManyRestarts
  expr: kube_pod_container_status_restarts_total > 5
""",
        """- alert: ManyRestarts
  expr: increase(kube_pod_container_status_restarts_total[1h]) > 5
""",
        "counter-without-rate: kube_pod_container_status_restarts_total looks like a counter",
    ),
    "no-comparison": (
        """- alert: DiskUsage
  expr: node_filesystem_avail_bytes / node_filesystem_size_bytes
""",
        """- alert: DiskUsage
  expr: node_filesystem_avail_bytes / node_filesystem_size_bytes < 0.1
""",
        "no-comparison: the expression compares nothing",
    ),
    "absent-for": (
        """- alert: NodeExporterDown
  kind: absent
  expr: up{job="node"}
  for: 1m
""",
        """- alert: NodeExporterDown
  kind: absent
  expr: up{job="node"}
  for: 2m
""",
        "8:14: absent-for: for: 1m is under 2× the scrape interval (1m)",
    ),
    "duplicate-rule": (
        """- alert: ApiDown
  expr: up{job="api"} == 0
- alert: ApiUnreachable
  expr: up{job="api"} == 0
""",
        """- alert: ApiDown
  expr: up{job="api"} == 0
- alert: ApiUnreachable
  expr: up{job="api"} == 0
  labels: {team: edge}
""",
        '7:9: duplicate-rule: same expression, labels and severity as "ApiDown" (at rulesets/alerts.yaml:5)',
    ),
}


@pytest.mark.parametrize("check", list(CASES))
def test_check_fires_on_the_mistake_and_not_on_its_fix(tmp_path: Path, check: str) -> None:
    wrong, fixed, expected = CASES[check]
    found = findings(tmp_path, wrong)
    assert any(expected in line and line.startswith("rulesets/alerts.yaml:") for line in found), found
    assert [line for line in findings(tmp_path, fixed) if f": {check}: " in line] == []


@pytest.mark.parametrize(
    ("expr", "silent"),
    [
        ("sum(rate(x[5m])) > 1", False),  # sum without by keeps no label
        ("sum without (instance) (rate(x[5m])) > 1", False),
        ("topk(3, rate(x[5m])) > 1", True),  # topk returns input series
        ("rate(x[5m]) > on (job) group_left (instance) sum by (job, instance) (y)", True),
        ("sum by (job) (x) > on (job) sum by (job) (y)", False),
        ('absent(up{instance="a"})', True),
    ],
)
def test_template_label_follows_prometheus_label_rules(tmp_path: Path, expr: str, silent: bool) -> None:
    alert = f"- alert: A\n  expr: '{expr}'\n  for: 5m\n  summary: '{{{{ $labels.instance }}}}'\n"
    found = [line for line in findings(tmp_path, alert) if "template-label" in line]
    assert (found == []) is silent, found


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (  # two aggregations by different labels, matched one-to-one on all of them
            "sum by (pod) (rate(http_errors_total[5m])) / sum by (namespace) (rate(http_requests_total[5m])) > 0.05",
            'the two sides of "/" keep different labels (left keeps pod; right keeps namespace) and are matched on all '
            "of them, so no series pair and the result is always empty: aggregate both by the same labels, or match "
            "with on (...)",
        ),
        (  # the per-instance total needs on (job) group_left
            "sum by (job, instance) (rate(http_errors_total[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.1",
            'the two sides of "/" keep different labels (left keeps instance, job; right keeps job)',
        ),
        (  # group_left copies a label the one side dropped
            "sum by (namespace) (kube_pod_info) * on (namespace) group_left (team) max by (namespace) "
            "(kube_namespace_labels) > 100",
            '"* on (namespace) group_left (team)" copies label "team" from the right side, whose output does not carry '
            "it (it keeps namespace): the result never has it; keep it in the right side's aggregation or drop it from "
            "group_left (...)",
        ),
        (  # unless filters nothing
            "up == 0 unless on (instance) max by (job) (maintenance_mode) == 1",
            '"unless on (instance)" matches on label "instance", which the right side\'s output does not carry (it '
            "keeps job): no series of the left side that has it can pair",
        ),
        (  # group_right: the one side is the left
            "sum by (job) (x) / on (job) group_right (instance) rate(y_total[5m]) > 1",
            '"/ on (job) group_right (instance)" copies label "instance" from the left side',
        ),
    ],
)
def test_vector_matching_finds_sides_that_never_pair(tmp_path: Path, expr: str, message: str) -> None:
    found = [line for line in findings(tmp_path, f"- alert: A\n  expr: '{expr}'\n") if "vector-matching" in line]
    assert len(found) == 1 and found[0].startswith(f"rulesets/alerts.yaml:6:15: vector-matching: {message}"), found


@pytest.mark.parametrize(
    "expr",
    [
        # node-exporter's and kube-prometheus's shapes: selectors keep every label, so no side can be known short
        "node_filesystem_avail_bytes / node_filesystem_size_bytes < 0.1 and node_filesystem_readonly == 0",
        'kube_resourcequota{type="used"} / ignoring (instance, job, type) (kube_resourcequota{type="hard"} > 0) > 0.9',
        "node_memory_MemAvailable_bytes / on (instance) group_left (nodename) node_uname_info < 0.1",
        # the same labels on both sides, or matched on labels both keep
        "sum by (job) (rate(errors_total[5m])) / sum by (job) (rate(requests_total[5m])) > 0.05",
        "count by (job) (up == 0) / count by (job) (up) > 0.5",
        "sum by (job, instance) (rate(a_total[5m])) / on (job) group_left sum by (job) (rate(b_total[5m])) > 0.1",
        "sum by (a, b) (x) / ignoring (b) sum by (a) (y) > 1",
        # or keeps both sides; a scalar pairs with every series; sum() against sum() pairs on no labels
        "sum by (job) (x) > 1 or sum by (instance) (y) > 1",
        "sum by (job) (x) > scalar(sum(y))",
        "sum(rate(a_total[5m])) / sum(rate(b_total[5m])) > 0.5",
        # unknown output labels (a selector, label_replace adding one) say nothing
        "rate(x_total[5m]) / on (instance) y > 1",
        'label_replace(sum by (a) (x), "b", "$1", "a", "(.*)") / sum by (a, b) (y) > 1',
    ],
)
def test_vector_matching_stays_silent_where_sides_can_pair(tmp_path: Path, expr: str) -> None:
    alert = "- alert: A\n  expr: '" + expr.replace("'", "''") + "'\n"
    assert [line for line in findings(tmp_path, alert) if "vector-matching" in line] == []


def test_vector_matching_checks_a_ratios_errors_against_its_total(tmp_path: Path) -> None:
    found = findings(
        tmp_path,
        """- alert: ErrorRatio
  kind: ratio
  errors: sum by (service) (rate(http_errors_total[5m]))
  total: sum by (route) (rate(http_requests_total[5m]))
  above: 0.05
  severity: critical
""",
    )
    assert found == [
        'rulesets/alerts.yaml:7:17: vector-matching: the two sides of "/" keep different labels (errors keeps '
        "service; total keeps route) and are matched on all of them, so no series pair and the result is always "
        "empty: aggregate both by the same labels, or match with on (...)"
    ], found


def test_scrape_interval_sets_the_rate_window_bound(tmp_path: Path) -> None:
    alert = "- alert: A\n  expr: rate(x_total[2m]) > 1\n"
    assert findings(tmp_path, alert, "defaults:\n  scrape_interval: 30s\n") == []
    assert "rate-window" in findings(tmp_path, alert, "defaults:\n  scrape_interval: 2m\n")[0]


def test_anchored_regex_is_found(tmp_path: Path) -> None:
    found = findings(tmp_path, '- alert: A\n  expr: up{job=~"^api$"} == 0\n')
    assert found == [
        'rulesets/alerts.yaml:6:15: regex: job=~"^api$": Prometheus anchors regexes already; write job=~"api"'
    ]


def test_disable_needs_a_reason_and_a_known_check(tmp_path: Path) -> None:
    wrong = CASES["no-comparison"][0]
    assert findings(tmp_path, wrong + '  lint: {disable: [no-comparison], reason: "a dashboard feed"}\n') == []
    with pytest.raises(CatalogError, match="reason: required field is missing"):
        findings(tmp_path, wrong + "  lint: {disable: [no-comparison]}\n")
    with pytest.raises(CatalogError, match='unknown lint check "no-comparisons"; did you mean "no-comparison"'):
        findings(tmp_path, wrong + "  lint: {disable: [no-comparisons], reason: x}\n")


def test_cli_lint_prints_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = catalog_of(tmp_path, CASES["rate-window"][0])
    assert main(["lint", str(root), "--json"]) == 1
    [found] = json.loads(capsys.readouterr().out)
    assert (found["check"], found["line"], found["column"]) == ("rate-window", 6, 15)
    assert main(["lint", str(catalog_of(tmp_path, CASES["rate-window"][1]))]) == 0


def test_compile_warns_and_strict_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = catalog_of(tmp_path, CASES["regex"][0])
    out = tmp_path / "generated"
    assert main(["compile", str(root), "-o", str(out), "-j", "1", "--strict"]) == 1
    assert "error: rulesets/alerts.yaml:6:15: regex:" in capsys.readouterr().err and not out.exists()
    assert main(["compile", str(root), "-o", str(out), "-j", "1"]) == 0
    assert "warning: rulesets/alerts.yaml:6:15: regex:" in capsys.readouterr().err and out.is_dir()


def test_bundled_and_imported_catalogs_lint(tmp_path: Path) -> None:
    bundled = load_catalog(Path(__file__).parent.parent / "rulesets")
    assert lint(bundled) == []
    root = tmp_path / "imported"
    report = import_sources([DATA / "kube-prometheus", DATA / "awesome-prometheus-alerts"], root)
    assert report.files
    catalog = load_catalog(root)
    located = locate_findings(lint(catalog), root, catalog.root_name)
    assert all(f.line > 0 for f in located)


def test_templates_see_the_expressions_labels_not_the_rules_own(tmp_path: Path) -> None:
    """Prometheus renders `$labels` from the expression's output: a group or alert label is not among them."""
    found = findings(
        tmp_path,
        """- alert: NoTargets
  expr: sum(up) == 0
  labels: {team: web}
  summary: "no targets for {{ $labels.team }}"
""",
    )
    assert len(found) == 1 and 'template-label: reads label "team"' in found[0], found
    assert (
        findings(
            tmp_path,
            """- alert: NoTargets
  expr: sum by (team) (up) == 0
  labels: {team: web}
  summary: "no targets for {{ $labels.team }}"
""",
        )
        == []
    )


def test_the_same_mistake_twice_in_one_expression_is_one_finding(tmp_path: Path) -> None:
    found = findings(
        tmp_path,
        """- alert: Busy
  expr: rate(a_total[1m]) + rate(b_total[1m]) > 1
""",
    )
    assert [f.split(": ", 1)[1] for f in found] == [
        "rate-window: rate() over [1m] is under 2× the scrape interval (1m): use 2m or more"
    ], found


def test_every_check_is_documented_and_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    docs = (Path(__file__).parent.parent / "docs" / "lint.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["lint", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for check in CHECKS:
        assert f"### `{check}`" in docs and check in shown, check
    assert "--prometheus URL" in shown and "--window DURATION" in shown and "--timeout SECONDS" in shown
