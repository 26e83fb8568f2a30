"""Renders the small part of Go's text/template that alert annotations use, as Prometheus would.

Generated promtool tests must state each alert's annotations exactly as Prometheus renders them for
the test's input. Templates beyond this subset (if/range/query/...) raise Unsupported, and the test
generator then asserts the alert through its ALERTS series instead (labels, not annotations).
"""

import functools
import math
import re

from amcompanion.catalog.numbers import go_float

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\|)|([^\s|"]+)')


class Unsupported(Exception):
    pass


def render(template: str, labels: dict[str, str], value: float) -> str:
    if "{{" not in template:
        return template
    return "".join(part if type(part) is str else _run(part, labels, value) for part in _parse(template))


Command = list[tuple[str, object]]  # (kind, payload): value | label | external | func | literal


@functools.lru_cache(maxsize=4096)
def _parse(template: str) -> tuple[str | tuple[Command, ...], ...]:
    """Text and actions of a template, parsed once (the same summaries render for many tests)."""
    parts: list[str | tuple[Command, ...]] = []
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos : match.start()]
        parts.append(text.rstrip() if match.group(1) else text)
        body = match.group(2)
        if not (body.startswith("/*") and body.endswith("*/")):
            parts.append(_commands(body))
        pos = match.end()
        if match.group(3):
            while pos < len(template) and template[pos].isspace():
                pos += 1
    parts.append(template[pos:])
    return tuple(parts)


def _commands(body: str) -> tuple[Command, ...]:
    commands: list[Command] = [[]]
    for quoted, raw, pipe, word in _TOKEN.findall(body):
        if pipe:
            commands.append([])
        elif word:
            commands[-1].append(_operand(word))
        else:
            commands[-1].append(("literal", raw if raw else bytes(quoted, "utf-8").decode("unicode_escape")))
    if any(not command for command in commands):
        raise Unsupported(body)
    return tuple(commands)


def _operand(word: str) -> tuple[str, object]:
    if word in ("$value", ".Value"):
        return ("value", None)
    for prefix in ("$labels.", ".Labels."):
        if word.startswith(prefix):
            return ("label", word[len(prefix) :])
    if word.startswith("$externalLabels."):
        return ("literal", "")
    if word in FUNCS:
        return ("func", FUNCS[word])
    try:
        return ("literal", float(word) if "." in word or "e" in word else int(word))
    except ValueError:
        raise Unsupported(word) from None


def _run(commands: tuple[Command, ...], labels: dict[str, str], value: float) -> str:
    result: object = None
    for i, command in enumerate(commands):
        args = [
            value if kind == "value" else labels.get(payload, "") if kind == "label" else payload  # type: ignore[arg-type]
            for kind, payload in command
        ]
        if i:
            args.append(result)
        if command[0][0] == "func":
            result = args[0](*args[1:])  # type: ignore[operator]
        elif len(args) == 1:
            result = args[0]
        else:
            raise Unsupported("a command with arguments that is not a function")
    return _print(result)


def _print(value: object) -> str:
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def _g4(value: float) -> str:
    return f"{value:.4g}"  # Go's %.4g and Python's agree (trailing zeros dropped, 2-digit exponent)


def _float(value: object) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise Unsupported(value) from None
    return float(value)  # type: ignore[arg-type]


def humanize(v: object) -> str:
    x = _float(v)
    if x == 0 or math.isnan(x) or math.isinf(x):
        return _g4(x)
    prefix = ""
    if abs(x) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(x) < 1000:
                break
            prefix, x = p, x / 1000
        return _g4(x) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(x) >= 1:
            break
        prefix, x = p, x * 1000
    return _g4(x) + prefix


def humanize1024(v: object) -> str:
    x = _float(v)
    if abs(x) <= 1 or math.isnan(x) or math.isinf(x):
        return _g4(x)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(x) < 1024:
            break
        prefix, x = p, x / 1024
    return _g4(x) + prefix


def humanize_duration(v: object) -> str:
    x = _float(v)
    if math.isnan(x) or math.isinf(x):
        return _g4(x)
    if x == 0:
        return _g4(x) + "s"
    if abs(x) >= 1:
        sign = "-" if x < 0 else ""
        x = abs(x)
        whole = int(x)
        seconds, minutes, hours, days = whole % 60, whole // 60 % 60, whole // 3600 % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(x)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(x) >= 1:
            break
        prefix, x = p, x * 1000
    return f"{_g4(x)}{prefix}s"


_VERB = re.compile(r"%(-?\d*)(?:\.(\d+))?([svdfgeq%])")


def printf(fmt: object, *args: object) -> str:
    if not isinstance(fmt, str):
        raise Unsupported("printf")
    values = list(args)

    def one(match: re.Match) -> str:
        width, precision, verb = match.groups()
        if verb == "%":
            return "%"
        if not values:
            raise Unsupported("printf arguments")
        arg = values.pop(0)
        if verb in "sv":
            text = _print(arg)
            return f"{text:>{width}}" if width else text
        if verb == "q" and isinstance(arg, str):
            return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if verb == "d" and isinstance(arg, int) and not isinstance(arg, bool):
            return f"%{width}d" % arg
        if verb in "fge" and isinstance(arg, int | float) and not isinstance(arg, bool):
            spec = f"%{width}" + (f".{precision}" if precision is not None else "") + verb
            if verb == "g" and precision is None:
                return go_float(float(arg))
            return spec % float(arg)
        raise Unsupported(f"printf %{verb}")

    result = _VERB.sub(one, fmt)
    if values:
        raise Unsupported("printf extra arguments")
    return result


FUNCS = {
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizePercentage": lambda v: _g4(_float(v) * 100) + "%",
    "humanizeDuration": humanize_duration,
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "title": lambda s: re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), str(s)),
    "printf": printf,
}


def referenced_labels(*templates: str) -> set[str]:
    """Label names the templates read, so test input series can carry them."""
    names: set[str] = set()
    for template in templates:
        names.update(re.findall(r"(?:\$labels|\.Labels)\.([a-zA-Z_][a-zA-Z0-9_]*)", template))
    return names
