"""The catalogs whose compiled output is kept as golden files, and how to refresh them.

Refresh after an intended change of the output:

    python tests/golden_cases.py && amcompanion compile

then review `git diff tests/golden generated` before committing. The bundled example's golden files
are generated/ itself (compiled from rulesets/).
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from amcompanion.catalog import load_catalog  # noqa: E402
from amcompanion.compiler.build import compile_catalog  # noqa: E402
from amcompanion.emit.files import render, write_tree  # noqa: E402

CASES = {
    "contract": HERE / "catalogs" / "contract",
    "kinds": HERE / "catalogs" / "kinds",
    "minimal": HERE / "catalogs" / "minimal",
}


def compiled_files(catalog_dir: Path) -> dict[str, str]:
    catalog = load_catalog(catalog_dir)
    return render(compile_catalog(catalog).documents)


def refresh() -> None:
    for name, catalog_dir in CASES.items():
        target = HERE / "golden" / name
        write_tree(target, compiled_files(catalog_dir))
        print(f"refreshed tests/golden/{name}/")


if __name__ == "__main__":
    refresh()
