"""Renders the small part of Go's text/template that alert annotations use, as Prometheus would.

Generated promtool tests must state each alert's annotations exactly as Prometheus renders them for
the test's input. Templates beyond this subset (if/range/query/...) raise Unsupported, and the test
generator then asserts the alert through its ALERTS series instead (labels, not annotations).
"""

import math
import re

from amcompanion.catalog.numbers import go_float

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\|)|([^\s|"]+)')


class Unsupported(Exception):
    pass


def render(template: str, labels: dict[str, str], value: float) -> str:
    out: list[str] = []
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos : match.start()]
        if match.group(1):
            text = text.rstrip()
        out.append(text)
        out.append(_action(match.group(2), labels, value))
        pos = match.end()
        if match.group(3):
            while pos < len(template) and template[pos].isspace():
                pos += 1
    out.append(template[pos:])
    return "".join(out)


def _action(body: str, labels: dict[str, str], value: float) -> str:
    if body.startswith("/*") and body.endswith("*/"):
        return ""
    commands: list[list[object]] = [[]]
    for quoted, raw, pipe, word in _TOKEN.findall(body):
        if pipe:
            commands.append([])
        elif word:
            commands[-1].append(_operand(word, labels, value))
        else:
            commands[-1].append(raw if raw else bytes(quoted, "utf-8").decode("unicode_escape"))
    result: object = None
    for i, command in enumerate(commands):
        if not command:
            raise Unsupported(body)
        args = command + ([result] if i else [])
        head = args[0]
        if isinstance(head, _Func):
            result = head(*args[1:])
        elif len(args) == 1:
            result = head
        else:
            raise Unsupported(body)
    return _print(result)


class _Func:
    def __init__(self, fn):  # type: ignore[no-untyped-def]
        self.fn = fn

    def __call__(self, *args: object) -> object:
        return self.fn(*args)


def _operand(word: str, labels: dict[str, str], value: float) -> object:
    if word in ("$value", ".Value"):
        return value
    for prefix in ("$labels.", ".Labels."):
        if word.startswith(prefix):
            return labels.get(word[len(prefix) :], "")
    if word.startswith("$externalLabels."):
        return ""
    if word in FUNCS:
        return _Func(FUNCS[word])
    try:
        return float(word) if "." in word or "e" in word else int(word)
    except ValueError:
        raise Unsupported(word) from None


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
