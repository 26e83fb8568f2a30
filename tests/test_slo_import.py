"""SLO specs of other tools dropped into the catalog directory (Sloth, OpenSLO, Pyrra), Sloth's AlertWindows, and
the catalog's own Sloth-style SLO settings: what compiles, what promtool and amtool then say of it, and the
errors (`file:line:column: field: message`, naming the file's own fields) of what does not.

The values of the rules against Sloth's own output are tests/test_sloth_compat.py's.
"""

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from amcompanion.catalog import load_catalog
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.cli import main
from amcompanion.compiler.build import compile_catalog
from amcompanion.importers import openslo, pyrra, recognise, sloth
from amcompanion.validate import run_checks

DATA = Path(__file__).parent / "data"
SLOTH = DATA / "sloth" / "examples"
PYRRA = DATA / "pyrra"
SLI = (  # an availability SLI, as one flow mapping
    "{errors: 'sum(rate(http_requests_total{code=~\"5..\"}[{{window}}]))', "
    "total: 'sum(rate(http_requests_total[{{window}}]))'}"
)


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def errors_of(root: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(root)
    return [str(d) for d in caught.value.diagnostics]


def rule_groups(root: Path) -> dict[str, dict]:
    """Every generated rule group by name (the receiver's own aside)."""
    documents = compile_catalog(load_catalog(root)).documents
    return {
        g["name"]: g
        for path, d in documents.items()
        if path.startswith("prometheus/rules/") and not path.endswith("/amcompanion.yml")
        for g in d.data["groups"]  # type: ignore[attr-defined]
    }


def judged(root: Path, out: Path) -> None:
    """Compiled, then promtool (check and the generated tests) and amtool accept every file."""
    assert main(["compile", str(root), "-o", str(out), "-q"]) == 0
    failures = [f"{r.name}\n{r.detail}" for r in run_checks(out, lambda result: None) if not r.ok]
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    root = tmp_path / "rulesets"
    root.mkdir()
    return root


# -- Sloth ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (
            "plugin-getting-started.yml",
            [
                "plugin-getting-started.yml:13:7: slos[0].sli.plugin: not carried (Sloth prometheus/v1 spec): the "
                'SLI plugin "getting_started_availability" is Go code that Sloth runs; write the query it returns as '
                "sli.raw"
            ],
        ),
        (
            "plugin-k8s-getting-started.yml",
            [
                "plugin-k8s-getting-started.yml:27:9: spec.slos[0].sli.plugin: not carried (Sloth "
                'PrometheusServiceLevel): the SLI plugin "getting_started_availability" is Go code that Sloth runs; '
                "write the query it returns as sli.raw"
            ],
        ),
        (
            "victoria-metrics.yml",
            [
                f"victoria-metrics.yml:{line}:3: slos[{i}]: not carried (Sloth prometheus/v1 spec): its plugins check "
                "MetricsQL (VictoriaMetrics); amcompanion compiles PromQL for Prometheus"
                for i, line in ((0, 17), (1, 34))
            ],
        ),
    ],
)
def test_sloth_examples_that_need_sloths_go_plugins_are_reported_not_carried(
    cat: Path, example: str, expected: list[str]
) -> None:
    shutil.copy(SLOTH / example, cat / example)
    assert errors_of(cat) == [f"rulesets/{e}" for e in expected]


def test_a_broken_sloth_file_gets_errors_about_its_own_fields_where_they_are(cat: Path) -> None:
    text = (SLOTH / "k8s-multifile.yml").read_text()
    text = text.replace("objective: 99.99", "objective: 199.99").replace("      description:", "      descripton:", 1)
    text = text.replace('sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))', "up", 1)
    (cat / "slos.yml").write_text(text)
    assert errors_of(cat) == [
        "rulesets/slos.yml:21:7: [0].spec.slos[0].descripton: not carried (Sloth PrometheusServiceLevel): unknown "
        'field "descripton"; did you mean "description"?',
        "rulesets/slos.yml:25:23: [0].spec.slos[0].sli.events.totalQuery: must use {{window}} as the range of its "
        "rate(), e.g. rate(http_requests_total[{{window}}])",
        "rulesets/slos.yml:54:18: [1].spec.slos[0].objective: expected a percentage in (0, 100], got 199.99",
    ]


