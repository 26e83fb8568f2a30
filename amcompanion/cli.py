"""The `amcompanion` command line: a thin layer over the catalog, compiler and emitter."""

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from amcompanion import __version__

COMPILE_EXAMPLES = """\
examples:
  amcompanion compile                       # rulesets/ → generated/
  amcompanion compile teams/payments -o out # another catalog, another output directory
  amcompanion compile --check               # CI/GitOps gate: exit 1 with a diff when generated/ is stale

exit codes: 0 ok, 1 catalog errors or stale output, 2 usage errors
"""

VALIDATE_EXAMPLES = """\
examples:
  amcompanion validate                      # check generated/ with promtool and amtool
  amcompanion compile && amcompanion validate

It runs: promtool check rules (every rule file), promtool test rules (every
generated unit test), amtool check-config, and amtool config routes test for
every alert and severity in alertmanager/routes.test.yml.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amcompanion",
        description="Describe alerts once in a catalog; get Prometheus rules, Alertmanager config and tests.",
        epilog="Run `amcompanion COMMAND --help` for examples.",
    )
    parser.add_argument("--version", action="version", version=f"amcompanion {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "compile",
        help="compile a catalog (rulesets/) into generated/",
        description="Compile the alert catalog into Prometheus rules, promtool tests, an "
        "Alertmanager config with route tests, PrometheusRule objects and the receiver config.",
        epilog=COMPILE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("rulesets", nargs="?", default="rulesets", type=Path, help="catalog directory (default: rulesets)")
    p.add_argument("-o", "--out", default="generated", type=Path, help="output directory (default: generated)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 with a unified diff if OUT is stale")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes compiling groups at once (default: the number of CPUs)",
    )

    v = sub.add_parser(
        "validate",
        help="run promtool and amtool over generated/",
        description="Validate compiled output with the real tools.",
        epilog=VALIDATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("out", nargs="?", default="generated", type=Path, help="output directory (default: generated)")
    v.add_argument("-j", "--jobs", type=int, default=4, help="checks run at once (default: 4)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "compile":
        return compile_command(args)
    return validate_command(args)


def run() -> NoReturn:
    """The console script. It exits without tearing the interpreter down: after a large compile, freeing
    the heap object by object takes longer than the OS takes to drop it (mypy exits the same way)."""
    try:
        code = main()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away (`| head`): as the Python docs advise, exit 1 quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    os._exit(code)


def compile_command(args: argparse.Namespace) -> int:
    # A compile builds a large, acyclic heap: the cycle collector would only rescan it (a fifth of the
    # run), and in forked workers its bookkeeping writes would copy shared pages.
    gc.disable()
    try:
        return _compile(args)
    finally:
        gc.enable()


def _compile(args: argparse.Namespace) -> int:
    from amcompanion.catalog import load_catalog
    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.emit.files import render_catalog, stale_diff, write_catalog

    started = time.perf_counter()
    try:
        catalog = load_catalog(args.rulesets)
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(f"error: {diag}" if not diag.line else str(diag), file=sys.stderr)
        count = len(exc.diagnostics)
        print(f"{count} error{'s' if count != 1 else ''}; nothing written", file=sys.stderr)
        return 1
    jobs = max(1, args.jobs)
    if args.check:
        files, output = render_catalog(catalog, jobs)
    else:
        try:
            written, output = write_catalog(catalog, args.out, jobs)
        except FileExistsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if output.unrouted and not args.quiet:
        print(
            f"warning: {len(output.unrouted)} alert(s) reach no escalation policy, only the empty receiver "
            f'"unrouted" (set defaults.escalation, a group escalation or a route): {", ".join(output.unrouted)}',
            file=sys.stderr,
        )
    if args.check:
        diff = stale_diff(args.out, files, args.out.name)
        if diff:
            sys.stdout.write(diff)
            print(f"{args.out}/ is stale: run `amcompanion compile` and commit the result", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"{args.out}/ is up to date ({len(files)} files)")
        return 0
    if not args.quiet:
        elapsed = time.perf_counter() - started
        print(
            f"compiled {output.groups} groups, {output.alerts} alerts, {output.rules} rules, {output.slos} SLOs, "
            f"{output.routes} route tests → {len(written)} files in {args.out}/ in {elapsed:.2f}s"
        )
    return 0


def validate_command(args: argparse.Namespace) -> int:
    from amcompanion.validate import ToolMissing, run_checks

    if not (args.out / "prometheus").is_dir():
        print(f"error: {args.out}/ holds no compiled output; run `amcompanion compile` first", file=sys.stderr)
        return 1
    started = time.perf_counter()
    failures = []

    def progress(result) -> None:  # type: ignore[no-untyped-def]
        if not result.ok:
            failures.append(result)
            print(f"FAIL {result.name}\n{_indent(result.detail)}", file=sys.stderr)

    try:
        results = run_checks(args.out, progress, workers=max(1, args.jobs))
    except ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(
        f"{len(results) - len(failures)} passed, {len(failures)} failed "
        f"(promtool and amtool checks of {args.out}/ in {elapsed:.1f}s)"
    )
    return 1 if failures else 0


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
