"""`amcompanion import` of Prometheus rule files and PrometheusRule objects: the imported catalog compiles and its
alerts fire exactly as the originals did, proven by promtool with both sets of rules loaded side by side."""

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml

from amcompanion.catalog import load_catalog
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.catalog.durations import parse_duration
from amcompanion.catalog.reader import CATALOG_EXPECTS
from amcompanion.cli import main
from amcompanion.compiler.build import compile_catalog
from amcompanion.compiler.unittests import selector_series
from amcompanion.emit.files import render, write_tree
from amcompanion.importers.prometheus import rule_groups
from amcompanion.importers.run import import_sources
from tests.conftest import require_tool

SHARED_RULES = Path(__file__).resolve().parent / "data" / "rules"  # real rule sets, copied unchanged (README.md)
REAL_RULE_FILES = sorted(p for p in SHARED_RULES.rglob("*") if p.suffix in (".yml", ".yaml"))
assert len(REAL_RULE_FILES) == 2, REAL_RULE_FILES
STEPS = 240  # 4h at 1m: past the longest `for` (1h) several times over
PALETTE = [0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95, 0.99, 1, 2, 3, 5, 10, 20, 50, 80, 85, 90, 95, 99, 100]
PALETTE += [150, 500, 1000, 5000, 1e4, 1e5, 1e6, 1e8, 1e9, 1e10, 1e12]

# Shapes real rule files use, and the edges of the catalog's new expressiveness, in one rule file.
EDGES = """\
groups:
  - name: edges
    interval: 30s
    rules:
      - record: job:edge_up:sum
        expr: sum by (job) (edge_up)
      - alert: EdgeJobDown
        expr: job:edge_up:sum == 0
        for: 2m
        keep_firing_for: 5m
        labels: {severity: critical, team: edge}
        annotations: {summary: "{{ $labels.job }} is down"}
      - alert: EdgeLoad
        expr: edge_load >= 5
        labels: {severity: warning}
      - alert: EdgeLoad
        expr: edge_load >= 50
        labels: {severity: critical}
      - alert: Edge-Load(>90%)
        expr: edge_load / edge_capacity * 100 > 90
        for: 1m
        labels: {severity: pageteam}
      - alert: EdgeTargetMissing
        expr: absent(edge_up{job="edge"})
        for: 3m
        labels: {severity: warning}
      - alert: EdgeNoSeverity
        expr: edge_load != 1
      - alert: EdgeSplit
        expr: edge_load > 20 and edge_capacity < 100
        for: 1m
        labels: {severity: warning}
      - alert: EdgeSplit
        expr: edge_load > 40
        for: 2m
        labels: {severity: critical, tier: two}
  - name: edges-again
    rules:
      - alert: EdgeCapacityLow
        expr: edge_capacity <= 10
        labels: {severity: info}
"""


def import_into(tmp_path: Path, sources: list[Path]) -> Path:
    catalog_dir = tmp_path / "rulesets"
    report = import_sources(sources, catalog_dir / "imported")
    assert report.problems == [] and all(f.not_carried == [] for f in report.files), report
    return catalog_dir


def metric_names(expr: str) -> list[promql_parser.VectorSelector]:
    found: list = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def synthetic_series(rules: list[dict], seed: int) -> list[dict]:
    """Series for every selector the rules read, two instances each, wandering over many orders of magnitude
    (counters climbing at wandering rates), so that thresholds of every scale are crossed both ways."""
    records = {str(rule["record"]) for rule in rules if "record" in rule}
    rng = random.Random(seed)
    series: dict[str, str] = {}
    for rule in rules:
        for selector in metric_names(str(rule["expr"])):
            if selector.name in records or selector.name.startswith("ALERTS"):  # rules' own output, not input
                continue
            counter = selector.name.endswith(("_total", "_count", "_sum", "_bucket"))
            for instance in ("host-1", "host-2"):
                text = selector_series(str(selector).split("[")[0], {"instance": instance, "job": "node"})
                if text is not None:
                    series.setdefault(text, _values(rng, counter))
    return [{"series": s, "values": v} for s, v in sorted(series.items())]


