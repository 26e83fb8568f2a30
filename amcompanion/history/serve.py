"""`amcompanion history serve`: Datasette on the history database, with the project's pages.

Datasette runs as a child process with a metadata file written for this database, and the pages' own plugin
(amcompanion.history.site: cells and titles in words, the alert and quality pages) registered; the receiver may keep
writing the database meanwhile (Datasette opens it read-only).
"""

import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from amcompanion.history.pages import PLUGIN, metadata

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
