"""Proposals made: the edited file texts, their unified diff, the proof that the edited catalog still loads, compiles
and passes promtool and amtool (those on PATH), and writing them into the catalog."""

import difflib
import os
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.catalog.reader import catalog_files, load_catalog
from amcompanion.emit.files import render_catalog, write_files
from amcompanion.tune.propose import Proposal


def read_texts(root: Path) -> dict[str, str]:
    """Every catalog file's text by its path in the catalog, line ends as they are (CRLF files stay CRLF)."""
    texts = {}
    for path in catalog_files(root):
        with path.open(encoding="utf-8", newline="") as file:
            texts[path.relative_to(root).as_posix()] = file.read()
    return texts


def apply(texts: Mapping[str, str], proposals: Iterable[Proposal]) -> dict[str, str]:
    """The texts of the files the proposals edit, edited (edits at one place in proposal order)."""
    by_file: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
    for number, proposal in enumerate(proposals):
        for edit in proposal.edits:
            by_file[proposal.file].append((edit.start, edit.end, number, edit.text))
    out = {}
    for file, edits in by_file.items():
        text, parts, at = texts[file], [], 0
        for start, end, _, new in sorted(edits):
            parts += [text[at:start], new]
            at = end
        out[file] = "".join([*parts, text[at:]])
    return out


def overlapping(proposals: list[Proposal]) -> tuple[list[Proposal], list[Proposal]]:
    """(the proposals whose edits leave each other's spans alone, the later ones that would replace text an earlier
    one replaces or inserts into)."""
    taken: dict[str, list[tuple[int, int]]] = defaultdict(list)
    kept, clashing = [], []
    for proposal in proposals:
        spans = taken[proposal.file]
        if any(_clash(edit.start, edit.end, start, end) for edit in proposal.edits for start, end in spans):
            clashing.append(proposal)
            continue
        spans += [(edit.start, edit.end) for edit in proposal.edits]
        kept.append(proposal)
    return kept, clashing


def _clash(a: int, b: int, c: int, d: int) -> bool:
    if a == b and c == d:  # two insertions: both go in, in order
        return False
    return max(a, c) < min(b, d) or (a == b and c < a < d) or (c == d and a < c < b)


def diff(texts: Mapping[str, str], edited: Mapping[str, str]) -> str:
    """A unified diff of the edited files, as `git diff` names them (a/FILE, b/FILE: `patch -p1` in the catalog)."""
    out = []
    for file in sorted(edited):
        lines = difflib.unified_diff(
            texts[file].splitlines(keepends=True), edited[file].splitlines(keepends=True), f"a/{file}", f"b/{file}"
        )
        out += [line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n" for line in lines]
    return "".join(out)


@dataclass
class Verified:
    kept: list[Proposal]
    dropped: list[tuple[Proposal, list[str]]] = field(default_factory=list)  # each with what it broke
    checks: list[str] = field(default_factory=list)  # what the edited catalog passed


def verify(root: Path, texts: Mapping[str, str], proposals: list[Proposal]) -> Verified:
    """The proposals that, made together, leave a catalog that loads, says what each meant to change, compiles and
    passes promtool and amtool. All are tried at once first; when that fails, one at a time, in order, each on top
    of those kept, against what fails without any edit (a tool that fails on the catalog as it is blames nobody):
    loading only, which is quick and what most breakage fails, then compiling too if the rest still fails."""
    checks = ["amcompanion compile", *(check for check in TOOL_CHECKS if shutil.which(check.split()[0]))]
    if not _problems(root, texts, proposals):
        return Verified(proposals, [], checks)
    before = set(_problems(root, texts, []))
    verified = Verified([], [], checks)
    for compiled in (False, True):
        if compiled and not set(_problems(root, texts, verified.kept)) - before:
            break
        trying, verified.kept = verified.kept if compiled else proposals, []
        for proposal in trying:
            new = [p for p in _problems(root, texts, [*verified.kept, proposal], compiled) if p not in before]
            if new:
                verified.dropped.append((proposal, new))
            else:
                verified.kept.append(proposal)
    return verified


TOOL_CHECKS = ("promtool check rules", "amtool check-config")


def _problems(root: Path, texts: Mapping[str, str], proposals: list[Proposal], compiled: bool = True) -> list[str]:
    edited = {**texts, **apply(texts, proposals)}
    with tempfile.TemporaryDirectory(prefix="amcompanion-tune-") as temp:
        copy = Path(temp) / root.resolve().name  # named as the catalog, for its diagnostics and headers
        write_files(copy, edited)
        try:
            catalog = load_catalog(copy)
        except CatalogError as exc:
            return [str(diag) for diag in exc.diagnostics]
        problems = [problem for problem in (p.expect(catalog) for p in proposals) if problem]
        if not compiled:
            return problems
        files, _ = render_catalog(catalog, os.cpu_count() or 1)
        out = Path(temp) / "generated"
        write_files(out, files)
        return problems + _tool_problems(out, sorted(files))


def _tool_problems(out: Path, files: list[str]) -> list[str]:
    """promtool check rules and amtool check-config on the compiled files, at once, when they are on PATH."""
    rules = [str(out / f) for f in files if f.startswith("prometheus/rules/")]
    arguments = dict(zip(TOOL_CHECKS, (rules, [str(out / "alertmanager/alertmanager.yml")]), strict=True))
    running = {
        check: subprocess.Popen([*check.split(), *paths], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for check, paths in arguments.items()
        if shutil.which(check.split()[0])
    }
    problems = []
    for what, process in running.items():
        output, _ = process.communicate()
        if process.returncode:
            said = output.replace(f"{out}{os.sep}", "generated/").strip().splitlines()
            problems.append(f"{what}: " + " / ".join(said[-3:]))
    return problems


def write(root: Path, edited: Mapping[str, str]) -> list[str]:
    """The edited files written over the catalog's, each at once (a reader sees the old file or the new one)."""
    for file, text in sorted(edited.items()):
        target = root / file
        temp = target.with_name(f".{target.name}.tune-{os.getpid()}")
        with temp.open("w", encoding="utf-8", newline="") as out:
            out.write(text)
        shutil.copymode(target, temp)
        os.replace(temp, target)
    return sorted(edited)
