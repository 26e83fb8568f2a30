"""Sloth's own examples, dropped into a catalog directory as they are, against what Sloth itself writes for them
(tests/data/sloth: its examples and examples/_gen, made with `--extra-labels cmd=examplesgen.sh`; and its
integration tests' base spec with the outputs of `--default-slo-period 28d`, custom 7d windows, extra labels,
`--disable-alerts`, `--disable-recordings`).

Each case's catalog is the input, the AlertWindows files of its case and a defaults file with Sloth's flags as
`defaults.slos` (for the examples, the extra label `cmd: examplesgen.sh`). Then:

- every rule group Sloth writes is in our output with the same rules, in the same order, with the same names,
  labels (but `sloth_version`), `for` and `interval`; the one difference is the `severity` label we add to an
  alert whose tier sets none (docs/catalog.md §5, "Differences from Sloth");
- the real promtool evaluates Sloth's rules (their names prefixed `golden_`) beside ours over the same series of
  the SLIs' metrics, and every rule gives the same value, bit for bit, with the same labels, while the SLIs have
  traffic (burning the budget, or not); at zero traffic and with no error series at all, exactly the documented
  differences, rule by rule (docs/catalog.md §5, "Differences from Sloth"), and nothing else.
"""

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from amcompanion.catalog import load_catalog
from amcompanion.compiler.build import compile_catalog
from amcompanion.importers import sloth
from tests.conftest import require_tool

DATA = Path(__file__).parent / "data" / "sloth"
EXAMPLES = DATA / "examples"
INTEGRATION = DATA / "integration"
WINDOWS = (*sorted((EXAMPLES / "windows").glob("*.yaml")), *sorted((DATA / "default-windows").glob("*.yaml")))
# Not reproducible (tests/data/sloth/README.md), and what amcompanion says of each: tests/test_slo_import.py
NOT_REPRODUCIBLE = ("plugin-getting-started.yml", "plugin-k8s-getting-started.yml", "victoria-metrics.yml")
# contrib-slo-plugins.yml's info_labels plugin writes labels promtool rejects: not carried, the rest is compared
UNREPRODUCIBLE_LABELS = {"contrib-slo-plugins.yml": {"plug-l1", "plug-l2", "plug-l3"}}
THRESHOLD = re.compile(r"(ratio_rate\w+)\{[^}]*\} > (\([\d.e+-]+ \* [\d.e+-]+\))")
DEFAULT_SEVERITY = {"page": "critical", "ticket": "warning"}  # what we add where a Sloth tier has no severity
# One sample each 2m for 1h: every window has samples, which both sides extrapolate alike; promtool evaluates
# every rule at every step, so fewer steps keep the run short.
INTERVAL, STEPS = "2m", 30
EVAL_TIMES = ("20m", "40m", "1h")


@dataclass(frozen=True)
class Case:
    """A Sloth input, the flags Sloth ran with as the catalog's `defaults.slos`, and what Sloth wrote."""

    source: Path
    golden: Path
    slo_defaults: str
    windows: tuple[Path, ...] = WINDOWS

    @property
    def name(self) -> str:
        return self.golden.name.removeprefix("out-").removesuffix(".yaml.tpl")


IN_BASE = INTEGRATION / "in-base.yaml"
CASES = [
    *(
        Case(p, EXAMPLES / "_gen" / p.name, "{labels: {cmd: examplesgen.sh}}")
        for p in sorted(EXAMPLES.glob("*.y*ml"))
        if p.name not in NOT_REPRODUCIBLE
    ),
    Case(IN_BASE, INTEGRATION / "out-base.yaml.tpl", "{}", ()),
    Case(IN_BASE, INTEGRATION / "out-base-28d.yaml.tpl", "{window: 28d}", ()),
    Case(
        IN_BASE, INTEGRATION / "out-base-custom-windows-7d.yaml.tpl", "{window: 7d}", (INTEGRATION / "windows/7d.yaml",)
    ),
    Case(IN_BASE, INTEGRATION / "out-base-extra-labels.yaml.tpl", "{labels: {exk1: exv1, exk2: exv2}}", ()),
    Case(IN_BASE, INTEGRATION / "out-base-no-alerts.yaml.tpl", "{alerts: false}", ()),
    Case(IN_BASE, INTEGRATION / "out-base-no-recordings.yaml.tpl", "{recordings: false}", ()),
]
# Values are compared where there are rules to evaluate: without recordings, the alerts read SLI series nothing
# records (as Sloth's do); they are the base case's, whose values are compared.
VALUE_CASES = [c for c in CASES if c.name != "base-no-recordings"]


