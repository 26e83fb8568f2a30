"""bench/console.py: a small run goes end to end (receiver, console clients' process, both latency runs, the
alternating throughput rounds) and prints every figure, so the benchmark does not rot between the runs that
docs/benchmarks.md quotes."""

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "bench" / "console.py"
NUMBER = r"[\d.]+"


def test_a_small_run_prints_the_latencies_and_the_throughput_ratio(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--alerts", "20", "--clients", "3", "--seconds", "0.5", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for run in ("20 alerts at 200/s", "20 alerts in a burst"):
        assert re.search(rf"{run}: to every client p50 {NUMBER} ms, p99 {NUMBER} ms, max {NUMBER} ms", out), out
    assert len(re.findall(rf"per client: p50 {NUMBER} ms to {NUMBER} ms, p99 {NUMBER} ms to", out)) == 2, out
    assert len(re.findall(r"subscribers dropped: \d+", out)) == 2, out
    assert re.search(rf"no clients {NUMBER} alerts/s \| 3 clients {NUMBER} alerts/s \| ratio {NUMBER}", out), out
    assert re.search(rf"receiver CPU per alert: no clients {NUMBER} us, 3 clients {NUMBER} us", out), out
    assert "subscribers dropped as too slow: " in out
    assert re.search(r"receiver log: \d+ info", out), out
