"""`amcompanion init`: a starter catalog that compiles and passes promtool and amtool as written, holds what
a team needs to begin with, points editors at the schema and people at the docs, and never overwrites."""

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from amcompanion.catalog import load_catalog
from amcompanion.catalog.schema_url import SCHEMA_URL
from amcompanion.cli import main
from amcompanion.starter import starter_files
from tests.conftest import ROOT

STARTER = ROOT / "amcompanion" / "starter"


def test_the_starter_compiles_and_the_real_tools_accept_it(tmp_path: Path, tools: None, capsys) -> None:  # type: ignore[no-untyped-def]
    catalog, out = tmp_path / "rulesets", tmp_path / "generated"
    assert main(["init", str(catalog)]) == 0
    said = capsys.readouterr().out
    for name in starter_files():
        assert str(catalog / name) in said
    assert f"amcompanion compile {catalog} -o generated" in said and "amcompanion validate generated" in said
    assert main(["compile", str(catalog), "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err  # every alert reaches a policy
    assert main(["validate", str(out)]) == 0
    assert re.match(r"\d+ passed, 0 failed", capsys.readouterr().out)


def test_the_starter_holds_the_blocks_a_team_begins_with(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "rulesets")]) == 0
    catalog = load_catalog(tmp_path / "rulesets")
    leveled = [a for a in catalog.alerts() if a.kind == "threshold" and len(a.levels) == 2]
    assert len(leveled) >= 2
    assert all({level.severity for level in a.levels} == {"warning", "critical"} for a in leveled)
    assert [slo.objective for slo in catalog.slos()] == [99.9] and catalog.slos()[0].errors
    types = {name: settings["type"] for name, settings in catalog.channels.items()}
    assert "dingtalk" in types.values() and "twilio_sms" in types.values()
    (policy,) = catalog.policies.values()
    assert len(policy.steps) == 2 and policy.steps[1].after_ms > 0
    sms = [t for t in policy.steps[1].notify if types[t.channel] == "twilio_sms"]
    assert sms and all(catalog.contacts[person]["phone"] for target in sms for person in target.to)
    (quiet,) = [route for route in catalog.routes if route.quiet_hours]
    assert ("severity", "=", "warning") in quiet.matchers and quiet.quiet_hours[0] in catalog.quiet_hours
    (inhibit,) = [i for group in catalog.groups for i in group.inhibits]
    assert inhibit.targets and inhibit.equal


def test_each_file_starts_with_the_schema_modeline_and_comments_every_block() -> None:
    for name, text in starter_files().items():
        lines = text.splitlines()
        assert lines[0] == f"# yaml-language-server: $schema={SCHEMA_URL}", name
        for i, line in enumerate(lines):
            if re.match(r"[a-z_]+:", line) and not line.startswith("version:"):
                assert lines[i - 1].startswith("#"), f"{name}:{i + 1}: {line!r} has no comment above it"


def test_the_docs_the_comments_point_at_exist() -> None:
    headings = (ROOT / "docs/catalog.md").read_text().splitlines()
    anchors = {_slug(h.lstrip("#")) for h in headings if h.startswith("#")}
    pointers = re.findall(r"(docs/[\w.-]+\.md)(?:#([\w-]+))?", "".join(starter_files().values()))
    assert {page for page, _ in pointers} >= {"docs/catalog.md", "docs/first-catalog.md"}
    for page, anchor in pointers:
        assert (ROOT / page).is_file(), page
        assert not anchor or anchor in anchors, f"{page}#{anchor}"


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_init_never_overwrites_without_force(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    catalog = tmp_path / "rulesets"
    catalog.mkdir()
    (catalog / "oncall.yaml").write_text("version: 1  # mine\n")
    assert main(["init", str(catalog)]) == 1
    err = capsys.readouterr().err
    assert f"{catalog / 'oncall.yaml'} already exists; nothing written (--force overwrites)" in err
    assert [p.name for p in catalog.iterdir()] == ["oncall.yaml"]
    assert (catalog / "oncall.yaml").read_text() == "version: 1  # mine\n"
    assert main(["init", str(catalog), "--force"]) == 0
    assert (catalog / "oncall.yaml").read_text() == starter_files()["oncall.yaml"]


def test_init_says_when_the_target_is_a_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "rulesets").write_text("")
    assert main(["init", str(tmp_path / "rulesets")]) == 1
    assert "rulesets: not a directory" in capsys.readouterr().err


def test_the_wheel_ships_the_starter_files() -> None:
    """They are package data: each file must match a pattern pyproject.toml gives the package."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = [p.name for p in STARTER.iterdir() if p.suffix == ".yaml"]
    assert sorted(files) == sorted(starter_files())
    assert all(any(fnmatch(name, pattern) for pattern in patterns["amcompanion.starter"]) for name in files)


def test_help_teaches_init_with_examples(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main(["init", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "amcompanion init teams/web" in out and "--force" in out
