"""The command line: summary, --check as a GitOps gate, usage errors, refusing to clobber."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amcompanion.cli import _parser, main
from amcompanion.wording import plural
from tests.conftest import CATALOGS, ROOT


def test_compile_prints_a_summary(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compile", str(CATALOGS / "kinds"), "-o", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("compiled 3 groups, 18 alerts, ")
    assert " 4 SLOs, " in line and "route tests → 16 files in " in line and line.endswith("s")


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


def test_bare_amcompanion_prints_the_whole_help_and_exits_1() -> None:
    """As git does: the help, on stdout (not a usage error), and exit 1, since no command ran: a script that
    lost its arguments must not take that for success."""
    bare = subprocess.run([sys.executable, "-m", "amcompanion"], capture_output=True, text=True, check=False)
    assert (bare.returncode, bare.stderr) == (1, "")
    assert bare.stdout.startswith("usage: amcompanion [-h] [--version] COMMAND ...\n\nDescribe alerts once")
    listed = re.findall(r"^    (\w+) ", bare.stdout, re.M)
    assert {"compile", "validate", "serve", "alerts", "ack", "channels", "demo", "history"} <= set(listed)
    assert bare.stdout.rstrip().endswith("Run `amcompanion COMMAND --help` for examples.")


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
        'warning: 7 alerts with no escalation policy, only the empty receiver "unrouted" (set '
        "defaults.escalation, a group escalation or a route): AmcompanionChannelFailing, AmcompanionEscalationOverdue, "
        "AmcompanionOutboxBacklog, AmcompanionPagesFailing, AmcompanionReceiverDown, AmcompanionReceiverNotScraped, "
        "InstanceDown\n"
    )
    assert main(["compile", str(CATALOGS / "kinds"), "-o", str(tmp_path / "b")]) == 0
    # every alert reaches a policy; two queries the compiler cannot drive, and no examples: named, not "proven"
    assert capsys.readouterr().err == (
        "warning: 2 alerts tested without going through their query (give it `examples:`, see docs/catalog.md):\n"
        "  kinds/ComplexTemplate: its query returns series with no input (e.g. vector())\n"
        "  self-producing/NightlyWindow: its query returns series with no input (e.g. vector())\n"
    )


HISTORY_DEFAULTS = {
    "serve": ["--host HOST address to listen on (default: 127.0.0.1)", "--port PORT port (default: 8001)"],
    "report": ["--since SINCE how far back, as a duration, from the start of that day (UTC; default: 7d)"],
    "prune": ["--older-than OLDER_THAN a duration: resolved before now minus this (e.g. 90d)"],
    "seed": ["(default: 5000)", "(default: 90)", "the same seed gives the same history (default: 1)"],
}


@pytest.mark.parametrize("action", sorted(HISTORY_DEFAULTS))
def test_history_actions_explain_themselves_with_examples_and_defaults(action: str, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exited:
        main(["history", action, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]
    assert description[0].isupper() and description.rstrip().endswith("."), description
    flat = " ".join(text.split())
    for shown in [*HISTORY_DEFAULTS[action], "--db DB the history database (default: history.db)"]:
        assert shown in flat, shown
    examples = re.findall(rf"^  (amcompanion history {action} .*?)(?:  #.*)?$", text, re.M)
    assert len(examples) >= 2, text
    for example in examples:  # each parses as the command it teaches (up to a shell's && or |)
        words = shlex.split(re.split(r" (?:&&|\|) ", example)[0])
        assert _parser().parse_args(words[1:]).history_command == action, example


def test_generated_files_and_check_name_the_compile_that_was_run(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    catalog, out = tmp_path / "teams" / "payments", tmp_path / "out"
    shutil.copytree(CATALOGS / "minimal", catalog)
    assert main(["compile", str(catalog), "-o", str(out), "-q"]) == 0
    command = f"amcompanion compile {catalog} -o {out}"
    written = sorted(out.rglob("*.y*ml"))
    assert written and all(f"# Regenerate with: {command}\n" in path.read_text() for path in written)
    assert main(["compile", str(catalog), "-o", str(out), "--check"]) == 0, "the same command: up to date"
    (catalog / "alerts.yml").write_text((catalog / "alerts.yml").read_text().replace("up == 0", "up == 2"))
    assert main(["compile", str(catalog), "-o", str(out), "--check"]) == 1
    assert f"{out}/ is stale: run `{command}` and commit the result" in capsys.readouterr().err
    # the default invocation, however spelt, keeps the bare command generated/ and the golden files carry
    monkeypatch.chdir(tmp_path)
    shutil.copytree(CATALOGS / "minimal", "rulesets")
    assert main(["compile", "./rulesets/", "-o", "generated/", "-q"]) == 0
    rules = (tmp_path / "generated" / "prometheus" / "rules" / "minimal.yml").read_text()
    assert "# Regenerate with: amcompanion compile\n" in rules


def test_counts_read_as_english(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    nouns = [(1, "SLO"), (4, "SLO"), (1, "escalation policy"), (3, "escalation policy"), (2, "day"), (0, "match")]
    assert [plural(count, noun) for count, noun in nouns] == [
        "1 SLO",
        "4 SLOs",
        "1 escalation policy",
        "3 escalation policies",
        "2 days",
        "0 matches",
    ]
    assert main(["compile", str(CATALOGS / "minimal"), "-o", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.startswith("compiled 1 group, 1 alert, ")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.yml").write_text("version: 1\ngroups: [{name: g, alerts: [{alert: A, expr: up, abve: 1}]}]\n")
    assert main(["compile", str(bad), "-o", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.endswith("\n1 error; nothing written\n")
    db = tmp_path / "history.db"
    assert main(["history", "seed", "--alerts", "1", "--days", "1", "--db", str(db)]) == 0
    assert f"seeded 1 alert over 1 day into {db}" in capsys.readouterr().out
    assert main(["history", "prune", "--older-than", "1s", "--db", str(db)]) == 0
    pruned = capsys.readouterr().out
    assert re.search(
        r": 1 alert, \d+ alert events?, \d+ notifications?, \d+ escalations?, \d+ acks?, \d+ events?\n$", pruned
    )
