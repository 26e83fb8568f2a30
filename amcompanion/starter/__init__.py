"""`amcompanion init`: the commented starter catalog of one team, shipped as the YAML files beside this module.

Each file is written with the schema modeline first, so that editors (the YAML language server in VS Code,
JetBrains IDEs) complete and check the catalog as it is typed.
"""

import errno
from importlib import resources
from pathlib import Path

from amcompanion.catalog.schema_url import SCHEMA_URL

MODELINE = f"# yaml-language-server: $schema={SCHEMA_URL}\n"


def starter_files() -> dict[str, str]:
    """File name → text, the modeline first, in the order the catalog reads them."""
    found = (f for f in resources.files(__name__).iterdir() if f.name.endswith(".yaml"))
    return {f.name: MODELINE + f.read_text(encoding="utf-8") for f in sorted(found, key=lambda f: f.name)}


def write_starter(target: Path, force: bool = False) -> list[Path]:
    """Write the starter files into `target` (created if missing). Files already there are kept, with a
    FileExistsError naming them, unless `force`: someone's catalog must not be lost to a second `init`."""
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(target))
    files = starter_files()
    existing = [target / name for name in files if (target / name).exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(map(str, existing))} already exist{'s' if len(existing) == 1 else ''}")
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    return [target / name for name in files]