def test_sloth_slo_alert_names_are_reused_across_specs_and_slos(cat: Path, tmp_path: Path) -> None:
    """multifile: two services' SLOs alert as MyServiceHighErrorRate; contrib-slo-plugins: two SLOs of one spec
    do, in one group, as in Sloth; the generated tests check the alerts of one name together, and pass."""
    shutil.copy(SLOTH / "multifile.yml", cat / "multifile.yml")
    conversion = sloth.convert_specs(list(yaml.safe_load_all((SLOTH / "contrib-slo-plugins.yml").read_text())))
    assert [g["name"] for g in conversion.data["groups"]] == ["myservice"]
    (cat / "contrib.yaml").write_text(yaml.safe_dump(conversion.data))
    catalog = load_catalog(cat)
    assert [(s.group, s.alert_name) for s in catalog.slos()] == [
        ("myservice", "MyServiceHighErrorRate"),
        ("myservice", "MyServiceHighErrorRate"),
        ("myservice", "MyServiceHighErrorRate"),
        ("myservice2", "MyServiceHighErrorRate"),
    ]
    judged(cat, tmp_path / "out")


def test_sloth_alert_windows_in_the_catalog_are_chosen_by_period_or_by_name(cat: Path, tmp_path: Path) -> None:
    for name in ("7d.yaml", "custom-30d.yaml"):
        shutil.copy(SLOTH / "windows" / name, cat / name)
    write(
        cat,
        "slos.yaml",
        f"""
        version: 1
        groups:
          - name: api
            slos:
              - name: weekly           # 7d.yaml, as its period has a file
                objective: 99.9
                window: 7d
                sli: {SLI}
              - name: custom           # chosen
                objective: 99.9
                alert_windows: custom-30d
                sli: {SLI}
              - name: month            # Sloth's own 30d windows
                objective: 99.9
                sli: {SLI}
              - name: fortnight        # no windows: the 30d ones, scaled
                objective: 99.9
                window: 14d
                sli: {SLI}
        """,
    )
    groups = rule_groups(cat)

    def recorded(slo: str) -> list[str]:
        rules = groups[f"sloth-slo-sli-recordings-api-{slo}"]["rules"]
        return [r["record"].removeprefix("slo:sli_error:ratio_rate") for r in rules]

    def thresholds(slo: str) -> list[str]:
        return [r["expr"].split(" > ")[1].split(")")[0] + ")" for r in groups[f"sloth-slo-alerts-api-{slo}"]["rules"]]

    assert recorded("weekly") == ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "1w"]
    assert thresholds("weekly") == ["(13.44 * 0.0009999999999999432)", "(1.4000000000000001 * 0.0009999999999999432)"]
    assert recorded("custom") == ["2m", "15m", "30m", "1h", "3h", "12h", "1d12h", "30d"]
    period = groups["sloth-slo-sli-recordings-api-custom"]["rules"][-1]["expr"]
    assert period.startswith("sum_over_time(slo:sli_error:ratio_rate2m{")  # Sloth's: the page quick short window
    assert thresholds("custom") == ["(14.4 * 0.0009999999999999432)", "(3 * 0.0009999999999999432)"]
    assert recorded("month") == ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert recorded("fortnight") == ["2m", "5m", "14m", "28m", "56m", "2h48m", "11h12m", "1d9h36m", "2w"]
    judged(cat, tmp_path / "out")  # the generated tests prove each pair fires just over its factor, not under


