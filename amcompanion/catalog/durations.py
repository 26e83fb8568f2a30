"""Prometheus durations: parsed to milliseconds, printed the way Prometheus prints them."""

import functools
import re

_UNITS_MS = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}
PROMETHEUS_DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")


@functools.lru_cache(maxsize=4096)
def parse_duration(text: str) -> int | None:
    """Milliseconds of a Prometheus duration such as `1h30m`, or None when it is not one."""
    match = PROMETHEUS_DURATION.match(text)
    if not text or not match:
        return None
    groups = match.groups()
    total = 0
    for index, unit in enumerate(("y", "w", "d", "h", "m", "s", "ms")):
        amount = groups[index * 2 + 1]
        if amount:
            total += int(amount) * _UNITS_MS[unit]
    return total


@functools.lru_cache(maxsize=4096)
def format_duration(ms: int) -> str:
    """As prometheus/common's model.Duration.String: years and weeks only when exact (90d, not 12w6d)."""
    if ms == 0:
        return "0s"
    out = []
    for unit, exact in (
        ("y", True),
        ("w", True),
        ("d", False),
        ("h", False),
        ("m", False),
        ("s", False),
        ("ms", False),
    ):
        mult = _UNITS_MS[unit]
        if exact and ms % mult:
            continue
        if ms >= mult:
            out.append(f"{ms // mult}{unit}")
            ms %= mult
    return "".join(out)
