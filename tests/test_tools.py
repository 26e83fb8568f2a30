"""Every generated file of every test catalog goes through the real judges: promtool and amtool."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml_rs

from amcompanion.cli import main
from amcompanion.validate import run_checks
from tests.conftest import CATALOGS, ROOT

CATALOG_DIRS = {"example": ROOT / "rulesets", **{p.name: p for p in sorted(CATALOGS.iterdir()) if p.is_dir()}}


@pytest.fixture(params=sorted(CATALOG_DIRS))
def compiled(request, tmp_path: Path, tools: None) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path / "generated"
    assert main(["compile", str(CATALOG_DIRS[request.param]), "-o", str(out), "-q"]) == 0
    return out


def test_promtool_and_amtool_accept_everything(compiled: Path) -> None:
    results = run_checks(compiled, lambda result: None)
    failures = [f"{r.name}\n{r.detail}" for r in results if not r.ok]
    assert not failures, "\n\n".join(failures)
    names = {r.name.split(" ")[0] + " " + r.name.split(" ")[1] for r in results}
    assert {"promtool check", "promtool test", "amtool check-config"} <= names
    assert any(r.name.startswith("route test") for r in results)


def test_prometheus_rule_objects_carry_the_rule_files(compiled: Path) -> None:
    for rule_file in (compiled / "prometheus/rules").glob("*.yml"):
        crd = yaml_rs.loads((compiled / "kubernetes" / f"{rule_file.stem}.prometheusrule.yaml").read_text())
        assert crd["apiVersion"] == "monitoring.coreos.com/v1" and crd["kind"] == "PrometheusRule"
        assert crd["spec"] == yaml_rs.loads(rule_file.read_text())


@pytest.mark.parametrize(
    ("group", "before", "after"),
    [
        ("kinds", "* 100 > 80", "* 100 > 81"),
        ("kinds", "/ 1024 / 1024 < 512", "/ 1024 / 1024 < 511"),
        ("kinds", "for: 3m", "for: 4m"),
        ("kinds", "14400) < 0", "14400) < 2"),
        # the user's own query: its window, its function, its matcher, its metric
        (
            "kinds",
            "node_disk_io_time_seconds_total[5m]) * 100 > 80",
            "node_disk_io_time_seconds_total[10m]) * 100 > 80",
        ),
        (
            "kinds",
            "rate(node_disk_io_time_seconds_total[5m]) * 100 > 80",
            "irate(node_disk_io_time_seconds_total[5m]) * 100 > 80",
        ),
        ("kinds", 'node_filesystem_avail_bytes{fstype!="tmpfs"}', 'node_filesystem_avail_bytes{fstype!="tmpfs_"}'),
        ("kinds", "node_memory_MemAvailable_bytes / 1024", "node_memory_MemFree_bytes / 1024"),
        ("slos", "(14.4 * 0.0009999999999999432)", "(15 * 0.0009999999999999432)"),
        (
            "slos",
            'slo:sli_error:ratio_rate6h{sloth_id="api-api-availability"',
            'slo:sli_error:ratio_rate2h{sloth_id="api-api-availability"',
        ),
        ("slos", ">= 1000)", ">= 2000)"),
        # the receiver's own alerts, tested on the real metrics: thresholds, `for`s, ranges and clauses
        ("amcompanion", 'up{job="amc-receiver"} == 0', 'up{job="amc-receiver"} == 1'),
        ("amcompanion", "for: 15m", "for: 16m"),
        ("amcompanion", 'outcome="failed"}[10m])', 'outcome="failed"}[5m])'),
        ("amcompanion", "    unless\n", "    and\n"),
        ("amcompanion", "offset 10m) == 1", "offset 5m) == 1"),
        ("amcompanion", '_seconds{job="amc-receiver"} > 300', '_seconds{job="amc-receiver"} > 299'),
        ("amcompanion", "[15m]) >= 0", "[15m]) > 0"),
        ("amcompanion", '_seconds{job="amc-receiver"} > 120', '_seconds{job="amc-receiver"} > 119'),
    ],
)
def test_generated_tests_fail_when_a_rule_drifts(
    tmp_path: Path, tools: None, group: str, before: str, after: str
) -> None:
    """The generated tests are not vacuous: a level, a `for`, a factor, a window, a function, a matcher or a metric
    changed by hand fails them."""
    out = tmp_path / "generated"
    assert main(["compile", str(CATALOGS / "kinds"), "-o", str(out), "-q"]) == 0
    rules = out / f"prometheus/rules/{group}.yml"
    original = rules.read_text()
    assert before in original
    rules.write_text(original.replace(before, after, 1))
    proc = subprocess.run(
        [shutil.which("promtool") or "promtool", "test", "rules", f"prometheus/tests/{group}.test.yml"],
        cwd=out,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, f"changing {before!r} went unnoticed"


def test_validate_command_reports_a_broken_rule(tmp_path: Path, tools: None, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "generated"
    assert main(["compile", str(CATALOGS / "minimal"), "-o", str(out), "-q"]) == 0
    assert main(["validate", str(out)]) == 0
    rules = out / "prometheus/rules/minimal.yml"
    rules.write_text(rules.read_text().replace("severity: critical", "severity: warning"))
    capsys.readouterr()
    assert main(["validate", str(out)]) == 1
    captured = capsys.readouterr()
    assert "FAIL promtool test rules prometheus/tests/minimal.test.yml" in captured.err
    assert captured.out.startswith("4 passed, 1 failed")


def test_one_promtool_run_for_several_test_files_reports_each_file(tmp_path: Path, tools: None) -> None:
    """Test files go to promtool several at a time (its start-up is most of a small file's time); what it says
    of each file is that file's result: the broken group fails, the others pass."""
    out = tmp_path / "generated"
    assert main(["compile", str(CATALOGS / "contract"), "-o", str(out), "-q"]) == 0
    tests = sorted(p.name for p in (out / "prometheus/tests").glob("*.test.yml"))
    assert len(tests) >= 3
    rules = out / "prometheus/rules/db.yml"
    rules.write_text(rules.read_text().replace("> 100", "> 110", 1))  # a unit of its last digit
    results = {r.name: r for r in run_checks(out, lambda result: None, workers=1)}  # one run takes them all
    unit = {name.rsplit("/", 1)[-1]: r for name, r in results.items() if name.startswith("promtool test rules")}
    assert sorted(unit) == tests
    assert [name for name, r in unit.items() if not r.ok] == ["db.test.yml"]
    assert "HighDBConnections" in unit["db.test.yml"].detail and "Unit Testing" not in unit["db.test.yml"].detail


def test_route_tests_are_not_run_against_a_config_amtool_refuses(tmp_path: Path, tools: None) -> None:
    """check-config runs first; with a broken config the route tests are reported as not run (they would prove
    nothing), and the unit tests are still run and reported."""
    out = tmp_path / "generated"
    assert main(["compile", str(CATALOGS / "minimal"), "-o", str(out), "-q"]) == 0
    config = out / "alertmanager/alertmanager.yml"
    text = config.read_text()
    for broken in (text.replace("receiver: unrouted", "receiver: no-such-receiver", 1), text + "\n  - [unclosed"):
        config.write_text(broken)  # a receiver that is not defined; then not YAML at all
        results = {r.name: r for r in run_checks(out, lambda result: None)}
        assert not results["amtool check-config"].ok
        assert "not run" in results["route tests"].detail and not any(n.startswith("route test ") for n in results)
        assert results["promtool test rules prometheus/tests/minimal.test.yml"].ok
