"""The package list in pyproject.toml names every package directory (it is listed, not found)."""

import tomllib

from tests.conftest import ROOT


def test_every_package_directory_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "amcompanion").rglob("__init__.py")}
    assert on_disk <= listed
    assert "amcompanion.templates" in listed and (ROOT / "amcompanion" / "templates" / "default.j2").is_file()
