"""Renders the small part of Go's text/template that alert annotations use, as Prometheus would.

Generated promtool tests must state each alert's annotations exactly as Prometheus renders them for
the test's input. Templates beyond this subset (if/range/query/...) raise Unsupported, and the test
generator then asserts the alert through its ALERTS series instead (labels, not annotations).
"""

import functools
import math
import re
from collections.abc import Callable

from amcompanion.catalog.numbers import go_float

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\|)|([^\s|"]+)')


class Unsupported(Exception):
    pass


def render(template: str, labels: dict[str, str], value: float) -> str:
    if "{{" not in template:
        return template
    return "".join(part if type(part) is str else part(labels, value) for part in _parse(template))


Action = Callable[[dict[str, str], float], str]  # an action, run with ($labels, $value)


@functools.lru_cache(maxsize=4096)
def _parse(template: str) -> tuple[str | Action, ...]:
    """Text and actions of a template, built once (the same summaries render for many tests)."""
    parts: list[str | Action] = []
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos : match.start()]
        parts.append(text.rstrip() if match.group(1) else text)
        body = match.group(2)
        if not (body.startswith("/*") and body.endswith("*/")):
            parts.append(_action(_commands(body)))
        pos = match.end()
        if match.group(3):
            while pos < len(template) and template[pos].isspace():
                pos += 1
    parts.append(template[pos:])
    return tuple(parts)


Operand = Callable[[dict[str, str], float], object]


def _commands(body: str) -> list[list[Operand | Callable[..., object]]]:
    """The pipeline's commands; a command is a function and its operands, or a single operand."""
    commands: list[list] = [[]]
    for quoted, raw, pipe, word in _TOKEN.findall(body):
        if pipe:
            commands.append([])
        elif word:
            commands[-1].append(_operand(word))
        else:
            text = raw if raw else bytes(quoted, "utf-8").decode("unicode_escape")
            commands[-1].append(_constant(text))
    if any(not command for command in commands):
        raise Unsupported(body)
    return commands


def _constant(value: object) -> Operand:
    return lambda labels, v: value


def _operand(word: str) -> Operand | Callable[..., object]:
    """An operand as a function of ($labels, $value), or the template function `word` names."""
    if word in ("$value", ".Value"):
        return lambda labels, value: value
    for prefix in ("$labels.", ".Labels."):
        if word.startswith(prefix):
            name = word[len(prefix) :]
            return lambda labels, value: labels.get(name, "")
    if word.startswith("$externalLabels."):
        return _constant("")
    if word in FUNCS:
        return FUNCS[word]
    try:
        return _constant(float(word) if "." in word or "e" in word else int(word))
    except ValueError:
        raise Unsupported(word) from None


def _action(commands: list[list]) -> Action:
    steps: list[tuple[Callable[..., object] | None, list[Operand]]] = []
    for i, command in enumerate(commands):
        func = command[0] if command[0] in _FUNC_SET else None
        operands = command[1:] if func else command
        if any(op in _FUNC_SET for op in operands) or (len(operands) + (i > 0) != 1 and not func):
            raise Unsupported("a command with arguments that is not a function")
        if func and not operands and not i:
            raise Unsupported("a function without arguments")
        steps.append((func, operands))
    if len(steps) == 1 and steps[0][0] is None:  # {{ $labels.x }}, {{ $value }}
        (get,) = steps[0][1]
        return lambda labels, value: _print(get(labels, value))
    if len(steps) == 2 and steps[0][0] is None and not steps[1][1]:  # {{ $value | humanize }}
        (get,), func = steps[0][1], steps[1][0]
        return lambda labels, value: _print(func(get(labels, value)))  # type: ignore[misc]

    def run(labels: dict[str, str], value: float) -> str:
        result: object = None
        for i, (func, operands) in enumerate(steps):
            args = [get(labels, value) for get in operands]
            if i:
                args.append(result)
            try:
                result = func(*args) if func else args[0]
            except TypeError:  # the wrong number of arguments for the function
                raise Unsupported("function arguments") from None
        return _print(result)

    return run


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
            if not math.isfinite(arg):  # Go writes +Inf, -Inf and NaN whatever the verb
                text = go_float(float(arg))
                return f"{text:>{width}}" if width else text
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
_FUNC_SET = frozenset(FUNCS.values())


def referenced_labels(*templates: str) -> set[str]:
    """Label names the templates read, so test input series can carry them."""
    names: set[str] = set()
    for template in templates:
        if "{{" in template:
            names.update(_LABEL_REFERENCE.findall(template))
    return names


_LABEL_REFERENCE = re.compile(r"(?:\$labels|\.Labels)\.([a-zA-Z_][a-zA-Z0-9_]*)")
