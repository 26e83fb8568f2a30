"""Writing generated/ atomically, and comparing it with what a compile would write (--check)."""

import difflib
import os
import shutil
import tempfile
from pathlib import Path

from amcompanion.compiler.build import Document
from amcompanion.emit.yamlout import dump

MARKER = ".amcompanion-generated"  # names a directory amcompanion may replace whole


def render(documents: dict[str, Document]) -> dict[str, str]:
    return {path: dump(doc.data, doc.header) for path, doc in sorted(documents.items())}


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
