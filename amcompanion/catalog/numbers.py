"""Numbers printed the way Go and Prometheus print them, so generated text matches what they render."""

import math


def go_float(value: float) -> str:
    """Go's %v of a float64 (what `{{ $value }}` renders): shortest digits, exponent form from 1e+06."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    digits, exp = _shortest_digits(value)
    sign = "-" if value < 0 else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    whole = digits[: exp + 1].ljust(exp + 1, "0")
    frac = digits[exp + 1 :]
    return f"{sign}{whole}{'.' + frac if frac else ''}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """Significant digits of repr() (the shortest round-trip form, as Go's) and the decimal exponent."""
    text = repr(abs(value))
    if "e" in text:
        head, _, tail = text.partition("e")
        return head.replace(".", "").rstrip("0") or "0", int(tail)
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if whole != "0":
        return (whole + frac).rstrip("0") or "0", len(whole) - 1
    stripped = frac.lstrip("0")
    return stripped, -(len(frac) - len(stripped) + 1)


def promql_number(value: float) -> str:
    """A readable PromQL number literal and label value (`6`, not `6.0`)."""
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
