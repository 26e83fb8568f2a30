"""Which labels a PromQL expression's output can carry, worked out from its text as Prometheus evaluates it,
so a template reading a label the query drops (`sum by (job)` and `$labels.instance`) is caught before it
renders empty in a page."""

from dataclasses import dataclass

import promql_parser as p


@dataclass(frozen=True)
class LabelSet:
    """`closed`: the output carries at most `names`; open: it may carry any label but `names` (the dropped)."""

    closed: bool
    names: frozenset[str] = frozenset()

    def can_carry(self, label: str) -> bool:
        return (label in self.names) == self.closed

    def keep(self, labels: frozenset[str]) -> "LabelSet":
        return LabelSet(True, frozenset(x for x in labels if self.can_carry(x)))

    def drop(self, labels: frozenset[str]) -> "LabelSet":
        return LabelSet(True, self.names - labels) if self.closed else LabelSet(False, self.names | labels)

    def add(self, labels: frozenset[str]) -> "LabelSet":
        return LabelSet(True, self.names | labels) if self.closed else LabelSet(False, self.names - labels)

    def union(self, other: "LabelSet") -> "LabelSet":
        """What either side carries (`or`)."""
        if self.closed and other.closed:
            return LabelSet(True, self.names | other.names)
        if self.closed or other.closed:
            closed, opened = (self, other) if self.closed else (other, self)
            return LabelSet(False, opened.names - closed.names)
        return LabelSet(False, self.names & other.names)

    def both(self, other: "LabelSet") -> "LabelSet":
        """What both sides carry (one-to-one matching on every label)."""
        if self.closed:
            return LabelSet(True, self.names & other.names) if other.closed else other.keep(self.names)
        return self.keep(other.names) if other.closed else LabelSet(False, self.names | other.names)

    def include(self, labels: frozenset[str], one: "LabelSet") -> "LabelSet":
        """`group_left(labels)`: each is copied from the one side, or removed where that side lacks it."""
        carried = frozenset(x for x in labels if one.can_carry(x))
        return self.add(carried).drop(labels - carried)


ANY = LabelSet(False)
NONE = LabelSet(True)
# Aggregations whose output series are input series, whatever they group by.
_SELECTING = frozenset(["topk", "bottomk", "limitk", "limit_ratio"])
_NO_INPUT = frozenset(["time", "vector", "scalar", "pi"])  # a scalar, or one series without labels
_DATE_FUNCTIONS = frozenset(
    ["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year"]
)
_VECTOR_ARGUMENT = {"histogram_quantile": 1, "quantile_over_time": 1, "histogram_fraction": 2}
_LE_DROPPED = frozenset(["histogram_quantile", "histogram_fraction"])


def _strip(node: object) -> object:
    while isinstance(node, p.ParenExpr):
        node = node.expr
    return node


def is_scalar(node: object) -> bool:
    node = _strip(node)
    if isinstance(node, p.NumberLiteral):
        return True
    if isinstance(node, p.UnaryExpr):
        return is_scalar(node.expr)
    if isinstance(node, p.Call):
        return node.func.name in ("time", "scalar", "pi")
    if isinstance(node, p.BinaryExpr):
        return is_scalar(node.lhs) and is_scalar(node.rhs)
    return False


def output_labels(node: object) -> LabelSet:
    """The labels `node`'s output series can carry; ANY where they cannot be known from the text."""
    node = _strip(node)
    if isinstance(node, p.VectorSelector | p.MatrixSelector):
        return ANY
    if isinstance(node, p.NumberLiteral | p.StringLiteral):
        return NONE
    if isinstance(node, p.UnaryExpr | p.SubqueryExpr):
        return output_labels(node.expr)
    if isinstance(node, p.AggregateExpr):
        return _aggregate(node)
    if isinstance(node, p.Call):
        return _call(node)
    if isinstance(node, p.BinaryExpr):
        return _binary(node)
    return ANY


def _aggregate(node: p.AggregateExpr) -> LabelSet:
    inner = output_labels(node.expr)
    op = str(node.op)
    if op in _SELECTING:
        return inner
    modifier = node.modifier
    labels = frozenset(modifier.labels) if modifier is not None else frozenset()
    param = _strip(node.param) if node.param is not None else None
    extra = frozenset([param.val]) if op == "count_values" and isinstance(param, p.StringLiteral) else frozenset()
    if modifier is not None and modifier.type == p.AggModifierType.Without:
        return inner.drop(labels).add(extra)
    return inner.keep(labels).add(extra)


def _call(node: p.Call) -> LabelSet:
    name = node.func.name
    if name in ("absent", "absent_over_time"):
        arg = _strip(node.args[0]) if node.args else None
        selector = arg.vector_selector if isinstance(arg, p.MatrixSelector) else arg
        if isinstance(selector, p.VectorSelector):
            return NONE.add(
                frozenset(
                    m.name for m in selector.matchers.matchers if m.op == p.MatchOp.Equal and m.name != "__name__"
                )
            )
        return NONE
    if name in _NO_INPUT or (name in _DATE_FUNCTIONS and not node.args):
        return NONE
    index = _VECTOR_ARGUMENT.get(name, 0)
    if index >= len(node.args):
        return ANY
    inner = output_labels(node.args[index])
    if name in _LE_DROPPED:
        return inner.drop(frozenset(["le"]))
    if name in ("label_replace", "label_join") and len(node.args) > 1:
        target = _strip(node.args[1])
        if isinstance(target, p.StringLiteral):
            return inner.add(frozenset([target.val]))
        return ANY
    return inner


def _binary(node: p.BinaryExpr) -> LabelSet:
    left, right = output_labels(node.lhs), output_labels(node.rhs)
    op = str(node.op)
    if op in ("and", "unless"):
        return left
    if op == "or":
        return left.union(right)
    if is_scalar(node.lhs) or is_scalar(node.rhs):
        return right if is_scalar(node.lhs) else left
    modifier = node.modifier
    matching = modifier.matching if modifier is not None else None
    labels = frozenset(matching.labels) if matching is not None else frozenset()
    card = modifier.card if modifier is not None else p.VectorMatchCardinality.OneToOne
    include = frozenset(modifier.group_labels or ()) if modifier is not None else frozenset()
    if card == p.VectorMatchCardinality.ManyToOne:
        return left.include(include, right)
    if card == p.VectorMatchCardinality.OneToMany:
        return right.include(include, left)
    if matching is not None and matching.type == p.LabelModifierType.Include:  # on (...)
        return left.keep(labels)
    return left.both(right).drop(labels)  # every label, or all but the ignored ones, match both sides
