"""The receiver's own alerts (`self_monitoring`): whom they page, and what is written when there is no one."""

import textwrap
from pathlib import Path

from amcompanion.catalog import load_catalog
from amcompanion.compiler.build import compile_catalog
from amcompanion.emit.files import write_catalog
from amcompanion.validate import run_checks
from tests.conftest import require_tool

SELF_FILES = {
    "prometheus/rules/amcompanion.yml",
    "prometheus/tests/amcompanion.test.yml",
    "kubernetes/amcompanion.prometheusrule.yaml",
}
ALERTS = [
    "AmcompanionReceiverDown",
    "AmcompanionReceiverNotScraped",
    "AmcompanionPagesFailing",
    "AmcompanionChannelFailing",
    "AmcompanionOutboxBacklog",
    "AmcompanionEscalationOverdue",
]
POLICIES = """
version: 1
channels:
  robot: {type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=${T}"}
escalations:
  zeta-oncall: {steps: [{notify: [robot]}]}
  alpha-oncall: {steps: [{notify: [robot]}]}
routes:
  - {match: {severity: critical}, escalation: alpha-oncall}
groups:
  - name: node
    alerts: [{alert: NodeDown, expr: 'up{job="node"} == 0', severity: critical}]
"""


def catalog_dir(tmp_path: Path, *texts: str) -> Path:
    root = tmp_path / "rulesets"
    root.mkdir()
    for i, text in enumerate(texts):
        (root / f"{i}.yaml").write_text(textwrap.dedent(text).lstrip())
    return root


def receivers_of(output, alert: str) -> set[str]:  # type: ignore[no-untyped-def]
    cases = output.documents["alertmanager/routes.test.yml"].data["tests"]
    return {r for case in cases if case["labels"]["alertname"] == alert for r in case["receivers"]}


def test_they_page_the_first_policy_in_catalog_order_before_any_catalog_route(tmp_path: Path) -> None:
    output = compile_catalog(load_catalog(catalog_dir(tmp_path, POLICIES)))
    assert set(output.documents) >= SELF_FILES
    first = output.documents["alertmanager/alertmanager.yml"].data["route"]["routes"][0]
    assert (first["receiver"], first["matchers"]) == ("zeta-oncall", ['amcompanion_self_monitoring="true"'])
    for alert in ALERTS:  # the critical ones too, which the catalog's route would send to alpha-oncall
        assert receivers_of(output, alert) == {"zeta-oncall"}, alert


def test_a_native_receiver_gets_them_and_amtool_agrees(tmp_path: Path) -> None:
    require_tool("amtool")
    require_tool("promtool")
    native = """
    version: 1
    self_monitoring:
      job: receiver
      channel_failing_for: 90s
      native:
        webhook_configs: [{url: "https://pager.example.com/hook", send_resolved: true}]
    """
    catalog = load_catalog(catalog_dir(tmp_path, POLICIES, native))
    output = compile_catalog(catalog)
    am = output.documents["alertmanager/alertmanager.yml"].data
    assert am["route"]["routes"][0]["receiver"] == "amcompanion-self-monitoring"
    assert {
        "name": "amcompanion-self-monitoring",
        "webhook_configs": [{"url": "https://pager.example.com/hook", "send_resolved": True}],
    } in am["receivers"]
    for alert in ALERTS:
        assert receivers_of(output, alert) == {"amcompanion-self-monitoring"}, alert
    rules = output.documents["prometheus/rules/amcompanion.yml"].data["groups"][0]["rules"]
    assert rules[0]["expr"] == 'up{job="receiver"} == 0'
    assert next(r for r in rules if r["alert"] == "AmcompanionChannelFailing")["for"] == "1m30s"
    out = tmp_path / "generated"
    write_catalog(catalog, out, 1)
    failed = [check for check in run_checks(out, lambda result: None, workers=2) if not check.ok]
    assert not failed, failed


def test_without_a_policy_the_rules_are_written_and_the_warning_names_them(tmp_path: Path) -> None:
    output = compile_catalog(load_catalog(catalog_dir(tmp_path, "version: 1\ngroups: [{name: g}]\n")))
    assert set(output.documents) >= SELF_FILES
    assert "routes" not in output.documents["alertmanager/alertmanager.yml"].data["route"]
    assert output.unrouted == sorted(ALERTS)


def test_disabled_writes_no_file_and_no_route(tmp_path: Path) -> None:
    off = "version: 1\nself_monitoring: {enabled: false, escalation: zeta-oncall}\n"
    output = compile_catalog(load_catalog(catalog_dir(tmp_path, POLICIES, off)))
    assert not SELF_FILES & set(output.documents)
    assert "amcompanion_self_monitoring" not in str(output.documents["alertmanager/alertmanager.yml"].data)
    assert not receivers_of(output, "AmcompanionReceiverDown")


def test_severities_are_the_catalogs_own(tmp_path: Path) -> None:
    own = "version: 1\ndefaults: {severities: [low, high, page], labels: {cluster: eu}}\ngroups: [{name: g}]\n"
    output = compile_catalog(load_catalog(catalog_dir(tmp_path, own)))
    rules = output.documents["prometheus/rules/amcompanion.yml"].data["groups"][0]["rules"]
    labels = {rule["alert"]: rule["labels"] for rule in rules}
    assert labels["AmcompanionReceiverDown"] == {
        "amcompanion_self_monitoring": "true",
        "cluster": "eu",
        "severity": "page",
    }
    assert labels["AmcompanionChannelFailing"]["severity"] == "low"