def write_catalog(directory: Path, case: Case) -> Path:
    """The input as it is (or, when part of it is not reproducible, the importer's conversion of the rest)."""
    directory.mkdir()
    for windows in case.windows:
        shutil.copy(windows, directory / windows.name)
    (directory / "00-defaults.yaml").write_text(f"version: 1\ndefaults:\n  slos: {case.slo_defaults}\n")
    if case.name in UNREPRODUCIBLE_LABELS:
        conversion = sloth.convert_specs(list(yaml.safe_load_all(case.source.read_text())))
        assert {p.at[-1] for p in conversion.not_carried} == UNREPRODUCIBLE_LABELS[case.name]
        assert all("not a valid Prometheus label name" in p.reason for p in conversion.not_carried)
        (directory / case.source.name).write_text(yaml.safe_dump(conversion.data, sort_keys=False))
    else:
        shutil.copy(case.source, directory / case.source.name)
    return directory


def golden(case: Case) -> tuple[list[dict], list[dict]]:
    """Sloth's rule groups, and the metadata of its PrometheusRule objects (if it wrote any). Its integration
    tests' files are Go templates: of the Sloth version, and of `{{"{{$labels...}}"}}` in annotations."""
    text = re.sub(r'\{\{"(.*?)"\}\}', r"\1", case.golden.read_text().replace("{{ .version }}", "dev"))
    groups, metadata = [], []
    for document in yaml.safe_load_all(text):
        if document is None:
            continue
        if document.get("kind") == "PrometheusRule":
            metadata.append(document["metadata"])
            document = document["spec"]
        groups += document["groups"]
    for group in groups:
        for rule in group["rules"]:
            for label in UNREPRODUCIBLE_LABELS.get(case.name, ()):
                rule.get("labels", {}).pop(label, None)
    return groups, metadata


def ours(catalog_dir: Path) -> tuple[list[dict], dict[str, dict]]:
    """Our rule groups (the self-monitoring file aside) and our PrometheusRule objects by name."""
    documents = compile_catalog(load_catalog(catalog_dir)).documents
    groups = [
        group
        for path, document in sorted(documents.items())
        if path.startswith("prometheus/rules/") and path != "prometheus/rules/amcompanion.yml"
        for group in document.data["groups"]  # type: ignore[attr-defined]
    ]
    objects = {
        document.data["metadata"]["name"]: document.data  # type: ignore[index]
        for path, document in documents.items()
        if path.startswith("kubernetes/") and path != "kubernetes/amcompanion.prometheusrule.yaml"
    }
    return groups, objects


def shape(rule: dict) -> tuple:
    """A rule as compared: its name, labels but sloth_version, and `for`."""
    labels = {k: str(v) for k, v in rule.get("labels", {}).items() if k != "sloth_version"}
    return ("record", rule["record"]) if "record" in rule else ("alert", rule["alert"]), labels, rule.get("for")


def expected_shape(rule: dict) -> tuple:
    """Sloth's rule as we write it: an alert whose tier has no severity gets the tier's default one."""
    name, labels, for_ = shape(rule)
    if "alert" in rule and "severity" not in labels:
        labels = {**labels, "severity": DEFAULT_SEVERITY[labels["sloth_severity"]]}
    return name, labels, for_


