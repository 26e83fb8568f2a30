"""PromQL checks with a real parser (promql-parser), so errors point at the catalog line."""

import contextlib

import promql_parser


def syntax_error(expr: str) -> str | None:
    """The parser's complaint about `expr`, or None when it parses."""
    try:
        promql_parser.parse(expr)
    except ValueError as exc:
        return str(exc) or "invalid PromQL"
    return None


def is_selector(expr: str) -> bool:
    """True for an instant vector selector, which can take a range (`[5m]`) without a subquery."""
    try:
        return isinstance(promql_parser.parse(expr), promql_parser.VectorSelector)
    except ValueError:
        return False


def equality_labels(expr: str) -> dict[str, str]:
    """The labels `absent(expr)` returns: the selector's equality matchers, without the metric name."""
    try:
        node = promql_parser.parse(expr)
    except ValueError:
        return {}
    if not isinstance(node, promql_parser.VectorSelector):
        return {}
    return {
        m.name: m.value for m in node.matchers.matchers if m.op == promql_parser.MatchOp.Equal and m.name != "__name__"
    }


def mentioned_labels(expr: str) -> set[str]:
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

    with contextlib.suppress(ValueError):
        promql_parser.walk(promql_parser.parse(expr), visit)
    return names
