"""`amcompanion validate`: the real judges, promtool and amtool, run over generated/."""

import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml_rs

from amcompanion.compiler.alertmanager import routing_labels

INSTALL_HINT = {
    "promtool": "Debian/Ubuntu: apt-get install --no-install-recommends prometheus",
    "amtool": "Debian/Ubuntu: apt-get install --no-install-recommends prometheus-alertmanager",
    "prometheus": "Debian/Ubuntu: apt-get install --no-install-recommends prometheus",
    "prometheus-alertmanager": "Debian/Ubuntu: apt-get install --no-install-recommends prometheus-alertmanager",
}


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


class ToolMissing(Exception):
    pass


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(f"{name} is not installed (not on PATH); {INSTALL_HINT[name]} (scripts/setup.sh does it)")
    return path


def _run(args: list[str], cwd: Path) -> tuple[bool, str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    output = (proc.stdout + proc.stderr).replace("Warning: --config.file flag overrides the --alertmanager.url.\n", "")
    return proc.returncode == 0, output.strip()


Check = Callable[[], list[CheckResult]]
CONFIG = "alertmanager/alertmanager.yml"
FILES_PER_RUN = 8  # test files one promtool run takes: each run costs ~60 ms of CPU to start


def test_batches(test_files: list[str], sizes: dict[str, int], workers: int) -> list[list[str]]:
    """Test files split into runs of promtool, at least one per worker and at most FILES_PER_RUN files each,
    the largest files first and each to the lightest run so far (sizes stand in for the work)."""
    count = max(min(len(test_files), workers), -(-len(test_files) // FILES_PER_RUN))
    batches: list[list[str]] = [[] for _ in range(count)]
    loads = [0] * count
    for name in sorted(test_files, key=lambda n: (-sizes[n], n)):
        lightest = min(range(count), key=lambda i: (len(batches[i]) >= FILES_PER_RUN, loads[i]))
        batches[lightest].append(name)
        loads[lightest] += sizes[name]
    return [batch for batch in batches if batch]


def unit_test_results(batch: list[str], ok: bool, output: str) -> list[CheckResult]:
    """One result per file of a `promtool test rules A B ...` run, from its "Unit Testing:  FILE" sections (its
    standard output and error read as one stream, in order); a run that reports no section fails every file."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("Unit Testing:"):
            current = sections.setdefault(line.split(":", 1)[1].strip(), [])
        elif current is not None:
            current.append(line)
    results = []
    for name in batch:
        lines = sections.get(name)
        passed = lines is not None and any(line.strip() == "SUCCESS" for line in lines)
        detail = "\n".join(lines).strip() if lines is not None else output
        results.append(CheckResult(f"promtool test rules {name}", passed, "" if passed else detail))
    if not ok and all(r.ok for r in results):  # promtool failed yet every section passed: say what it said
        results = [CheckResult(r.name, False, output) for r in results]
    return results


def checks(out_dir: Path, workers: int = 4) -> tuple[list[Check], list[Check]]:
    """The file checks and the route tests (which need a valid config); tools are looked up first, so a
    missing one is reported once."""
    promtool, amtool = find_tool("promtool"), find_tool("amtool")
    rule_files = sorted(str(p.relative_to(out_dir)) for p in (out_dir / "prometheus/rules").glob("*.yml"))
    test_files = sorted(str(p.relative_to(out_dir)) for p in (out_dir / "prometheus/tests").glob("*.test.yml"))

    def command(title: str, args: list[str]) -> Check:
        def run() -> list[CheckResult]:
            ok, output = _run(args, out_dir)
            return [CheckResult(title, ok, "" if ok else output)]

        return run

    def unit_tests(batch: list[str]) -> Check:
        def run() -> list[CheckResult]:
            proc = subprocess.run(
                [promtool, "test", "rules", *batch],
                cwd=out_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=600,
                check=False,
            )
            return unit_test_results(batch, proc.returncode == 0, proc.stdout)

        return run

    files = [command("promtool check rules", [promtool, "check", "rules", *rule_files])] if rule_files else []
    sizes = {test: (out_dir / test).stat().st_size for test in test_files}
    files += [unit_tests(batch) for batch in test_batches(test_files, sizes, workers)]
    files.append(command("amtool check-config", [amtool, "check-config", CONFIG]))
    routes: list[Check] = []
    route_file = out_dir / "alertmanager/routes.test.yml"
    try:
        cases = yaml_rs.loads(route_file.read_text(encoding="utf-8"))["tests"] if route_file.exists() else []
        tree = yaml_rs.loads((out_dir / CONFIG).read_text(encoding="utf-8"))["route"] if cases else {}
    except (OSError, ValueError, KeyError, TypeError) as exc:  # amtool check-config says what is wrong with it
        cases, tree, why = [], {}, f"not run: {CONFIG} cannot be read: {exc}"
        routes.append(lambda: [CheckResult("route tests", False, why)])
    if cases:
        routed_labels = set(routing_labels(tree))
        seen: set[tuple] = set()
        for case in cases:
            # Alertmanager routes on the labels its matchers name: one amtool run per distinct projection.
            key = (
                tuple(sorted((k, v) for k, v in case["labels"].items() if k in routed_labels)),
                tuple(case["receivers"]),
            )
            if key in seen:
                continue
            seen.add(key)
            receivers = ",".join(case["receivers"])
            args = [
                amtool,
                "config",
                "routes",
                "test",
                f"--config.file={CONFIG}",
                f"--verify.receivers={receivers}",
                *(f"{k}={v}" for k, v in case["labels"].items()),
            ]
            routes.append(command(f"route test {case['name']} → {receivers}", args))
    return files, routes


def run_checks(out_dir: Path, progress: Callable[[CheckResult], None], workers: int = 4) -> list[CheckResult]:
    """Every check, `workers` at a time: amtool check-config first, so that the route tests (which need a valid
    config) run beside the unit tests instead of after them."""
    files, routes = checks(out_dir, workers)
    *others, config = files
    results: list[CheckResult] = []

    def report(found: list[CheckResult]) -> None:
        for result in found:
            progress(result)
            results.append(result)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        config_run = pool.submit(config)
        pending = [pool.submit(check) for check in others]
        config_results = config_run.result()
        config_ok = all(result.ok for result in config_results)
        if config_ok:
            pending += [pool.submit(check) for check in routes]
        for future in pending[: len(others)]:
            report(future.result())
        report(config_results)
        if routes and not config_ok:  # routes of an invalid config prove nothing
            report([CheckResult("route tests", False, f"not run: {CONFIG} fails amtool check-config")])
        for future in pending[len(others) :]:
            report(future.result())
    return results
