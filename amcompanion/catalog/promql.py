"""PromQL checks with a real parser (promql-parser), so errors point at the catalog line."""

import functools

import promql_parser


@functools.lru_cache(maxsize=65536)
def parse(expr: str) -> object | str:
    """The parsed expression, or the parser's complaint; kept, because every stage asks about the same text."""
    try:
        return promql_parser.parse(expr)
    except ValueError as exc:
        return str(exc) or "invalid PromQL"


def syntax_error(expr: str) -> str | None:
    """The parser's complaint about `expr`, or None when it parses."""
    node = parse(expr)
    return node if isinstance(node, str) else None


def is_selector(expr: str) -> bool:
    """True for an instant vector selector, which can take a range (`[5m]`) without a subquery."""
    return isinstance(parse(expr), promql_parser.VectorSelector)


def equality_labels(expr: str) -> dict[str, str]:
    """The labels `absent(expr)` returns: the selector's equality matchers, without the metric name."""
    node = parse(expr)
    if not isinstance(node, promql_parser.VectorSelector):
        return {}
    return {
        m.name: m.value for m in node.matchers.matchers if m.op == promql_parser.MatchOp.Equal and m.name != "__name__"
    }


@functools.lru_cache(maxsize=65536)
def mentioned_labels(expr: str) -> frozenset[str]:
    """Label names an expression groups, matches or selects on: the series identity it keeps."""
    names: set[str] = set()

    def visit(node: object) -> None:
        modifier = getattr(node, "modifier", None)
        for attr in ("labels", "matching"):
            inner = getattr(modifier, attr, None)
            labels = getattr(inner, "labels", inner)
            if isinstance(labels, list):
                names.update(str(label) for label in labels)
        matchers = getattr(node, "matchers", None)
        if matchers is not None:
            names.update(m.name for m in matchers.matchers if m.name != "__name__")

    node = parse(expr)
    if not isinstance(node, str):
        promql_parser.walk(node, visit)
    return frozenset(names)


def absent_argument(expr: str) -> str | None:
    """The selector of an expression that is exactly `absent(selector)`, else None."""
    node = parse(expr)
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    if isinstance(node, promql_parser.Call) and node.func.name == "absent" and node.args:
        inner = node.args[0]
        if isinstance(inner, promql_parser.VectorSelector):
            return str(inner)
    return None


# Functions that return series of their own, so an expression using them may fire with no input at all
# (the date functions only when called without an argument: then they read vector(time())).
_SELF_PRODUCING = frozenset(["absent", "absent_over_time", "vector"])
_DATE_FUNCTIONS = frozenset(
    ["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year"]
)


@functools.lru_cache(maxsize=65536)
def produces_without_input(expr: str) -> bool:
    """True when the expression can return series although no series exist (absent(), vector(), time())."""
    node = parse(expr)
    if isinstance(node, str):
        return False
    found = [False, False]  # [self-producing call, any selector]

    def visit(item: object) -> None:
        if isinstance(item, promql_parser.Call) and (
            item.func.name in _SELF_PRODUCING or (item.func.name in _DATE_FUNCTIONS and not item.args)
        ):
            found[0] = True
        if isinstance(item, promql_parser.VectorSelector | promql_parser.MatrixSelector):
            found[1] = True

    promql_parser.walk(node, visit)
    return found[0] or not found[1]
