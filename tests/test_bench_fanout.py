"""bench/fanout.py: its exactly-once check catches loss and duplicates, and a small run passes it end to end."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "bench" / "fanout.py"


def load_fanout():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("fanout_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_check_names_missing_repeated_and_merged_alerts() -> None:
    fanout = load_fanout()
    texts = {
        "sms": ["[CRITICAL] FanoutCheck on fanout-000001", "fanout-000002 fails its checks"],
        "mail": ["fanout-000001 fanout-000001", "fanout-000001"],
        "ops-slack": ["fanout-000001 and fanout-000002"],
    }
    assert fanout.exactly_once(texts, [1, 2]) == [
        "mail: 1 alerts missing, 1 repeated, 0 unknown",
        "ops-slack: a message names 2 alerts",
    ]


def _bench(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_small_fan_out_delivers_each_alert_once_per_channel(tmp_path: Path) -> None:
    out = _bench(tmp_path, "--part", "fanout", "--alerts", "12", "--per-notification", "5", "--rounds", "1")
    assert "each of the 8 fakes accepted each of the 12 alerts exactly once" in out
    assert "96 rows (96 channel/alert pairs), 0 not sent, 0 retried, 0 in digests" in out


def test_the_slow_and_recovery_parts_run_and_lose_nothing(tmp_path: Path) -> None:
    out = _bench(tmp_path, "--part", "slow", "--slow-alerts", "8", "--rounds", "1")
    assert re.search(r"round 1: 1 in flight per channel: +[\d.]+ messages/s", out), out
    assert re.search(r"median: concurrent \(8 in flight\) [\d.]+ messages/s \| serial [\d.]+ messages/s", out), out
    out = _bench(tmp_path, "--part", "recovery", "--outages", "3")
    assert re.search(r"outage of 3 s: first page delivered [\d.]+ s after the return", out), out
