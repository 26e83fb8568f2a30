"""How long proving a catalog takes: ``amcompanion compile`` and ``amcompanion validate``, against
``promtool check rules`` on the same rules, with the slowest generated test group and the series our rules add.

For each catalog (the bundled ``rulesets/`` unless told otherwise, and every ``--import`` directory of
Prometheus rule files, imported first), best of ``--repeat``:

* ``amcompanion compile CAT -o OUT`` and ``amcompanion validate OUT`` (every promtool and amtool check)
* ``promtool check rules OUT/prometheus/rules/*.yml``, the baseline: checking the rules without proving them

and then each generated test group (one entry of a test file's ``tests:``) on its own, to find the slowest.
It prints the times, validate's ratio to the baseline, the slowest group, and the recording rules the compile
added for alerts (series of ours: each records one series per series of its expression) per alert.

Usage (from the repository root)::

    python bench/validate.py                                   # the bundled catalog
    python bench/validate.py --import tests/data/rules         # and the real rule sets in the repository
    python bench/validate.py --import <awesome-prometheus-alerts>/dist/rules --no-bundled
    python bench/validate.py --json

Targets (issue 17): validate ≤ 2 s on the bundled catalog, ≤ 10 s on all of awesome-prometheus-alerts
imported, no test group over 1 s. Exit status: 0 when it ran; 1 when a tool is missing or a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
AMCOMPANION = [sys.executable, "-m", "amcompanion"]

from bench.common import promtool as find_promtool  # noqa: E402


def timed(command: list[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def best(command: list[str], repeat: int, cwd: Path | None = None) -> float:
    return min(timed(command, cwd) for _ in range(repeat))


def slowest_group(out: Path, promtool: str) -> tuple[float, str]:
    """Each test group of every generated test file run alone: the slowest, and its name."""
    worst = (0.0, "")
    scratch = out / "prometheus" / "tests" / "_bench_one.test.yml"
    for test_file in sorted((out / "prometheus" / "tests").glob("*.test.yml")):
        document = yaml.safe_load(test_file.read_text())
        for group in document.get("tests") or []:
            scratch.write_text(yaml.safe_dump({**document, "tests": [group]}, sort_keys=False))
            elapsed = timed([promtool, "test", "rules", scratch.name], cwd=scratch.parent)
            if elapsed > worst[0]:
                worst = (elapsed, f"{test_file.name}: {group['name']}")
    scratch.unlink(missing_ok=True)
    return worst


def added_series(out: Path, alerts: int) -> dict:
    """Recording rules the compile wrote for alerts (not the catalog's own `record`s), per alert."""
    ours = 0
    for rule_file in (out / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(rule_file.read_text())["groups"]:
            ours += sum(1 for r in group["rules"] if str(r.get("record", "")).startswith("amcompanion:"))
    return {"recording_rules": ours, "alerts": alerts, "per_alert": round(ours / alerts, 3) if alerts else 0.0}


def measure(name: str, catalog: Path, work: Path, repeat: int, promtool: str) -> dict:
    out = work / f"{name.replace('/', '-')}-generated"
    compile_s = best([*AMCOMPANION, "compile", str(catalog), "-o", str(out), "-q"], repeat)
    validate_s = best([*AMCOMPANION, "validate", str(out)], repeat)
    rule_files = sorted(str(p) for p in (out / "prometheus" / "rules").glob("*.yml"))
    check_s = best([promtool, "check", "rules", *rule_files], repeat)
    worst, worst_name = slowest_group(out, promtool)
    alerts = sum(
        len({r["alert"] for g in yaml.safe_load(Path(p).read_text())["groups"] for r in g["rules"] if "alert" in r})
        for p in rule_files
    )
    return {
        "catalog": name,
        "rule_files": len(rule_files),
        "compile_s": round(compile_s, 2),
        "validate_s": round(validate_s, 2),
        "promtool_check_rules_s": round(check_s, 3),
        "validate_ratio": round(validate_s / check_s, 1) if check_s else None,
        "slowest_group_s": round(worst, 2),
        "slowest_group": worst_name,
        "series_of_ours": added_series(out, alerts),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--import", dest="imports", action="append", type=Path, default=[], metavar="DIR")
    parser.add_argument("--no-bundled", action="store_true", help="leave out the bundled catalog")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs (default 1)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args()
    promtool = find_promtool()
    if promtool is None:
        return 1
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_bundled:
            results.append(measure("rulesets", ROOT / "rulesets", work, args.repeat, promtool))
        for source in args.imports:
            label = f"{source.parent.name}/{source.name}"  # tests/data/rules → data/rules, <awesome>/dist/rules
            catalog = work / f"{label.replace('/', '-')}-catalog"
            timed([*AMCOMPANION, "import", str(source), "-o", str(catalog / "imported")])
            results.append(measure(label, catalog, work, args.repeat, promtool))
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2))
        return 0
    print(f"{os.cpu_count()} CPUs; best of {args.repeat}")
    for r in results:
        ours = r["series_of_ours"]
        print(
            f"{r['catalog']}: compile {r['compile_s']:.2f} s, validate {r['validate_s']:.2f} s "
            f"({r['validate_ratio']}× promtool check rules, {r['promtool_check_rules_s']:.3f} s, "
            f"{r['rule_files']} rule files)\n"
            f"  slowest test group {r['slowest_group_s']:.2f} s: {r['slowest_group']}\n"
            f"  recording rules of ours: {ours['recording_rules']} for {ours['alerts']} alerts "
            f"({ours['per_alert']} per alert)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
