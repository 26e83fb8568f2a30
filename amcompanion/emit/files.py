"""Writing generated/ atomically, and comparing it with what a compile would write (--check)."""

import contextlib
import difflib
import itertools
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from amcompanion.catalog.model import Alert, Catalog
from amcompanion.compiler.build import (
    REGENERATE,
    CompiledGroup,
    Document,
    Output,
    catalog_output,
    compile_group,
    group_documents,
)
from amcompanion.emit.yamlout import comment_lines, dump, dump_lines

MARKER = ".amcompanion-generated"  # names a directory amcompanion may replace whole


def render(documents: dict[str, Document]) -> dict[str, str]:
    """Text of every document; one embedded in another of the batch (a PrometheusRule's spec) is emitted once."""
    top_level = {id(doc.data) for doc in documents.values()}
    nested = {
        path
        for path, doc in documents.items()
        if isinstance(doc.data, dict) and any(id(v) in top_level for v in doc.data.values())
    }
    texts: dict[str, str] = {}
    reuse: dict[int, list[str]] = {}
    for path, doc in documents.items():
        if path not in nested:
            lines = dump_lines(doc.data)
            reuse[id(doc.data)] = lines
            header = comment_lines(doc.header)
            texts[path] = "".join(line + "\n" for line in header) + "\n".join(lines) + "\n"
    for path in nested:
        texts[path] = dump(documents[path].data, documents[path].header, reuse)
    return texts


@dataclass
class _Job:
    """What the worker processes read: set before they fork, so nothing is pickled to them."""

    catalog: Catalog
    compiled: list[CompiledGroup]
    all_alerts: dict[str, Alert]
    regenerate: str
    staging: Path | None = None


_job: _Job | None = None


def _group_texts(index: int) -> tuple[dict[str, str], list[str]]:
    """A group's files, and its unproven alerts."""
    assert _job is not None
    documents, unproven = group_documents(_job.catalog, _job.compiled[index], _job.all_alerts, _job.regenerate)
    return render(documents), unproven


def _write_group(index: int) -> tuple[list[str], list[str]]:
    """Workers write their own files: sending megabytes of text back to one process would serialise it."""
    assert _job is not None and _job.staging is not None
    texts, unproven = _group_texts(index)
    write_files(_job.staging, texts)
    return list(texts), unproven


T = TypeVar("T")


@dataclass
class _Compiled(Generic[T]):
    per_group: list[T]
    output: Output
    catalog_texts: dict[str, str]


def _compile(
    catalog: Catalog, jobs: int, regenerate: str, work: Callable[[int], T], staging: Path | None = None
) -> _Compiled[T]:
    """Compile every group with `work`, spread over `jobs` processes (fork: nothing is copied), while this
    process compiles and renders the catalog-wide documents."""
    global _job
    compiled = [compile_group(group) for group in catalog.groups]
    _job = _Job(catalog, compiled, {a.name: a for a in catalog.alerts()}, regenerate, staging)
    try:
        if jobs > 1 and len(compiled) > 1 and "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=min(jobs, len(compiled)), mp_context=context) as pool:
                pending = pool.map(work, range(len(compiled)), chunksize=1)
                output = catalog_output(catalog, compiled, regenerate)
                texts = render(output.documents)
                results = list(pending)
        else:
            output = catalog_output(catalog, compiled, regenerate)
            texts = render(output.documents)
            results = [work(index) for index in range(len(compiled))]
    finally:
        _job = None
    return _Compiled(results, output, texts)


def render_catalog(catalog: Catalog, jobs: int, regenerate: str = REGENERATE) -> tuple[dict[str, str], Output]:
    """The text of every file compile would write, by path; their headers name `regenerate`."""
    done = _compile(catalog, jobs, regenerate, _group_texts)
    texts = dict(done.catalog_texts)
    for part, unproven in done.per_group:
        texts.update(part)
        done.output.unproven += unproven
    return dict(sorted(texts.items())), done.output


def write_catalog(catalog: Catalog, out_dir: Path, jobs: int, regenerate: str = REGENERATE) -> tuple[list[str], Output]:
    """Compile straight into a fresh out_dir (see staged); the paths written, and the output's counts. The
    files' headers name `regenerate`."""
    with staged(out_dir) as staging:
        done = _compile(catalog, jobs, regenerate, _write_group, staging)
        write_files(staging, done.catalog_texts)
    for _, unproven in done.per_group:
        done.output.unproven += unproven
    return sorted([*done.catalog_texts, *itertools.chain.from_iterable(p for p, _ in done.per_group)]), done.output


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def write_tree(out_dir: Path, files: dict[str, str]) -> None:
    with staged(out_dir) as staging:
        write_files(staging, files)


@contextlib.contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """A sibling temp dir to write into, swapped in for out_dir on success: a failed run leaves the old
    tree whole. out_dir is replaced only if amcompanion wrote it (it holds MARKER) or it is empty."""
    out_dir = out_dir.resolve()
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise FileExistsError(
            f"{out_dir.name}/ exists and was not written by amcompanion; refusing to replace it "
            f"(remove it or choose another -o)"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield staging
        (staging / MARKER).write_text(
            "This directory is written by `amcompanion compile`; edit the catalog.\n", encoding="utf-8"
        )
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
        staging.rename(out_dir)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def stale_diff(out_dir: Path, files: dict[str, str], label: str) -> str:
    """A unified diff from what is in out_dir to what compile would write; empty when up to date."""
    chunks = []
    existing = (
        {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()} if out_dir.is_dir() else set()
    )
    existing.discard(MARKER)
    for rel in sorted(existing | set(files)):
        path = out_dir / rel
        before = path.read_text(encoding="utf-8").splitlines(keepends=True) if rel in existing else []
        after = files.get(rel, "").splitlines(keepends=True)
        if before != after:
            chunks.extend(difflib.unified_diff(before, after, f"{label}/{rel}", f"{label}/{rel} (compiled)"))
    return "".join(chunks)