def _values(rng: random.Random, counter: bool) -> str:
    values, total = [], 0.0
    while len(values) < STEPS + 1:
        value, hold = rng.choice(PALETTE), rng.randint(1, 70)
        for _ in range(hold):
            total += value
            values.append(total if counter else value)
    return " ".join(repr(v) for v in values[: STEPS + 1])


def renamed_original(documents: list[dict]) -> tuple[dict, list[dict]]:
    """The original rules with every alert and record renamed `orig_...` (and the records' uses with them), so
    both sets can be evaluated by one promtool run without writing the same series twice."""
    groups = [group for _, group in rule_groups(documents)]
    records = sorted(
        {str(r["record"]) for g in groups for r in g.get("rules") or [] if "record" in r}, key=len, reverse=True
    )

    def rename(expr: str) -> str:
        for name in records:
            expr = re.sub(rf"(?<![\w:]){re.escape(name)}(?![\w:])", f"orig_{name}", expr)
        return expr

    out, every_rule = [], []
    for group in groups:
        rules = []
        for rule in group.get("rules") or []:
            every_rule.append(rule)
            rule = {**rule, "expr": rename(str(rule["expr"]))}
            if "alert" in rule:
                rule["alert"] = f"orig_{rule['alert']}"
            else:
                rule["record"] = f"orig_{rule['record']}"
            rules.append(rule)
        out.append({**group, "name": f"orig_{group['name']}", "rules": rules})
    return {"groups": out}, every_rule


def alert_identities(rules: list[dict]) -> list[tuple]:
    """What an alerting rule gives every alert beside its series: name, labels, annotations, for, keep_firing_for."""

    def duration(value: object) -> int:
        return parse_duration(str(value)) or 0 if value else 0

    return sorted(
        (
            str(rule["alert"]),
            sorted((str(k), str(v)) for k, v in (rule.get("labels") or {}).items()),
            sorted((str(k), str(v)) for k, v in (rule.get("annotations") or {}).items()),
            duration(rule.get("for")),
            duration(rule.get("keep_firing_for")),
        )
        for rule in rules
        if "alert" in rule
    )


ORIGINAL = 'label_replace(ALERTS{alertname=~"orig_.+"}, "alertname", "$1", "alertname", "orig_(.+)")'
IMPORTED = 'ALERTS{alertname!~"orig_.+"}'
DIFFERENCE = f"({ORIGINAL} unless {IMPORTED}) or ({IMPORTED} unless {ORIGINAL})"