def test_alert_windows_errors_name_the_field(cat: Path) -> None:
    text = (SLOTH / "windows" / "7d.yaml").read_text()
    (cat / "7d.yaml").write_text(text)
    (cat / "other-7d.yaml").write_text(text)
    (cat / "broken.yaml").write_text(text.replace("7d", "14d").replace("shortWindow: 2h", "shortWindow: 2d"))
    write(
        cat,
        "slos.yaml",
        f"""
        version: 1
        groups:
          - name: api
            slos:
              - name: weekly
                objective: 99.9
                window: 7d
                sli: {SLI}
              - name: wrong-period
                objective: 99.9
                alert_windows: other-7d
                sli: {SLI}
              - name: unknown
                objective: 99.9
                alert_windows: other-7D
                sli: {SLI}
        """,
    )
    assert errors_of(cat) == [
        "rulesets/broken.yaml:17:20: spec.ticket.quick.shortWindow: must be shorter than long_window",
        "rulesets/slos.yaml:7:17: groups[0].slos[0].window: several alert windows are for 1w (7d, other-7d): "
        "choose one with alert_windows",
        'rulesets/slos.yaml:11:24: groups[0].slos[1].alert_windows: "other-7d" are the windows of a 1w period; '
        "the SLO's window is 30d",
        'rulesets/slos.yaml:15:24: groups[0].slos[2].alert_windows: undefined alert windows "other-7D"; did you '
        'mean "other-7d"?',
    ]


# -- the catalog's Sloth-style settings ------------------------------------------------------------------------
def test_slo_names_are_unique_per_service_and_alert_names_not_those_of_other_alerts(cat: Path) -> None:
    write(
        cat,
        "slos.yaml",
        f"""
        version: 1
        groups:
          - name: web
            alerts:
              - alert: Burn
                expr: up == 0
            slos:
              - name: availability
                service: api
                objective: 99.9
                sli: {SLI}
              - name: availability     # another service's: fine
                service: www
                objective: 99.9
                alerting: {{name: ApiBurn}}
                sli: {SLI}
              - name: availability     # api's twice
                service: api
                objective: 99
                sli: {SLI}
              - name: latency          # an alert name of the group's SLOs: fine, as in Sloth
                service: api
                objective: 99
                alerting: {{name: ApiBurn}}
                sli: {SLI}
              - name: errors           # a non-SLO alert's name
                objective: 99
                alerting: {{name: Burn}}
                sli: {SLI}
            inhibits:
              - source: ApiBurn
                targets: [Burn]
          - name: other
            slos:
              - name: availability
                service: api2
                objective: 99.9
                alerting: {{name: ApiBurn}}  # another group's SLO: fine
                sli: {SLI}
        """,
    )
    assert errors_of(cat) == [
        'rulesets/slos.yaml:17:15: groups[0].slos[2].name: duplicate SLO name "availability" (first defined at '
        "rulesets/slos.yaml:8)",
        'rulesets/slos.yaml:28:26: groups[0].slos[4].alerting.name: duplicate alert name "Burn" (first defined at '
        "rulesets/slos.yaml:5)",
    ]


def test_an_inhibit_names_an_slo_alert_of_any_service(cat: Path, tmp_path: Path) -> None:
    shutil.copy(SLOTH / "multifile.yml", cat / "multifile.yml")
    write(
        cat,
        "node.yaml",
        """
        version: 1
        groups:
          - name: node
            alerts:
              - {alert: NodeDown, expr: up == 0, severity: critical}
            inhibits:
              - {source: NodeDown, targets: [MyServiceHighErrorRate]}
        """,
    )
    judged(cat, tmp_path / "out")
    am = yaml.safe_load((tmp_path / "out/alertmanager/alertmanager.yml").read_text())
    assert {"source_matchers": ['alertname="NodeDown"'], "target_matchers": ['alertname="MyServiceHighErrorRate"']} in (
        am["inhibit_rules"]
    )


