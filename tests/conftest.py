"""Shared fixtures. External tools may be missing on a developer's machine (the test skips), never in CI."""

import hashlib
import inspect
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


ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def history_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's receiver keeps its history, once on each engine: a SQLite file, or a database of its own on
    the session's PostgreSQL server."""
    if request.param == "sqlite":
        return tmp_path / "history.db"
    from tests.postgres import fresh_database

    server = request.getfixturevalue("postgres")
    return fresh_database(server, "t_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16])


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The channel tests that deliver through a receiver (channel_support.delivery) run on both engines too, as the
    receiver's own suites do: `history_db` joins their fixtures, and `delivery` keeps its history there."""
    module = metafunc.module.__name__.rpartition(".")[2]
    delivers = module.startswith("test_channel_") and "delivery(" in inspect.getsource(metafunc.function)
    if delivers and "history_db" not in metafunc.fixturenames:
        metafunc.fixturenames.append("history_db")
        metafunc.parametrize("history_db", ENGINES, indirect=True)


@pytest.fixture(autouse=True)
def _delivery_engine(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Tell channel_support.delivery the test's `history_db` (its tests run one at a time in a worker)."""
    if "history_db" not in request.fixturenames or not request.module.__name__.rpartition(".")[2].startswith(
        "test_channel_"
    ):
        yield
        return
    from tests import channel_support

    channel_support.engine_db = request.getfixturevalue("history_db")
    yield
    channel_support.engine_db = None
