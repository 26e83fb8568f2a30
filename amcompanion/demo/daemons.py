"""What the demo runs on loopback: child processes (Debian's Prometheus and Alertmanager, the history's
Datasette) and aiohttp apps in this process."""

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from amcompanion.validate import find_tool


class DaemonError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reserve() -> socket.socket:
    """A listening socket on a free loopback port, for a server of this process: held from the moment the port is
    chosen (the compiled files name it) until the server takes it, so no other process can take the port between."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(128)
    return listening


@dataclass
class Daemon:
    name: str
    process: subprocess.Popen
    url: str
    log: Path
    ready_path: str = "/-/ready"

    async def ready(self, timeout: float = 60.0) -> None:
        """Wait until it answers its readiness URL; a DaemonError with its log's tail if it exits or is late."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.poll() is not None:
                    raise DaemonError(f"{self.name} exited with status {self.process.returncode}:\n{self.tail()}")
                try:
                    async with session.get(self.url + self.ready_path) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        raise DaemonError(f"{self.name} was not ready after {timeout:g} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


async def started(spawn: Callable[[int], Daemon], port: int, tries: int = 3) -> tuple[Daemon, int]:
    """A child daemon on `port`, ready, and the port it got. A port free when chosen may be taken by another process
    before the child binds it (tests run demos side by side): a child that finds it in use tries a fresh one."""
    for attempt in range(1, tries + 1):
        daemon = spawn(port)
        try:
            await daemon.ready()
            return daemon, port
        except BaseException as exc:  # Ctrl-C too: a child that is not ready is stopped here, not left behind
            daemon.stop()
            if attempt == tries or not (isinstance(exc, DaemonError) and "address already in use" in daemon.tail()):
                raise
        port = free_port()
    raise DaemonError(f"no free port after {tries} tries")  # not reached: the last try returns or raises


def _spawn(name: str, args: list[str], url: str, log: Path, ready_path: str = "/-/ready") -> Daemon:
    # A session of its own: Ctrl-C in the terminal reaches only the demo, which stops its children in order.
    with log.open("w") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return Daemon(name, process, url, log, ready_path)


def alertmanager(config: Path, workdir: Path, port: int) -> Daemon:
    """Alertmanager alone (no cluster) with `config`, its state and log in `workdir`."""
    url = f"http://127.0.0.1:{port}"
    args = [
        find_tool("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url={url}",
        "--cluster.listen-address=",
    ]
    return _spawn("Alertmanager", args, url, workdir / "alertmanager.log")


def prometheus_config(rule_files: list[Path], alertmanager_port: int, jobs: dict[str, dict]) -> str:
    """Scraping and evaluating every second; `jobs` maps a job name to its one static_config (`targets` and
    `labels`). Scraped labels win over the target's (honor_labels), so the exporter's series carry the job and
    instance the demo's alert selects. JSON is YAML."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
        "scrape_configs": [
            {"job_name": job, "honor_labels": True, "static_configs": [static]} for job, static in jobs.items()
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def prometheus(config: Path, workdir: Path, port: int) -> Daemon:
    url = f"http://127.0.0.1:{port}"
    args = [
        find_tool("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'prometheus'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url={url}",
    ]
    return _spawn("Prometheus", args, url, workdir / "prometheus.log")


def datasette(db: Path, workdir: Path, port: int) -> Daemon:
    """`amcompanion history serve` on the history database."""
    args = [sys.executable, "-m", "amcompanion", "history", "serve", "--db", str(db), "--port", str(port)]
    return _spawn("Datasette", args, f"http://127.0.0.1:{port}", workdir / "datasette.log", "/-/versions.json")


async def serve_app(app: web.Application, where: socket.socket) -> web.AppRunner:
    """`app` on the `reserve()`d socket, in this process, until the runner's cleanup()."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, where).start()
    return runner