def test_slo_settings_raw_good_severity_labels_recordings_alerting_info_labels_interval(
    cat: Path, tmp_path: Path
) -> None:
    write(
        cat,
        "defaults.yaml",
        """
        version: 1
        defaults:
          slos: {labels: {cluster: eu1}, window: 28d}
        """,
    )
    write(
        cat,
        "slos.yaml",
        """
        version: 1
        groups:
          - name: api
            prometheus_rule: {name: api-slos, namespace: monitoring, labels: {role: alert-rules}}
            slos:
              - name: raw
                objective: 99
                interval: 30s
                info_labels: {sloth_mode: cli-gen-k8s, team: web}
                sli: {raw: 'sum(rate(errors_total[{{window}}])) / sum(rate(requests_total[{{window}}]))'}
                alerting:
                  page: {labels: {severity: pageteam, routing_key: web}}
                  ticket: false
              - name: good
                objective: 99
                recordings: false
                sli:
                  good: sum(rate(requests_total{code!~"5.."}[{{window}}]))
                  total: sum(rate(requests_total[{{window}}]))
              - name: silent
                objective: 99
                alerting: false
                sli: {raw: 'sum(rate(errors_total[{{window}}])) / sum(rate(requests_total[{{window}}]))'}
        """,
    )
    groups = rule_groups(cat)
    assert sorted(groups) == [
        "sloth-slo-alerts-api-good",  # recordings: false
        "sloth-slo-alerts-api-raw",
        "sloth-slo-meta-recordings-api-raw",
        "sloth-slo-meta-recordings-api-silent",  # alerting: false
        "sloth-slo-sli-recordings-api-raw",
        "sloth-slo-sli-recordings-api-silent",
    ]
    raw = groups["sloth-slo-sli-recordings-api-raw"]
    assert raw["interval"] == "30s" and raw["rules"][0]["labels"]["cluster"] == "eu1"
    assert raw["rules"][0]["expr"] == "(sum(rate(errors_total[5m])) / sum(rate(requests_total[5m])))"
    assert raw["rules"][-1]["record"] == "slo:sli_error:ratio_rate4w"  # defaults.slos.window
    info = groups["sloth-slo-meta-recordings-api-raw"]["rules"][-1]["labels"]
    assert (info["sloth_mode"], info["sloth_spec"], info["team"]) == ("cli-gen-k8s", "prometheus/v1", "web")
    (page,) = groups["sloth-slo-alerts-api-raw"]["rules"]
    assert page["labels"] == {
        "alert_kind": "slo",
        "routing_key": "web",
        "severity": "pageteam",
        "sloth_severity": "page",
    }
    good = groups["sloth-slo-alerts-api-good"]["rules"][0]["expr"]
    assert "slo:sli_error:ratio_rate5m{" in good
    judged(cat, tmp_path / "out")
    rule = yaml.safe_load((tmp_path / "out/kubernetes/api.prometheusrule.yaml").read_text())
    assert rule["metadata"]["name"] == "api-slos" and rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["role"] == "alert-rules"


def test_slo_defaults_disable_alerts_and_recordings_for_every_slo(cat: Path) -> None:
    shutil.copy(SLOTH / "getting-started.yml", cat / "getting-started.yml")
    write(cat, "defaults.yaml", "version: 1\ndefaults:\n  slos: {alerts: false}\n")
    assert sorted(rule_groups(cat)) == [
        "sloth-slo-meta-recordings-myservice-requests-availability",
        "sloth-slo-sli-recordings-myservice-requests-availability",
    ]
    write(cat, "defaults.yaml", "version: 1\ndefaults:\n  slos: {recordings: false}\n")
    assert sorted(rule_groups(cat)) == ["sloth-slo-alerts-myservice-requests-availability"]


def test_slo_setting_errors(cat: Path) -> None:
    write(
        cat,
        "slos.yaml",
        """
        version: 1
        defaults:
          slos: {window: 30m, labels: {bad-label: x}}
        groups:
          - name: api
            prometheus_rule: {name: API_Rules}
            slos:
              - name: a
                objective: 99
                min_events: 10
                info_labels: {sloth_id: mine}
                sli: {raw: 'sum(rate(errors_total[{{window}}]))'}
              - name: b
                objective: 99
                sli:
                  errors: sum(rate(errors_total[{{window}}]))
                  good: sum(rate(ok_total[{{window}}]))
                  total: sum(rate(requests_total[{{window}}]))
              - name: c
                objective: 99
                alerting: {page: {severity: critical, labels: {severity: pageteam}}}
                sli:
                  raw: sum(rate(bad_total[5m]))
                  good: sum(rate(ok_total[{{window}}]))
                  total: sum(rate(requests_total[{{window}}]))
                  denominator_corrected: true
        """,
    )
    assert errors_of(cat) == [
        "rulesets/slos.yaml:3:18: defaults.slos.window: the compliance period must be at least 1h",
        'rulesets/slos.yaml:3:32: defaults.slos.labels.bad-label: "bad-label" is not a valid label name',
        'rulesets/slos.yaml:6:29: groups[0].prometheus_rule.name: "API_Rules" is not a valid Kubernetes name',
        "rulesets/slos.yaml:10:21: groups[0].slos[0].min_events: needs events to count: an errors/good + total or "
        "a latency SLI, not raw",
        "rulesets/slos.yaml:11:23: groups[0].slos[0].info_labels.sloth_id: sloth_id is set by the compiler",
        "rulesets/slos.yaml:16:11: groups[0].slos[1].sli: give errors or good (the events that burn the budget, or "
        "the others), not both",
        "rulesets/slos.yaml:21:66: groups[0].slos[2].alerting.page.labels.severity: differs from page.severity "
        '"critical"',
        "rulesets/slos.yaml:23:11: groups[0].slos[2].sli: give one of: errors (or good) + total, raw, latency, not "
        "several",
        "rulesets/slos.yaml:26:34: groups[0].slos[2].sli.denominator_corrected: needs an errors + total SLI "
        "(Sloth's events)",
    ]


