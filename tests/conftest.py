"""Shared fixtures. External tools may be missing on a developer's machine (the test skips), never in CI."""

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.postgres import postgres  # noqa: F401 (a fixture: a real PostgreSQL server for the session)

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = Path(__file__).resolve().parent / "catalogs"
GOLDEN = Path(__file__).resolve().parent / "golden"


def require_tool(name: str, install: str = "apt-get install prometheus prometheus-alertmanager") -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed ({install}; scripts/setup.sh does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must have it")
        pytest.skip(message)
    return path


@pytest.fixture
def tools() -> None:
    require_tool("promtool")
    require_tool("amtool")


@pytest.fixture(params=["sqlite", "postgresql"])
def history_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's receiver keeps its history, once on each engine: a SQLite file, or a database of its own on
    the session's PostgreSQL server."""
    if request.param == "sqlite":
        return tmp_path / "history.db"
    from tests.postgres import fresh_database

    server = request.getfixturevalue("postgres")
    return fresh_database(server, "t_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16])
