"""A parsed PromQL expression as plain Python objects.

promql-parser builds a new Python object at every attribute access, so its nodes have no stable identity and
every access crosses into Rust; the evaluator walks the same tree thousands of times. This is the tree once,
converted, with durations in milliseconds and matchers as tuples.
"""

import functools
from dataclasses import dataclass, field

import promql_parser as pp

from amcompanion.catalog import promql


@dataclass(eq=False)
class Number:
    val: float


@dataclass(eq=False)
class String:
    val: str


@dataclass(eq=False)
class Paren:
    expr: "Node"


@dataclass(eq=False)
class Negation:
    expr: "Node"


@dataclass(eq=False)
class Selector:
    name: str  # "" when the metric name is only matched by __name__ matchers
    matchers: tuple[tuple[str, str, str], ...]  # (label, op: = != =~ !~, value)
    offset_ms: int
    text: str
    at: bool = False
    or_matchers: bool = False

    def __str__(self) -> str:
        return self.text


@dataclass(eq=False)
class Range:
    selector: Selector
    range_ms: int


@dataclass(eq=False)
class Subquery:
    expr: "Node"
    range_ms: int
    step_ms: int
    offset_ms: int
    at: bool = False


@dataclass(eq=False)
class Binary:
    op: str
    lhs: "Node"
    rhs: "Node"
    card: str = "one-to-one"  # one-to-one, many-to-one, one-to-many, many-to-many
    on: bool | None = None  # True: on(...), False: ignoring(...), None: neither
    matching: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    return_bool: bool = False


@dataclass(eq=False)
class Aggregate:
    op: str
    expr: "Node"
    param: "Node | None" = None
    grouping: tuple[str, ...] = ()
    without: bool = False
    grouped: bool = False  # by(...) or without(...) was written


@dataclass(eq=False)
class Call:
    name: str
    args: list["Node"] = field(default_factory=list)


Node = Number | String | Paren | Negation | Selector | Range | Subquery | Binary | Aggregate | Call
_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}  # by name: the enums are not hashable
_CARDS = {
    "OneToOne": "one-to-one",
    "ManyToOne": "many-to-one",
    "OneToMany": "one-to-many",
    "ManyToMany": "many-to-many",
}


def _name(member: object) -> str:
    return str(member).rsplit(".", 1)[-1]


def _ms(delta: object) -> int:
    return round(delta.total_seconds() * 1000) if delta is not None else 0  # type: ignore[attr-defined]


def convert(node: object) -> Node:
    if isinstance(node, pp.NumberLiteral):
        return Number(float(node.val))
    if isinstance(node, pp.StringLiteral):
        return String(str(node.val))
    if isinstance(node, pp.ParenExpr):
        return Paren(convert(node.expr))
    if isinstance(node, pp.UnaryExpr):
        return Negation(convert(node.expr))
    if isinstance(node, pp.VectorSelector):
        matchers = node.matchers
        return Selector(
            node.name or "",
            tuple((m.name, _OPS[_name(m.op)], m.value) for m in matchers.matchers),
            _ms(node.offset),
            str(node),
            node.at is not None,
            bool(matchers.or_matchers),
        )
    if isinstance(node, pp.MatrixSelector):
        return Range(convert(node.vector_selector), _ms(node.range))  # type: ignore[arg-type]
    if isinstance(node, pp.SubqueryExpr):
        return Subquery(convert(node.expr), _ms(node.range), _ms(node.step), _ms(node.offset), node.at is not None)
    if isinstance(node, pp.BinaryExpr):
        modifier = node.modifier
        out = Binary(str(node.op), convert(node.lhs), convert(node.rhs))
        if modifier is not None:
            out.card = _CARDS.get(_name(modifier.card), "one-to-one")
            out.return_bool = bool(modifier.return_bool)
            out.include = tuple(modifier.group_labels or ())
            if modifier.matching is not None:
                out.on = modifier.matching.type == pp.LabelModifierType.Include
                out.matching = tuple(modifier.matching.labels)
        return out
    if isinstance(node, pp.AggregateExpr):
        modifier = node.modifier
        return Aggregate(
            str(node.op),
            convert(node.expr),
            convert(node.param) if node.param is not None else None,
            tuple(modifier.labels) if modifier is not None else (),
            modifier is not None and modifier.type == pp.AggModifierType.Without,
            modifier is not None,
        )
    if isinstance(node, pp.Call):
        return Call(node.func.name, [convert(a) for a in node.args])
    raise ValueError(f"unknown PromQL node {type(node).__name__}")


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Node | str:
    """The converted tree of `text`, or the parser's complaint."""
    node = promql.parse(text)
    return node if isinstance(node, str) else convert(node)


def children(node: Node) -> list[Node]:
    if isinstance(node, Paren | Negation | Aggregate | Subquery):
        found = [node.expr]
        if isinstance(node, Aggregate) and node.param is not None:
            found.append(node.param)
        return found
    if isinstance(node, Range):
        return [node.selector]
    if isinstance(node, Binary):
        return [node.lhs, node.rhs]
    if isinstance(node, Call):
        return list(node.args)
    return []


def walk(node: Node) -> list[Node]:
    out = [node]
    for child in children(node):
        out += walk(child)
    return out