# -- OpenSLO ---------------------------------------------------------------------------------------------------
OPENSLO_V1 = """
apiVersion: openslo/v1
kind: SLI
metadata: {name: api-errors}
spec:
  ratioMetric:
    counter: true
    bad: {metricSource: {type: Prometheus, spec: {query: 'http_requests_total{job="api",code=~"5.."}'}}}
    total: {metricSource: {type: Prometheus, spec: {query: 'http_requests_total{job="api"}'}}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: api-availability, labels: {team: web, tier: [a, b]}}
spec:
  service: api
  indicatorRef: api-errors
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: queue-health}
spec:
  service: queue
  indicator:
    metadata: {name: healthy-consumers}
    spec:
      ratioMetric:
        counter: false
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(queue_consumer_healthy)'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'count(queue_consumer_healthy)'}}}
  timeWindow: [{duration: 1w, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{targetPercent: 99}, {targetPercent: 95}]
"""


def test_openslo_v1_slos_and_slis_compile(cat: Path, tmp_path: Path) -> None:
    (cat / "openslo.yaml").write_text(OPENSLO_V1.replace("tier: [a, b]", "tier: one"))
    catalog = load_catalog(cat)
    assert [(s.sloth_id, s.objective, s.window_ms // 86_400_000, s.page) for s in catalog.slos()] == [
        ("api-api-availability", 99.9, 28, None),  # no alerts, as Sloth's OpenSLO SLOs
        ("queue-queue-health-0", 99, 7, None),
        ("queue-queue-health-1", 95, 7, None),
    ]
    availability, health, _ = catalog.slos()
    assert availability.errors == 'sum(rate(http_requests_total{job="api",code=~"5.."}[{{window}}]))'
    assert availability.labels == {"team": "web", "tier": "one"}
    assert health.good == "sum(sum_over_time((sum(queue_consumer_healthy))[{{window}}:]))"
    assert health.info_labels == {"sloth_mode": "cli-gen-openslo", "sloth_spec": "openslo/v1"}
    judged(cat, tmp_path / "out")


def test_openslo_what_has_no_equivalent_is_not_carried_with_the_reason() -> None:
    documents = list(yaml.safe_load_all(OPENSLO_V1))
    documents[2]["spec"]["budgetingMethod"] = "Timeslices"
    documents[2]["spec"]["alertPolicies"] = [{"alertPolicyRef": "fast-burn"}]
    documents[1]["spec"]["timeWindow"] = [{"duration": "1M", "calendar": {"startTime": "2024-01-01"}}]
    documents.append({"apiVersion": "openslo/v1", "kind": "AlertPolicy", "metadata": {"name": "fast-burn"}})
    assert recognise(documents[0]) is openslo.FORMATS[1]
    conversion = openslo.convert_v1(documents)
    assert [(p.source, p.reason) for p in conversion.not_carried] == [
        ("[1].spec.timeWindow[0]", "only rolling windows of a fixed length (m, h, d, w) have an equivalent"),
        ("[1].metadata.labels.tier", "not a Prometheus label (a valid name with one string value)"),
        ("[2].spec.budgetingMethod", "Timeslices budgeting: amcompanion counts occurrences (events), not time slices"),
        ("[2].spec.alertPolicies", "the catalog's burn-rate alerts (alerting) are its own"),
        ("[3]", "an OpenSLO AlertPolicy: the catalog's burn-rate alerts (alerting) are its own"),
    ]


def test_openslo_v1alpha_as_sloth_reads_it() -> None:
    documents = list(yaml.safe_load_all((SLOTH / "openslo-kubernetes-apiserver.yml").read_text()))
    conversion = openslo.convert_v1alpha(documents)
    assert not conversion.not_carried
    slos = [s for g in conversion.data["groups"] for s in g["slos"]]
    assert [(s["name"], s["objective"], s["alerting"]) for s in slos] == [
        ("requests-availability-openslo-0", 0.999 * 100, False),
        ("requests-latency-openslo-0", 0.99 * 100, False),
        ("requests-latency-openslo-1", 0.999 * 100, False),
    ]


# -- Pyrra -----------------------------------------------------------------------------------------------------
def test_pyrra_objectives_compile_and_pass_promtool_and_amtool(cat: Path, tmp_path: Path) -> None:
    for example in sorted(PYRRA.glob("*.yaml")):
        shutil.copy(example, cat / example.name)
    catalog = load_catalog(cat)
    by_name = {s.name: s for s in catalog.slos()}
    assert sorted(by_name) == [
        "caddy-response-latency",
        "coredns-response-errors",
        "nginx-api-errors",
        "nginx-api-latency",
        "prometheus-api-query",
        "prometheus-blackbox-probe-success",
        "pyrra-connect-latency",
    ]
    ratio = by_name["prometheus-api-query"]
    assert (
        ratio.errors
        == 'sum by (handler) (rate(prometheus_http_requests_total{handler=~"/api.*",code=~"5.."}[{{window}}]))'
    )
    assert ratio.group_by == ["handler"] and ratio.objective == 99 and ratio.window_ms == 7 * 86_400_000
    gauge = by_name["prometheus-blackbox-probe-success"]
    assert (gauge.good, gauge.total) == (
        "sum by (target) (sum_over_time(probe_success[{{window}}]))",
        "sum by (target) (count_over_time(probe_success[{{window}}]))",
    )
    latency = by_name["caddy-response-latency"]
    assert latency.good.startswith("sum (rate(caddy_http_response_duration_seconds_bucket{")  # type: ignore[union-attr]
    native = by_name["pyrra-connect-latency"]
    assert native.raw == (
        "1 - histogram_fraction(0, 0.2, sum by (method, service) "
        '(rate(connect_server_requests_duration_seconds{job="pyrra",code="ok"}[{{window}}])))'
    )
    assert native.service == "monitoring"
    judged(cat, tmp_path / "out")
    rule = yaml.safe_load((tmp_path / "out/kubernetes/pyrra-connect-latency.prometheusrule.yaml").read_text())
    assert rule["metadata"]["namespace"] == "monitoring" and rule["metadata"]["labels"]["prometheus"] == "k8s"


def test_pyrra_what_does_not_map_is_not_carried_with_the_reason() -> None:
    document = yaml.safe_load((PYRRA / "prometheus-http.yaml").read_text())
    document["spec"]["alerting"] = {"absent": True, "severities": {"fastBurn": "page", "mediumBurn": "critical"}}
    document["spec"]["performanceOverAccuracy"] = True
    assert recognise(document) is pyrra.FORMATS[0]
    conversion = pyrra.convert([document])
    assert [(p.source, p.reason) for p in conversion.not_carried] == [
        (
            "spec.performanceOverAccuracy",
            "a Pyrra output option (Thanos, rule splitting) the catalog has no equivalent for",
        ),
        ("spec.alerting.absent", "Pyrra's absent alert: write a kind: absent alert for the total metric"),
        ("spec.alerting.severities.mediumBurn", "the catalog's page tier has one severity for fastBurn and mediumBurn"),
    ]
    document["spec"]["alerting"] = {"disabled": True}
    assert pyrra.convert([document]).data["groups"][0]["slos"][0]["alerting"] is False
