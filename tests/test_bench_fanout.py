"""bench/fanout.py: its exactly-once check catches loss and duplicates, and a small run passes it end to end."""

import importlib.util
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


def test_a_small_fan_out_delivers_each_alert_once_per_channel(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--alerts", "12", "--per-notification", "5", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "each of the 8 fakes accepted each of the 12 alerts exactly once" in done.stdout
    assert "96 rows (96 channel/alert pairs), 0 not sent, 0 retried, 0 in digests" in done.stdout
