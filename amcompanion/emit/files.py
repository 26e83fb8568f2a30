"""Writing generated/ atomically, and comparing it with what a compile would write (--check)."""

import difflib
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from amcompanion.catalog.model import Alert, Catalog
from amcompanion.compiler.build import CompiledGroup, Document, Output, catalog_output, compile_group, group_documents
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
            texts[path] = "\n".join([*comment_lines(doc.header), *lines]) + "\n"
    for path in nested:
        texts[path] = dump(documents[path].data, documents[path].header, reuse)
    return texts


_work: tuple[Catalog, list[CompiledGroup], dict[str, Alert]] | None = None


def _render_group(index: int) -> dict[str, str]:
    assert _work is not None
    catalog, compiled, all_alerts = _work
    return render(group_documents(catalog, compiled[index], all_alerts))


def render_catalog(catalog: Catalog, jobs: int) -> tuple[dict[str, str], Output]:
    """Compile and render every file, the groups spread over `jobs` processes (fork: nothing is copied)."""
    global _work
    compiled = [compile_group(group) for group in catalog.groups]
    _work = (catalog, compiled, {a.name: a for a in catalog.alerts()})
    texts: dict[str, str] = {}
    try:
        if jobs > 1 and len(compiled) > 1 and "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                pending = pool.map(_render_group, range(len(compiled)), chunksize=max(1, len(compiled) // (jobs * 4)))
                output = catalog_output(catalog, compiled)
                texts.update(render(output.documents))
                for part in pending:
                    texts.update(part)
        else:
            output = catalog_output(catalog, compiled)
            texts.update(render(output.documents))
            for index in range(len(compiled)):
                texts.update(_render_group(index))
    finally:
        _work = None
    return dict(sorted(texts.items())), output


def write_tree(out_dir: Path, files: dict[str, str]) -> None:
    """Write every file to a sibling temp dir, then swap it in: a failed run leaves the old tree whole."""
    out_dir = out_dir.resolve()
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise FileExistsError(
            f"{out_dir.name}/ exists and was not written by amcompanion; refusing to replace it "
            f"(remove it or choose another -o)"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for rel, text in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
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
