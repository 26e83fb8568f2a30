"""`amcompanion serve`: the receiver as a process, with signals (SIGHUP reloads, SIGTERM drains and exits)."""

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import ReceiverConfig, load_receiver_config, mask
from amcompanion.receiver.messages import TemplateProblem
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.wording import plural

log = logging.getLogger("amcompanion.serve")
SHUTDOWN_SECONDS = 15.0  # in-flight requests and deliveries get this long after SIGTERM


class StartupError(Exception):
    pass


def read_token(config: ReceiverConfig, allow_none: bool) -> str | None:
    """The token from receiver.bearer_token_file (what Alertmanager sends), else $AMCOMPANION_TOKEN."""
    if config.bearer_token_file:
        try:
            token = Path(config.bearer_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            if not os.environ.get("AMCOMPANION_TOKEN"):
                raise StartupError(
                    f"cannot read the token file {config.bearer_token_file} ({exc.strerror}) named by "
                    "receiver.bearer_token_file, and AMCOMPANION_TOKEN is not set"
                ) from None
        else:
            if token:
                return token
    token = os.environ.get("AMCOMPANION_TOKEN", "").strip()
    if token:
        return token
    if allow_none:
        log.warning("serving WITHOUT authentication (--insecure-no-auth): anyone who can reach it can post alerts")
        return None
    raise StartupError(
        "no token: set receiver.bearer_token_file in the catalog or AMCOMPANION_TOKEN in the environment "
        "(or pass --insecure-no-auth on a trusted network)"
    )


class _Masked(logging.Formatter):
    """Every known secret masked, whatever the line says."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = secrets


class _JsonLines(_Masked):
    """One JSON object per line: an event's facts as fields (narrate.py), for log pipelines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if hasattr(record, "event"):
            entry["event"] = record.event
            entry.update(record.fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return mask(json.dumps(entry, ensure_ascii=False, default=str), self.secrets)


class _TextLines(_Masked):
    """One readable line per event, for a person at a terminal; other records say their level and source."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%H:%M:%S")
        if hasattr(record, "event"):
            line = f"{stamp} {record.getMessage()}"
        else:
            line = (
                f"{stamp} {record.levelname.lower()} {record.name.removeprefix('amcompanion.')}: {record.getMessage()}"
            )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return mask(line, self.secrets)


def configure_logging(secrets: list[str], log_format: str = "auto") -> _Masked:
    """Text on a terminal (or when asked), JSON lines otherwise; the formatter, for its secrets to be updated."""
    text = log_format == "text" or (log_format == "auto" and sys.stderr.isatty())
    formatter = (_TextLines if text else _JsonLines)([s for s in secrets if s])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return formatter


async def serve(
    config_path: Path, settings: Settings, host: str, port: int, allow_no_auth: bool, log_format: str = "auto"
) -> None:
    config = load_receiver_config(config_path)
    settings.token = read_token(config, allow_no_auth)
    formatter = configure_logging([*config.secrets, settings.token or ""], log_format)
    try:
        receiver = Receiver(config, settings)
    except TemplateProblem as exc:
        raise StartupError(f"{config_path}: {exc}") from None
    runner = web.AppRunner(make_app(receiver), handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("listening on %s:%s with %s", host, port, plural(len(config.policies), "escalation policy"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def reload() -> None:
        try:
            fresh = load_receiver_config(config_path)
        except CatalogError as exc:
            log.error("reload refused, keeping the running config:\n%s", exc)
            return
        try:
            receiver.reload(fresh)
        except TemplateProblem as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return
        formatter.secrets = [s for s in [*fresh.secrets, settings.token or ""] if s]
        log.info("reloaded %s: %s", config_path, plural(len(fresh.policies), "escalation policy"))

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    log.info("stopping: finishing requests and deliveries in flight")
    await runner.cleanup()
    log.info("stopped")