@pytest.fixture(scope="module")
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Path]:
    return request.param, write_catalog(tmp_path_factory.mktemp(request.param.name) / "catalog", request.param)


@pytest.mark.parametrize("case", CASES, indirect=True, ids=[c.name for c in CASES])
def test_every_sloth_rule_is_ours_with_its_name_labels_and_for(case: tuple[Case, Path]) -> None:
    sloth_case, catalog_dir = case
    sloth_groups, sloth_objects = golden(sloth_case)
    our_groups, our_objects = ours(catalog_dir)
    by_name = {g["name"]: g for g in our_groups}
    assert sorted(by_name) == sorted(g["name"] for g in sloth_groups)
    for group in sloth_groups:
        mine = by_name[group["name"]]
        assert [shape(r) for r in mine["rules"]] == [expected_shape(r) for r in group["rules"]], group["name"]
        # the burn-rate thresholds, `(factor * budget)` of each window, as Sloth prints them
        assert [THRESHOLD.findall(r["expr"]) for r in mine["rules"] if "alert" in r] == [
            THRESHOLD.findall(r["expr"]) for r in group["rules"] if "alert" in r
        ]
        assert mine.get("interval") == group.get("interval")
        for rule in mine["rules"]:
            if rule.get("record") == "sloth_slo_info":
                assert rule["labels"]["sloth_version"].startswith("amcompanion/")
    sloth_managed = {"app.kubernetes.io/component": "SLO", "app.kubernetes.io/managed-by": "sloth"}
    for metadata in sloth_objects:  # one PrometheusRule per PrometheusServiceLevel, named and placed as Sloth does
        mine = our_objects[metadata["name"]]["metadata"]
        assert mine.get("namespace") == metadata["namespace"]
        assert mine["labels"] == {
            **{k: v for k, v in metadata["labels"].items() if k not in sloth_managed},
            "app.kubernetes.io/managed-by": "amcompanion",
            "app.kubernetes.io/part-of": "amcompanion",
        }
        assert mine.get("annotations") == metadata.get("annotations")
    assert len(our_objects) == len(sloth_objects) or not sloth_objects


# -- values, by the real promtool ------------------------------------------------------------------------------
GOLDEN_NAME = re.compile(r"(?<![\w:])(slo:[\w:]+|sloth_slo_info)\b")
# The rules that read the SLI's error ratio (with the value each has when there are no errors), and the one that
# reads only its total; the others are constants.
READS_ERRORS = re.compile(r"^slo:(sli_error:ratio_rate\w+|current_burn_rate:ratio|period_burn_rate:ratio)$")
REMAINING = "slo:period_error_budget_remaining:ratio"
READS_TOTAL = re.compile(r"^slo:numerator_correction:ratio\w+$")


def as_records(groups: list[dict], prefix: str) -> list[dict]:
    """Rule groups as promtool loads them beside the other side's: each alert becomes a recording rule of its
    expression (without its labels, which are compared above) named `<prefix>alert:<name>:<sloth_severity>`."""
    out = []
    for group in groups:
        rules = []
        for rule in group["rules"]:
            if "alert" in rule:
                record = f"{prefix}alert:{rule['alert']}:{rule['labels']['sloth_severity']}"
                rules.append({"record": record, "expr": rule["expr"]})
            else:
                rules.append(rule)
        out.append({**group, "name": f"{prefix}{group['name']}", "rules": rules})
    return out


def renamed(groups: list[dict]) -> list[dict]:
    """Sloth's rules with every metric they record and read prefixed `golden_`, so both sides can be loaded."""
    out = []
    for group in groups:
        rules = []
        for rule in group["rules"]:
            rule = {**rule, "expr": GOLDEN_NAME.sub(r"golden_\1", rule["expr"])}
            if "record" in rule:
                rule["record"] = f"golden_{rule['record']}"
            rules.append(rule)
        out.append({**group, "rules": rules})
    return out


