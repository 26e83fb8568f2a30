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
