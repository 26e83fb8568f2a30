"""`amcompanion history serve`: Datasette on the history database, with the project's pages.

Datasette runs as a child process with a metadata file written for this database, and the pages' own plugin
(amcompanion.history.site: cells and titles in words, the alert and quality pages) registered; the receiver may keep
writing the database meanwhile (Datasette opens it read-only).
"""

import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from amcompanion.history.pages import PLUGIN, metadata
from amcompanion.history.schema import MIGRATIONS, NAMES, migrate

SETTINGS = {
    "sql_time_limit_ms": "5000",  # the pages' queries take well under 1 s at a million alerts; slow disks vary
    "max_returned_rows": "2000",
    "allow_download": "off",  # the history holds names, numbers and addresses: no one-click copy of the file
}


def datasette_command(db: Path, metadata_file: Path, host: str, port: int) -> list[str]:
    command = [sys.executable, "-m", "amcompanion.history.site", "serve", str(db), "--metadata", str(metadata_file)]
    command += ["--host", host, "--port", str(port)]
    for name, value in SETTINGS.items():
        command += ["--setting", name, value]
    return command


def bring_up_to_date(db: Path, say: Callable[[str], None]) -> None:
    """Apply the migrations the file lacks before Datasette opens it read-only: the pages read what they add (the
    counts of m0008_rollups, counted once from the rows there: about a minute at a million alerts). A receiver
    writing the file meanwhile waits for it. Where this process cannot write the file (mounted read-only beside the
    receiver, or the receiver migrating it at the same moment), the pages start anyway: the receiver applies the
    migrations when it starts, and the pages that read what they add answer once it has."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA busy_timeout = 60000")
        done = {migration.name for migration in MIGRATIONS.applied(Database(conn))}
        missing = [name for name in NAMES if name not in done]
        if missing:
            say(f"bringing {db} up to date first: {', '.join(missing)}")
            migrate(conn)
    except sqlite3.OperationalError as exc:
        say(f"could not ({exc}): the receiver does when it starts; until then some pages cannot answer")
    finally:
        conn.close()


def serve(db: Path, host: str, port: int, zone: str = "UTC", catalog_for_s: dict[str, float] | None = None) -> int:
    """Run Datasette until it exits or this process is told to stop, showing times in `zone`; return its exit code.
    `catalog_for_s`: the catalog's alerts (their `for`), for the quality page to tell which never fired."""
    with tempfile.TemporaryDirectory(prefix="amcompanion-history-") as work:
        metadata_file = Path(work) / "metadata.json"
        pages = metadata(db.stem, zone)
        if catalog_for_s is not None:
            pages["plugins"][PLUGIN]["catalog_for_s"] = catalog_for_s
        metadata_file.write_text(json.dumps(pages, indent=1))
        child = subprocess.Popen(datasette_command(db, metadata_file, host, port))

        def stop(signum: int, _frame: object) -> None:
            child.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        return child.wait()