@dataclass(frozen=True)
class Scenario:
    """Series of the SLIs' metrics, and how each rule of ours compares with Sloth's under them."""

    name: str
    error_fraction: float  # of the requests (and of the slow ones, and of the unhappy wifi clients)
    traffic: bool = True
    error_series: bool = True  # the series the error queries select exist at all

    def series(self, example: str) -> list[dict]:
        n, per_step = STEPS, 1200 if self.traffic else 0
        bad = per_step * self.error_fraction

        def counter(labels: str, step: float) -> dict:
            return {"series": labels, "values": f"0+{step:g}x{n}"}

        out = []
        for job in ("myservice", "myapp"):
            metric = f'http_request_duration_seconds_count{{job="{job}"'
            out.append(counter(f'{metric}, code="200"}}', per_step - bad))
            if self.error_series:
                out += [counter(f'{metric}, code="500"}}', bad / 2), counter(f'{metric}, code="429"}}', bad / 2)]
        out.append(counter('apiserver_request_total{code="200"}', per_step - bad))
        if self.error_series:
            out.append(counter('apiserver_request_total{code="500"}', bad))
        out.append(counter('apiserver_request_duration_seconds_count{verb="GET"}', per_step))
        for le, fast in (("0.4", per_step - bad), ("5", per_step - bad / 10), ("+Inf", per_step)):
            out.append(counter(f'apiserver_request_duration_seconds_bucket{{verb="GET", le="{le}"}}', fast))
        if "wifi" in example and self.traffic:  # gauges: 4 clients, a share of them unhappy
            unhappy = round(4 * self.error_fraction)
            for i, ratio in enumerate([0.2, 0.3, 0.4, 0.45][:unhappy] + [0.99] * (4 - unhappy)):
                out.append(
                    {"series": f'unifipoller_client_satisfaction_ratio{{client="{i}"}}', "values": f"{ratio}x{n}"}
                )
        return out

    def expect(self, kind: str, rule: str, loses_errors: bool, raw: bool) -> str | tuple[str, float]:
        """How our rule compares with Sloth's (docs/catalog.md §5, "Differences from Sloth"): "same" (one series
        each, equal), "agree" (that, or no series on either side), "nan" (Sloth NaN, ours none), "both NaN",
        "neither" (no series on either side), or ("value", v) (Sloth none, ours v). A raw SLI is Sloth's query."""
        if kind == "alert":  # burning, both fire alike; otherwise they agree (neither fires, or both alike)
            return "same" if self == SCENARIOS[0] else "agree"
        reads_errors = bool(READS_ERRORS.match(rule)) or rule == REMAINING
        if not self.traffic and (reads_errors or READS_TOTAL.match(rule)):
            return "both NaN" if raw else "nan"
        if not self.error_series and loses_errors and reads_errors:
            return "neither" if raw else ("value", 1.0 if rule == REMAINING else 0.0)
        return "same"


SCENARIOS = (
    Scenario("burning", 0.75),
    Scenario("quiet", 0.00005),
    Scenario("zero traffic", 0.0, traffic=False),
    Scenario("no error series", 0.0, error_series=False),
)


def scenarios(example: str) -> tuple[Scenario, ...]:
    """The wifi SLIs read gauges (clients), which have neither zero traffic nor error series of their own."""
    return SCENARIOS[:2] if "wifi" in example else SCENARIOS


