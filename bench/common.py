"""What the benchmark scripts share: free loopback ports, a process's CPU time, waiting for a server, promtool."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from amcompanion.demo.daemons import free_port

__all__ = ["cpu_seconds", "free_port", "promtool", "wait_ready"]


def promtool() -> str | None:
    """promtool's path; None, said on stderr, when it is not installed."""
    found = shutil.which("promtool")
    if found is None:
        print("promtool is not on PATH (scripts/setup.sh installs it)", file=sys.stderr)
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds the process has used, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 30.0) -> None:
    """Until `url` answers 2xx; exit the benchmark if the server dies or stays silent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server for {url} exited at start-up (code {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {seconds:g} s")
