"""`amcompanion validate`: the real judges, promtool and amtool, run over generated/."""

import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml_rs

INSTALL_HINT = {
    "promtool": "Debian/Ubuntu: apt-get install --no-install-recommends prometheus",
    "amtool": "Debian/Ubuntu: apt-get install --no-install-recommends prometheus-alertmanager",
}


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


class ToolMissing(Exception):
    pass


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(f"{name} is not installed (not on PATH); {INSTALL_HINT[name]}")
    return path


def _run(args: list[str], cwd: Path) -> tuple[bool, str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    output = (proc.stdout + proc.stderr).replace("Warning: --config.file flag overrides the --alertmanager.url.\n", "")
    return proc.returncode == 0, output.strip()


def checks(out_dir: Path) -> list[tuple[str, Callable[[], CheckResult]]]:
    """Every check to run, as (title, thunk); tools are looked up first so a missing one is reported once."""
    promtool, amtool = _tool("promtool"), _tool("amtool")
    rule_files = sorted(str(p.relative_to(out_dir)) for p in (out_dir / "prometheus/rules").glob("*.yml"))
    test_files = sorted(str(p.relative_to(out_dir)) for p in (out_dir / "prometheus/tests").glob("*.test.yml"))
    config = "alertmanager/alertmanager.yml"
    todo: list[tuple[str, Callable[[], CheckResult]]] = []

    def command(title: str, args: list[str]) -> Callable[[], CheckResult]:
        def run() -> CheckResult:
            ok, output = _run(args, out_dir)
            return CheckResult(title, ok, "" if ok else output)

        return run

    if rule_files:
        todo.append(
            ("promtool check rules", command("promtool check rules", [promtool, "check", "rules", *rule_files]))
        )
    for test in test_files:
        todo.append(
            (f"promtool test rules {test}", command(f"promtool test rules {test}", [promtool, "test", "rules", test]))
        )
    todo.append(("amtool check-config", command("amtool check-config", [amtool, "check-config", config])))
    routes = out_dir / "alertmanager/routes.test.yml"
    if routes.exists():
        cases = yaml_rs.loads(routes.read_text(encoding="utf-8"))["tests"]
        routed_labels = _routing_labels(out_dir / config)
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
            args = [
                amtool,
                "config",
                "routes",
                "test",
                f"--config.file={config}",
                f"--verify.receivers={','.join(case['receivers'])}",
                *(f"{k}={v}" for k, v in case["labels"].items()),
            ]
            todo.append(
                (f"route: {case['name']}", command(f"route test {case['name']} → {','.join(case['receivers'])}", args))
            )
    return todo


def _routing_labels(config: Path) -> set[str]:
    data = yaml_rs.loads(config.read_text(encoding="utf-8"))
    names: set[str] = set()

    def walk(node: dict) -> None:
        for text in node.get("matchers", []):
            names.add(text.split("=", 1)[0].rstrip("!~"))
        for child in node.get("routes", []):
            walk(child)

    walk(data["route"])
    return names


def run_checks(out_dir: Path, progress: Callable[[CheckResult], None], workers: int = 4) -> list[CheckResult]:
    todo = checks(out_dir)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(thunk) for _, thunk in todo]
        results = []
        for future in futures:
            result = future.result()
            progress(result)
            results.append(result)
    return results
