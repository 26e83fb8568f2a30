"""Mutation score of the generated tests: how many edits of an alert's rules its own tests catch.

For every alert of a catalog, the script makes mutants of it as a person editing the rule file by mistake
would: its PromQL (a metric name, a label matcher's value, a comparison, an aggregation's labels, a range, a
function) and, as a baseline, its levels and its `for`. Each mutant's rules are compiled and run by
``promtool test rules`` against the tests generated from the *original* catalog; a mutant is killed when
the tests fail. It prints, per mutation kind and in all, mutants made and killed, and the surviving query
mutants by alert.

Usage (from the repository root)::

    python bench/mutation.py                         # the bundled catalog, rulesets/
    python bench/mutation.py tests/catalogs/kinds    # another catalog
    python bench/mutation.py --import tests/data/rules   # real rule files, imported first
    python bench/mutation.py --json                  # the figures for scripts

Exit status: 0 when it ran (whatever the score); 1 when promtool is missing or the catalog does not compile.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import promql_parser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amcompanion.catalog import load_catalog, promql  # noqa: E402
from amcompanion.catalog.model import Alert, Catalog, Level  # noqa: E402
from amcompanion.compiler.build import compile_catalog  # noqa: E402
from amcompanion.compiler.unittests import neighbours  # noqa: E402
from amcompanion.emit.files import render  # noqa: E402
from bench.common import promtool as find_promtool  # noqa: E402

QUERY_KINDS = ("metric", "matcher", "comparison", "aggregation", "range", "function")
FUNCTION_SWAPS = {"rate": "irate", "irate": "rate", "sum": "max", "avg": "max", "max": "min", "min": "max"}
COMPARISON_SWAPS = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "!=", "!=": "=="}


@dataclass(frozen=True)
class Mutant:
    alert: str
    group: str
    kind: str  # one of QUERY_KINDS, or "level" / "for"
    change: str  # what was edited, for the report
    catalog: Catalog


def first_selector(expr: str) -> promql_parser.VectorSelector | None:
    found: list = []
    promql_parser.walk(
        promql.parse(expr), lambda n: found.append(n) if isinstance(n, promql_parser.VectorSelector) else None
    )
    return next((s for s in found if s.name), None)


def query_mutations(expr: str) -> Iterator[tuple[str, str, str]]:
    """(kind, change, mutated expression) for one PromQL text; each mutant parses and differs."""
    selector = first_selector(expr)
    if selector is not None:
        name = selector.name
        yield (
            "metric",
            f"{name} → {name}_mutant",
            re.sub(rf"(?<![\w:]){re.escape(name)}(?![\w:])", f"{name}_mutant", expr, count=1),
        )
    matcher = re.search(r'(\w+)\s*(=|!=|=~|!~)\s*"([^"]*)"', expr)
    if matcher:
        label, op, value = matcher.groups()
        mutated = f'{label}{op}"{value}_mutant"' if value else f'{label}{op}"mutant"'
        yield "matcher", f"{matcher.group()} → {mutated}", expr[: matcher.start()] + mutated + expr[matcher.end() :]
    comparison = re.search(r"(?<![=!<>])(>=|<=|==|!=|>|<)(?![=~])", expr)
    if comparison and "{" not in expr[max(0, comparison.start() - 1) : comparison.start()]:
        op = comparison.group()
        yield (
            "comparison",
            f"{op} → {COMPARISON_SWAPS[op]}",
            expr[: comparison.start()] + COMPARISON_SWAPS[op] + expr[comparison.end() :],
        )
    by = re.search(r"\b(by|without)\s*\(([^)]*)\)", expr)
    if by:
        labels = [label.strip() for label in by.group(2).split(",") if label.strip()]
        changed = ", ".join(labels[1:]) if labels else "mutant"
        yield (
            "aggregation",
            f"{by.group()} → {by.group(1)} ({changed})",
            expr[: by.start()] + f"{by.group(1)} ({changed})" + expr[by.end() :],
        )
    window = re.search(r"\[(\d+)([smhdwy])(?=[\]:])", expr)
    if window:
        doubled = f"[{int(window.group(1)) * 2}{window.group(2)}"
        yield "range", f"{window.group()}] → {doubled}]", expr[: window.start()] + doubled + expr[window.end() :]
    function = re.search(rf"\b({'|'.join(FUNCTION_SWAPS)})\s*\(", expr)
    if function:
        swapped = FUNCTION_SWAPS[function.group(1)]
        yield (
            "function",
            f"{function.group(1)} → {swapped}",
            expr[: function.start()] + swapped + expr[function.start() + len(function.group(1)) :],
        )


def mutants(catalog: Catalog) -> Iterator[Mutant]:
    for g, group in enumerate(catalog.groups):
        for a, alert in enumerate(group.alerts):
            if alert.is_record:
                continue

            def with_alert(change: Callable[[Alert], Alert], g: int = g, a: int = a) -> Catalog:
                out = copy.copy(catalog)
                out.groups = list(catalog.groups)
                out.groups[g] = copy.copy(catalog.groups[g])
                out.groups[g].alerts = list(catalog.groups[g].alerts)
                out.groups[g].alerts[a] = change(copy.copy(catalog.groups[g].alerts[a]))
                return out

            for field in ("expr", "errors", "total"):
                text = getattr(alert, field)
                if not text:
                    continue
                for kind, change, mutated in query_mutations(text):
                    if mutated != text and promql.syntax_error(mutated) is None:
                        yield Mutant(
                            alert.name,
                            group.file_name or group.name,
                            kind,
                            f"{field}: {change}",
                            with_alert(lambda x, f=field, m=mutated: replace(x, **{f: m})),
                        )
            for i, level in enumerate(alert.levels):
                if level.value is None:
                    continue
                edited = neighbours(level.value)[1]
                levels = [*alert.levels[:i], Level(level.severity, edited), *alert.levels[i + 1 :]]
                yield Mutant(
                    alert.name,
                    group.file_name or group.name,
                    "level",
                    f"{level.severity}: {level.value:g} → {edited:g}",
                    with_alert(lambda x, ls=levels: replace(x, levels=ls)),
                )
            if alert.for_ms:
                yield Mutant(
                    alert.name,
                    group.file_name or group.name,
                    "for",
                    f"for halved ({alert.for_ms // 1000}s)",
                    with_alert(lambda x: replace(x, for_ms=x.for_ms // 2)),
                )


def killed(mutant: Mutant, tests: dict[str, str], work: Path, promtool: str) -> bool | None:
    """Whether the original tests fail on the mutant's rules; None when the mutant does not compile."""
    try:
        files = render(compile_catalog(mutant.catalog).documents)
    except Exception:  # a mutant the compiler refuses is not a mutant the tests must kill
        return None
    rules = f"prometheus/rules/{mutant.group}.yml"
    case = Path(tempfile.mkdtemp(dir=work))
    (case / "prometheus" / "rules").mkdir(parents=True)
    (case / "prometheus" / "tests").mkdir(parents=True)
    (case / rules).write_text(files[rules])
    own = re.compile(rf"prometheus/tests/{re.escape(mutant.group)}(\.long\d*)?\.test\.yml")  # and longer horizons
    group_tests = sorted(path for path in tests if own.fullmatch(path))
    for test in group_tests:
        (case / test).write_text(tests[test])
    done = subprocess.run(
        [promtool, "test", "rules", *group_tests], cwd=case, capture_output=True, text=True, timeout=600
    )
    shutil.rmtree(case, ignore_errors=True)
    return done.returncode != 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "catalog", nargs="?", type=Path, default=ROOT / "rulesets", help="the catalog (default: rulesets)"
    )
    parser.add_argument(
        "--import", dest="sources", type=Path, nargs="+", help="rule files to import into a catalog first"
    )
    parser.add_argument("-j", "--jobs", type=int, default=2, help="promtool runs at once (default: 2)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args()
    promtool = find_promtool()
    if promtool is None:
        return 1
    work = Path(tempfile.mkdtemp(prefix="amcompanion-mutation-"))
    catalog_dir = args.catalog
    if args.sources:
        from amcompanion.importers.run import import_sources

        catalog_dir = work / "catalog"
        import_sources(args.sources, catalog_dir / "imported")
    catalog = load_catalog(catalog_dir)
    tests = render(compile_catalog(catalog).documents)
    made = list(mutants(catalog))
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(lambda m: killed(m, tests, work, promtool), made))
    shutil.rmtree(work, ignore_errors=True)
    counted = [(m, k) for m, k in zip(made, outcomes, strict=True) if k is not None]
    by_kind = {kind: Counter() for kind in (*QUERY_KINDS, "level", "for")}
    for mutant, kill in counted:
        by_kind[mutant.kind]["made"] += 1
        by_kind[mutant.kind]["killed"] += kill
    query = [(m, k) for m, k in counted if m.kind in QUERY_KINDS]
    figures = {
        "catalog": str(catalog_dir if not args.sources else " ".join(map(str, args.sources))),
        "alerts": len(catalog.alerts()),
        "kinds": {kind: dict(c) for kind, c in by_kind.items() if c},
        "query": {"made": len(query), "killed": sum(k for _, k in query)},
        "not_compiled": outcomes.count(None),
        "survivors": [f"{m.alert}: {m.change}" for m, k in counted if not k],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"catalog: {figures['catalog']} ({figures['alerts']} alerts)")
    for kind, c in figures["kinds"].items():
        share = 100 * c.get("killed", 0) / c["made"]
        print(f"  {kind:<12} {c.get('killed', 0):>4} of {c['made']:>4} killed ({share:.0f}%)")
    q = figures["query"]
    score = 100 * q["killed"] / q["made"] if q["made"] else 0.0
    print(f"query mutants: {q['killed']} of {q['made']} killed ({score:.0f}%)")
    if figures["not_compiled"]:
        print(f"({figures['not_compiled']} mutants the compiler refused are not counted)")
    for line in figures["survivors"][:20]:
        print(f"  survived: {line}")
    if len(figures["survivors"]) > 20:
        print(f"  ... and {len(figures['survivors']) - 20} more (--json lists them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
