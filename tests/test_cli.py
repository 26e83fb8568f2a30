"""The command line: summary, --check as a GitOps gate, usage errors, refusing to clobber."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amcompanion.cli import main
from tests.conftest import CATALOGS, ROOT


def test_compile_prints_a_summary(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compile", str(CATALOGS / "kinds"), "-o", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("compiled 3 groups, 18 alerts, ")
    assert " 4 SLOs, " in line and "route tests → 15 files in " in line and line.endswith("s")


def test_check_passes_on_fresh_output_and_fails_with_a_diff_when_stale(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    catalog = tmp_path / "rulesets"
    shutil.copytree(CATALOGS / "minimal", catalog)
    out = tmp_path / "generated"
    assert main(["compile", str(catalog), "-o", str(out)]) == 0
    assert main(["compile", str(catalog), "-o", str(out), "--check"]) == 0
    (catalog / "alerts.yml").write_text((catalog / "alerts.yml").read_text().replace("up == 0", "up == 2"))
    capsys.readouterr()
    assert main(["compile", str(catalog), "-o", str(out), "--check"]) == 1
    captured = capsys.readouterr()
    assert "--- generated/prometheus/rules/minimal.yml\n" in captured.out
    assert "-        expr: up == 0\n+        expr: up == 2\n" in captured.out
    assert "is stale" in captured.err
    (out / "prometheus/rules/extra.yml").write_text("groups: []\n")
    (catalog / "alerts.yml").write_text((catalog / "alerts.yml").read_text().replace("up == 2", "up == 0"))
    assert main(["compile", str(catalog), "-o", str(out), "--check"]) == 1
    assert "--- generated/prometheus/rules/extra.yml" in capsys.readouterr().out


def test_bundled_generated_directory_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "amcompanion", "compile", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr


def test_usage_errors_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exited:
        main(["compile", "--no-such-flag"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2


def test_compile_refuses_to_replace_a_directory_it_did_not_write(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["compile", str(CATALOGS / "minimal"), "-o", str(out)]) == 1
    assert "was not written by amcompanion" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_recompiling_replaces_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    assert main(["compile", str(CATALOGS / "kinds"), "-o", str(out), "-q"]) == 0
    assert (out / "prometheus/rules/slos.yml").exists()
    assert main(["compile", str(CATALOGS / "minimal"), "-o", str(out), "-q"]) == 0
    assert not (out / "prometheus/rules/slos.yml").exists()


def test_validate_needs_compiled_output(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", str(tmp_path)]) == 1
    assert "run `amcompanion compile` first" in capsys.readouterr().err


def test_validate_says_when_a_tool_is_missing(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compile", str(CATALOGS / "minimal"), "-o", str(tmp_path / "out"), "-q"]) == 0
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert main(["validate", str(tmp_path / "out")]) == 1
    assert "promtool is not installed (not on PATH); Debian/Ubuntu: apt-get install" in capsys.readouterr().err


def test_help_teaches_with_examples(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    text = capsys.readouterr().out
    assert "amcompanion compile --check" in text and "exit codes: 0 ok, 1 catalog errors or stale output" in text


def test_compile_warns_about_alerts_that_reach_no_policy(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compile", str(CATALOGS / "minimal"), "-o", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().err == (
        'warning: 7 alert(s) reach no escalation policy, only the empty receiver "unrouted" (set '
        "defaults.escalation, a group escalation or a route): AmcompanionChannelFailing, AmcompanionEscalationOverdue, "
        "AmcompanionOutboxBacklog, AmcompanionPagesFailing, AmcompanionReceiverDown, AmcompanionReceiverNotScraped, "
        "InstanceDown\n"
    )
    assert main(["compile", str(CATALOGS / "kinds"), "-o", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err == ""