def differential_test(tmp_path: Path, source: Path, interval: str, least_firing: int) -> None:
    """Original and imported rules side by side: at every step the ALERTS series (pending and firing, with every
    label) are the same, and at least `least_firing` alert series fired at some point, so the check has teeth."""
    documents = [d for d in yaml.safe_load_all(source.read_text()) if d]
    original, rules = renamed_original(documents)
    catalog_dir = import_into(tmp_path, [source])
    out = tmp_path / "generated"
    write_tree(out, render(compile_catalog(load_catalog(catalog_dir)).documents))
    compiled = sorted(p for p in (out / "prometheus" / "rules").glob("*.yml") if p.name != "amcompanion.yml")
    assert alert_identities(rules) == alert_identities(
        [rule for path in compiled for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]
    )
    (tmp_path / "original.yml").write_text(yaml.safe_dump(original, sort_keys=False))
    step = {"30s": 30, "1m": 60}[interval]
    checks = [{"expr": DIFFERENCE, "eval_time": f"{i * step}s", "exp_samples": []} for i in range(STEPS + 1)]
    firing = f'ALERTS{{alertname=~"orig_.+", alertstate="firing"}}[{STEPS * step}s]'
    fired = f"count(count_over_time({firing})) >= bool {least_firing}"
    checks.append({"expr": fired, "eval_time": f"{STEPS * step}s", "exp_samples": [{"labels": "{}", "value": 1}]})
    test = {
        "rule_files": ["original.yml", *[str(p) for p in compiled]],
        "evaluation_interval": interval,
        "tests": [{"interval": interval, "input_series": synthetic_series(rules, seed=7), "promql_expr_test": checks}],
    }
    (tmp_path / "differential.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    done = subprocess.run(
        [require_tool("promtool"), "test", "rules", "differential.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.parametrize("source", REAL_RULE_FILES, ids=lambda p: p.parent.name)
def test_imported_real_rules_fire_exactly_as_the_originals(tmp_path: Path, source: Path) -> None:
    differential_test(tmp_path, source, "1m", least_firing=10)


def test_imported_edge_shapes_fire_exactly_as_the_originals(tmp_path: Path) -> None:
    source = tmp_path / "src" / "edges.yml"
    source.parent.mkdir()
    source.write_text(EDGES)
    differential_test(tmp_path, source, "30s", least_firing=4)


def test_import_types_rules_as_the_most_specific_kind(tmp_path: Path) -> None:
    source = tmp_path / "edges.yml"
    source.write_text(EDGES)
    catalog_dir = import_into(tmp_path, [source])
    text = (catalog_dir / "imported" / "edges.yaml").read_text()
    data = yaml.safe_load(text)
    alerts = {a.get("alert") or a.get("record"): a for g in data["groups"] for a in g["alerts"]}
    assert alerts["job:edge_up:sum"] == {"record": "job:edge_up:sum", "expr": "sum by (job) (edge_up)"}
    assert alerts["EdgeJobDown"]["kind"] == "threshold" and alerts["EdgeJobDown"]["equals"] == 0
    assert alerts["EdgeJobDown"]["keep_firing_for"] == "5m"
    # two rules that differ only in level and severity: one alert with a map of levels
    assert alerts["EdgeLoad"]["at_least"] == {"warning": 5, "critical": 50}
    assert alerts["Edge-Load(>90%)"]["kind"] == "expr"  # a severity the catalog does not rank stays a label
    assert alerts["Edge-Load(>90%)"]["labels"] == {"severity": "pageteam"}
    assert alerts["EdgeTargetMissing"] == {
        "alert": "EdgeTargetMissing",
        "kind": "absent",
        "expr": 'edge_up{job="edge"}',
        "severity": "warning",
        "for": "3m",
    }
    assert alerts["EdgeNoSeverity"]["severity"] is None and alerts["EdgeNoSeverity"]["not_equals"] == 1
    assert [v["severity"] for v in alerts["EdgeSplit"]["variants"]] == ["warning", "critical"]
    assert all(g["kind_label"] is False for g in data["groups"])
    assert "# edges.yml: groups[0].rules[2], rules[3] (alert EdgeLoad)" in text
    assert text.startswith("# yaml-language-server: $schema=https://")
    assert text.splitlines()[1].startswith("# Imported by `amcompanion import` from edges.yml")
    # compiled: no alert_kind, no interval where the source had none, the source's interval where it had one
    rules = render(compile_catalog(load_catalog(catalog_dir)).documents)
    edges = yaml.safe_load(rules["prometheus/rules/edges.yml"])["groups"][0]
    assert (
        edges["interval"] == "30s"
        and "interval" not in yaml.safe_load(rules["prometheus/rules/edges-again.yml"])["groups"][0]
    )
    assert not any("alert_kind" in r.get("labels", {}) for r in edges["rules"])
    weird = next(r for r in edges["rules"] if r.get("alert") == "Edge-Load(>90%)")
    assert weird["expr"] == "edge_load / edge_capacity * 100 > 90"  # the rule carries the source's expression


def test_import_cli_summary_json_and_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "edges.yml"
    source.write_text(EDGES)
    out = tmp_path / "rulesets" / "imported"
    assert main(["import", str(source), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[:2] == [
        f"{source} (Prometheus rule file) → {out}/edges.yaml: 1 absent, 2 expr, 1 record, 4 threshold",
        "imported 1 file: 1 absent, 2 expr, 1 record, 4 threshold; 0 items not carried",
    ]
    assert main(["import", str(source), "-o", str(out), "--json"]) == 0  # written by import: replaced quietly
    report = json.loads(capsys.readouterr().out)
    assert report["totals"] == {"record": 1, "threshold": 4, "absent": 1, "expr": 2} and report["problems"] == []
    (out / "mine.yaml").write_text("version: 1\n")
    (tmp_path / "mine.yml").write_text(EDGES)
    assert main(["import", str(tmp_path / "mine.yml"), "-o", str(out)]) == 1  # not written by import: kept
    assert "exists and was not written by amcompanion import" in capsys.readouterr().err
    assert (out / "mine.yaml").read_text() == "version: 1\n"
    (tmp_path / "deploy.yml").write_text("apiVersion: apps/v1\nkind: Deployment\n")
    assert main(["import", str(tmp_path / "deploy.yml"), "-o", str(out)]) == 1
    assert "not a format amcompanion imports" in capsys.readouterr().err


def test_a_rule_file_in_the_catalog_is_one_error_pointing_at_import(tmp_path: Path) -> None:
    catalog_dir = tmp_path / "rulesets"
    catalog_dir.mkdir()
    shutil.copy(SHARED_RULES / "awesome-prometheus-alerts" / "node-exporter.yml", catalog_dir)
    (catalog_dir / "deploy.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nspec: {replicas: 1}\n")
    (catalog_dir / "am.yaml").write_text("route: {receiver: x}\nreceivers: [{name: x}]\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(catalog_dir)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"rulesets/am.yaml:1:1: this looks like an Alertmanager configuration, not a catalog file; {CATALOG_EXPECTS}",
        "rulesets/deploy.yaml:1:1: this looks like a Kubernetes object (kind Deployment, apiVersion apps/v1), not a "
        f"catalog file; {CATALOG_EXPECTS}",
        "rulesets/node-exporter.yml:1:1: this is a Prometheus rule file, not a catalog file; bring it in with: "
        "amcompanion import rulesets/node-exporter.yml",
    ]
    assert CATALOG_EXPECTS.startswith("a catalog file is a mapping with `version: 1` and any of: defaults, receiver")


def test_import_takes_the_severities_of_the_catalog_it_joins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = tmp_path / "rulesets"
    catalog.mkdir()
    (catalog / "defaults.yaml").write_text("version: 1\ndefaults: {severities: [warning, page]}\n")
    source = tmp_path / "rules.yml"
    source.write_text(
        "groups:\n  - name: g\n    rules:\n"
        "      - {alert: Paged, expr: up == 0, labels: {severity: page}}\n"
        "      - {alert: Told, expr: up == 0, labels: {severity: info}}\n"
    )
    assert main(["import", str(source), "-o", str(catalog / "imported"), "--catalog", str(catalog)]) == 0
    assert f"next: amcompanion compile {catalog}" in capsys.readouterr().out
    data = yaml.safe_load((catalog / "imported" / "rules.yaml").read_text())
    paged, told = data["groups"][0]["alerts"]
    assert (paged["kind"], paged["severity"]) == ("threshold", "page")  # a severity the catalog ranks
    assert (told["kind"], told["labels"]) == ("expr", {"severity": "info"})  # one it does not: kept as a label
    # the same file into a catalog it would break: the import says so, with the catalog's own error
    (catalog / "clash.yaml").write_text("version: 1\ngroups:\n  - name: h\n    alerts: [{alert: Paged, expr: up}]\n")
    assert main(["import", str(source), "-o", str(catalog / "imported"), "--catalog", str(catalog)]) == 1
    assert "written, but the catalog refuses it: rulesets/imported/rules.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("wrapping", ["List", "documents"])
def test_prometheus_rule_lists_and_multi_document_files_import_whole(tmp_path: Path, wrapping: str) -> None:
    """kube-prometheus's object split in two PrometheusRules, as a `kind: List` or as two YAML documents."""
    whole = yaml.safe_load((SHARED_RULES / "kube-prometheus" / "nodeExporter-prometheusRule.yaml").read_text())
    groups = whole["spec"]["groups"]
    halves = [
        {**whole, "metadata": {**whole["metadata"], "name": f"part-{i}"}, "spec": {"groups": part}}
        for i, part in enumerate((groups[:1], groups[1:]))
    ]
    source = tmp_path / "src" / "node.yaml"
    source.parent.mkdir()
    if wrapping == "List":
        source.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": halves}))
    else:
        source.write_text(yaml.safe_dump_all(halves))
    differential_test(tmp_path, source, "1m", least_firing=5)
    imported = yaml.safe_load((tmp_path / "rulesets" / "imported" / "node.yaml").read_text())
    assert [g["name"] for g in imported["groups"]] == [g["name"] for g in groups]


def test_import_reports_what_prometheus_would_refuse_and_carries_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "broken.yml"
    source.write_text(
        "groups:\n  - name: g\n    rules:\n"
        '      - {alert: A, expr: "up{"}\n'
        "      - {alert: B, expr: {a: 1}}\n"
        "      - {alert: C, expr: up > 1, for: forever}\n"
        "      - 5\n"
        "      - {alert: D, expr: up, labels: {bad-name: x}}\n"
        "      - {alert: E, expr: up, severity: critical}\n"
        "      - {record: 'not a name', expr: up}\n"
        "      - {alert: Fine, expr: up > 1}\n"
    )
    (tmp_path / "notes.txt").write_text("hello")
    out = tmp_path / "rulesets" / "imported"
    assert (
        main(["import", str(source), str(tmp_path / "missing.yml"), str(tmp_path / "notes.txt"), "-o", str(out)]) == 1
    )
    printed = capsys.readouterr()
    assert [line.strip() for line in printed.out.splitlines() if "not carried:" in line] == [
        "not carried: groups[0].rules[0] (alert A): its expression is not valid PromQL: unexpected end of input "
        "inside braces",
        "not carried: groups[0].rules[1] (alert B): a rule needs an expression (a string)",
        'not carried: groups[0].rules[2] (alert C): for: "forever" is not a duration',
        "not carried: groups[0].rules[3]: a rule must be a mapping",
        "not carried: groups[0].rules[4] (alert D): not valid label names: bad-name",
        "not carried: groups[0].rules[5] (alert E): unknown field severity; a rule has alert, record, expr, for, "
        "keep_firing_for, labels, annotations",
        'not carried: groups[0].rules[6]: "not a name" is not a valid metric name for a recording rule',
    ]
    assert "imported 1 file: 1 threshold; 7 items not carried" in printed.out
    assert f"error: {tmp_path / 'missing.yml'}: no such file or directory" in printed.err
    assert "notes.txt: not a format amcompanion imports" in printed.err
    assert "Traceback" not in printed.err
    assert [a["alert"] for a in yaml.safe_load((out / "broken.yaml").read_text())["groups"][0]["alerts"]] == ["Fine"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("version: prometheus/v1\nservice: s\nslos: notalist\n", "slos: expected a list, got str"),
        ("version: prometheus/v1\nservice: s\nslo_plugins: {chain: 5}\nslos: []\n", "chain: expected a list, got int"),
        (
            "apiVersion: openslo/v1alpha\nkind: SLO\nmetadata: {name: x}\nspec: {service: s, objectives: 5}\n",
            "expected a list, got int",
        ),
        ("groups:\n  - name: g\n    rules: hello\n", "`rules` must be a list, got str"),
        (
            "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nspec: [1]\n",
            "spec: expected a mapping, got list",
        ),
    ],
)
def test_import_of_misshapen_files_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, reason: str
) -> None:
    source = tmp_path / "bad.yml"
    source.write_text(text)
    assert main(["import", str(source), "-o", str(tmp_path / "rulesets" / "imported")]) == 1
    printed = capsys.readouterr()
    assert any(reason in line for line in printed.out.splitlines() if "not carried:" in line), printed.out
    assert "Traceback" not in printed.err


def test_a_directory_of_manifests_imports_its_rules_and_passes_over_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    shutil.copy(SHARED_RULES / "kube-prometheus" / "nodeExporter-prometheusRule.yaml", manifests)
    (manifests / "deployment.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
    # a multi-document file whose rules come after another object
    (manifests / "bundle.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: m}\n---\n"
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\n"
        "spec: {groups: [{name: g, rules: [{alert: A, expr: up == 0}]}]}\n"
    )
    out = tmp_path / "rulesets" / "imported"
    assert main(["import", str(manifests), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed_over"] == [
        f"{manifests / 'bundle.yaml'} (1 other YAML document of the file)",
        str(manifests / "deployment.yaml"),
    ]
    assert sorted(Path(f["target"]).name for f in report["files"]) == [
        "bundle.yaml",
        "nodeExporter-prometheusRule.yaml",
    ]
    bundle = next(f for f in report["files"] if f["target"].endswith("bundle.yaml"))
    assert bundle["kinds"] == {"threshold": 1} and bundle["not_carried"] == []
    assert main(["import", str(manifests), "-o", str(out)]) == 0
    assert "passed over 2 files, in part or whole, that are none of the formats (--json lists them)" in (
        capsys.readouterr().out
    )
    assert main(["import", str(manifests / "deployment.yaml"), "-o", str(out)]) == 1  # named: an error
