"""A real PostgreSQL server for the tests (Debian's `postgresql` package, which scripts/setup.sh installs): `initdb`
on a temporary directory and `pg_ctl` on a free loopback port, started and stopped by the tests, never a mock.

`initdb` refuses to run as root: as root the server's directory belongs to the `postgres` user the package
creates, and its programs run as that user; the directory is one of its own under the system's temporary
directory (pytest's are private to the user running the tests), removed when the server is.
Outside CI a missing PostgreSQL skips the tests that need one; with CI=true it fails them.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

INSTALL = "apt-get install postgresql; scripts/setup.sh does it"
USER = "amc"  # the database superuser initdb makes (trust authentication: loopback only, a throwaway server)


def bindir() -> Path | None:
    """Where Debian keeps the server's programs (not on PATH), the newest version first; else what PATH has."""
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(initdb).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def require_postgres() -> Path:
    found = bindir()
    if found is None or not (found / "pg_ctl").exists():
        message = f"PostgreSQL is not installed ({INSTALL})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must have it")
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One server of its own on 127.0.0.1: `url` to connect to, `start`, `stop` (as a crash would: `immediate`) and
    `restart` for the fault tests."""

    def __init__(self, bin_dir: Path, durable: bool = False):
        """`durable`: every commit waits for its fsync (a benchmark's server, compared with SQLite's
        synchronous=FULL); the tests' servers skip it, as nothing of theirs must survive a power cut."""
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="amcompanion-postgres-"))
        self.bin = bin_dir
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8")

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_postgres, str(self.bin / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        if result.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"{program} exited {result.returncode}:\n{result.stdout}{result.stderr}{log}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1" + (
            "" if self.durable else " -c fsync=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "-t", "60", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        """Stop the server as a crash would (if it runs) and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def psql(self, sql: str) -> str:
        """`sql` through Debian's psql client: the rows as psql prints them unaligned, for checks from the outside."""
        result = subprocess.run(
            ["psql", self.url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql: {result.stderr}")
        return result.stdout.strip()


def fresh_database(server: "PostgresServer", name: str) -> str:
    """A new, empty database on `server` (one per test: tests never share rows); its URL."""
    server.psql(f'DROP DATABASE IF EXISTS "{name}"')
    server.psql(f'CREATE DATABASE "{name}"')
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres():  # type: ignore[no-untyped-def]
    """A PostgreSQL server shared by the session's tests (each makes a database of its own)."""
    server = PostgresServer(require_postgres())
    try:
        server.start()
        yield server
    finally:
        server.remove()
