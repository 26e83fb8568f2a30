"""Benchmark ``amcompanion import`` + ``amcompanion compile`` of a real-shaped rule set, against
``promtool check rules`` on the same rules.

The rule set is made of the real rules in ``tests/data/rules`` (awesome-prometheus-alerts' node-exporter file,
kube-prometheus's node-exporter PrometheusRule), copied with new alert, record and group names (and levels
nudged) until it holds ``--rules`` rules, spread over ``--files`` plain rule files. Then, best of ``--repeat``:

* ``amcompanion import SRC -o CAT/imported`` followed by ``amcompanion compile CAT -o OUT``
* ``promtool check rules SRC/*.yml``

and prints both times, their ratio (target ≤ 1.0: bringing a rule set in costs no more than checking it), the
rules of each kind the import wrote, and the CPU count and versions.

Usage (from the repository root)::

    python bench/import.py                       # 1,000 rules in 20 files, best of 3
    python bench/import.py --rules 5000 --files 50 --repeat 5
    python bench/import.py --keep bench/out-import   # keep the rule set, catalog and output

Exit status: 0 on success; 1 when promtool is missing or a command fails; 2 on usage errors.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED_RULES = ROOT / "tests" / "data" / "rules"  # the real rule sets the tests use


def real_groups() -> list[dict]:
    """The rule groups of the real rule files, PrometheusRule objects unwrapped."""
    groups = []
    for path in sorted(p for p in SHARED_RULES.rglob("*") if p.suffix in (".yml", ".yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict):
                groups += (document.get("spec") or document).get("groups") or []
    return groups


def rule_set(rules: int, files: int, seed: int) -> list[list[dict]]:
    """`files` lists of groups holding `rules` rules in all: the real groups, renamed copy by copy."""
    rng = random.Random(seed)
    source = real_groups()
    out: list[list[dict]] = [[] for _ in range(files)]
    written, copy = 0, 0
    while written < rules:
        copy += 1
        for group in source:
            if written >= rules:
                break
            taken = group["rules"][: rules - written]
            renamed = [_renamed(rule, copy, rng) for rule in taken]
            out[sum(map(len, out)) % files].append({"name": f"{group['name']}-{copy}", "rules": renamed})
            written += len(renamed)
    return out


def _renamed(rule: dict, copy: int, rng: random.Random) -> dict:
    rule = dict(rule)
    if "alert" in rule:
        rule["alert"] = f"{rule['alert']}{copy}"
        # levels nudged, so copies are not byte-identical (a cache would not help either tool)
        rule["expr"] = re.sub(
            r"(?<=[<>] )(\d+(?:\.\d+)?)\b", lambda m: f"{float(m.group(1)) * rng.uniform(0.9, 1.1):.3g}", rule["expr"]
        )
    else:
        rule["record"] = f"{rule['record']}:{copy}"
    return rule


def best_of(repeat: int, command: list[str], before: callable | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command[:3])} failed:\n{done.stderr[-2000:]}{done.stdout[-2000:]}")
        best = min(best, elapsed)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules", type=int, default=1000, help="rules in the rule set (default: 1000)")
    parser.add_argument("--files", type=int, default=20, help="rule files (default: 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command; the best counts (default: 3)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the level nudges (default: 1)")
    parser.add_argument("--keep", type=Path, help="work here and keep the files (default: a temporary directory)")
    args = parser.parse_args()
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool is not installed (scripts/setup.sh installs it)", file=sys.stderr)
        return 1
    work = args.keep or Path(tempfile.mkdtemp(prefix="amcompanion-bench-import-"))
    src, catalog, out = work / "rules", work / "catalog", work / "out"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for i, groups in enumerate(rule_set(args.rules, args.files, args.seed)):
        (src / f"rules-{i:03d}.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    files = sorted(str(p) for p in src.glob("*.yml"))
    amcompanion = [sys.executable, "-m", "amcompanion"]

    def fresh() -> None:
        shutil.rmtree(catalog, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)

    both = [
        "sh",
        "-c",
        f'"{amcompanion[0]}" -m amcompanion import "{src}" -o "{catalog}/imported" > /dev/null && '
        f'"{amcompanion[0]}" -m amcompanion compile "{catalog}" -o "{out}" --quiet',
    ]
    ours = best_of(args.repeat, both, fresh)
    theirs = best_of(args.repeat, [promtool, "check", "rules", *files])
    summary = subprocess.run(
        [*amcompanion, "import", str(src), "-o", str(work / "again"), "--json"], capture_output=True, text=True
    )
    totals = yaml.safe_load(summary.stdout)["totals"] if summary.stdout else {}
    version = subprocess.run([promtool, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"rule set: {args.rules} rules in {len(files)} files; imported as {totals}")
    print(f"amcompanion import + compile: {ours:.2f} s (best of {args.repeat})")
    print(f"promtool check rules:         {theirs:.2f} s (best of {args.repeat})")
    print(f"ratio: {ours / theirs:.2f} (target ≤ 1.0)")
    print(f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {version}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