def checks(groups: list[dict], scenario: Scenario, raw: set[str]) -> list[dict]:
    """promql_expr_tests comparing each of our rules with Sloth's: at each time, one expression that is the union
    of every comparison, each a single sample labelled `check` with what it checks (one expression is far
    cheaper for promtool than hundreds)."""
    loses_errors = {  # SLOs whose error query selects only the failed requests: nothing without them
        rule["labels"]["sloth_id"]: '=~"(5..|429)"' in rule["expr"]
        for group in groups
        for rule in group["rules"]
        if rule.get("record") == "slo:sli_error:ratio_rate5m"
    }
    comparisons: list[tuple[str, str, float]] = []  # (what, expression giving one sample, its value)
    for group in groups:
        for rule in group["rules"]:
            if "record" in rule:
                name, kind = rule["record"], "record"
                labels = {k: str(v) for k, v in rule["labels"].items() if k != "sloth_version"}
            else:
                severity = rule["labels"]["sloth_severity"]
                name, kind = f"alert:{rule['alert']}:{severity}", "alert"
                labels = {"sloth_id": group["name"].removeprefix("sloth-slo-alerts-")}
            selector = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
            mine = f"{'ours_' if kind == 'alert' else ''}{name}{selector}"
            theirs = f"golden_{name}{selector}"
            what = f"{name} {labels.get('sloth_window', '')} {labels['sloth_id']}"
            outcome = scenario.expect(kind, name, loses_errors[labels["sloth_id"]], labels["sloth_id"] in raw)
            if outcome == "same":  # `==` matches a series of each side with the same labels, if equal
                comparisons.append((f"{what}: equal", f"count({mine} == ignoring (sloth_version) {theirs})", 1))
            elif outcome == "agree":  # 1 if neither side has a series, or both one, equal
                equal = f"count({mine} == ignoring (sloth_version) {theirs}) or vector(0)"
                agree = f"(({equal}) + (count({mine}) or vector(0))) == bool (2 * (count({theirs}) or vector(0)))"
                comparisons.append((f"{what}: agree", agree, 1))
            elif outcome == "neither":
                comparisons.append((f"{what}: no series", f"count({mine}) or count({theirs}) or vector(0)", 0))
            elif outcome == "both NaN":
                comparisons.append((f"{what}: Sloth NaN", f"count({theirs} != {theirs})", 1))
                comparisons.append((f"{what}: ours NaN", f"count({mine} != {mine})", 1))
            elif outcome == "nan":
                comparisons.append((f"{what}: Sloth NaN", f"count({theirs} != {theirs})", 1))
                comparisons.append((f"{what}: ours none", f"count({mine}) or vector(0)", 0))
            else:  # our one series has that value (its labels, as the rule's, are compared above)
                comparisons.append((f"{what}: Sloth none", f"count({theirs}) or vector(0)", 0))
                comparisons.append((f"{what}: ours {outcome[1]:g}", f"count({mine} == {outcome[1]:g})", 1))
    union = " or ".join(f'label_replace({expr}, "check", "{what}", "", "")' for what, expr, _ in comparisons)
    samples = [{"labels": f'{{check="{what}"}}', "value": value} for what, _, value in comparisons]
    return [{"expr": union, "eval_time": at, "exp_samples": samples} for at in EVAL_TIMES]


@pytest.mark.parametrize("case", VALUE_CASES, indirect=True, ids=[c.name for c in VALUE_CASES])
def test_every_sloth_rule_gives_sloths_value_in_promtool(case: tuple[Case, Path], tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    sloth_case, catalog_dir = case
    name = sloth_case.name
    sloth_groups, _ = golden(sloth_case)
    our_groups, _ = ours(catalog_dir)
    raw = {slo.sloth_id for slo in load_catalog(catalog_dir).slos() if slo.raw}
    (tmp_path / "ours.yml").write_text(yaml.safe_dump({"groups": as_records(our_groups, "ours_")}))
    (tmp_path / "golden.yml").write_text(yaml.safe_dump({"groups": as_records(renamed(sloth_groups), "golden_")}))
    tests = {
        "rule_files": ["ours.yml", "golden.yml"],
        "evaluation_interval": INTERVAL,
        # each SLO's groups in order (SLI, metadata, alerts), or a rule may read another's previous sample
        "group_eval_order": [g["name"] for g in as_records(our_groups, "ours_") + as_records(sloth_groups, "golden_")],
        "tests": [
            {
                "name": f"{name}: {scenario.name}",
                "interval": INTERVAL,
                "input_series": scenario.series(name),
                "promql_expr_test": checks(sloth_groups, scenario, raw),
            }
            for scenario in scenarios(name)
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    run = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
