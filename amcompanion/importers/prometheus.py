"""Prometheus rule files and PrometheusRule objects → catalog groups that mean exactly what the rules did.

Every rule keeps its name, expression, `for`, `keep_firing_for`, labels and annotations. An alert of the shape
`EXPR <op> NUMBER` becomes a `threshold` (the catalog then proves its level), `absent(SELECTOR)` an `absent`,
anything else an `expr`; recording rules become `record`s in their place. Rules of one alert name in one group
become one alert: with a map of levels when they differ in the level and severity only, or with `variants`.
Groups are written with `kind_label: false`, so that no label is added and every alert keeps its identity.
"""

import functools
import re

import promql_parser

from amcompanion.catalog import promql
from amcompanion.catalog.durations import format_duration, parse_duration
from amcompanion.catalog.model import COMPARISONS
from amcompanion.catalog.names import LABEL_NAME, METRIC_NAME
from amcompanion.importers import DEFAULT_SEVERITIES, Carried, Conversion, Format, NotCarried

LEVEL_KEY = {op: key for key, op in COMPARISONS.items()}


def is_rule_file(document: dict) -> bool:
    groups = document.get("groups")
    return (
        "version" not in document
        and isinstance(groups, list)
        and bool(groups)  # `groups: []` alone reads as a catalog file that forgot its version
        and all(isinstance(g, dict) and "rules" in g for g in groups)
    )


def is_prometheus_rule(document: dict) -> bool:
    return document.get("kind") == "PrometheusRule" and str(document.get("apiVersion", "")).startswith(
        "monitoring.coreos.com/"
    )


def is_rule_list(document: dict) -> bool:
    items = document.get("items")
    return (
        document.get("kind") in ("List", "PrometheusRuleList")
        and isinstance(items, list)
        and any(isinstance(item, dict) and is_prometheus_rule(item) for item in items)
    )


def rule_groups(documents: list[dict]) -> list[tuple[str, dict]]:
    """(where, group) for every rule group of the documents, whatever wraps them."""
    out = []
    for d, document in enumerate(documents):
        doc_where = f"document {d + 1}: " if len(documents) > 1 else ""
        if is_rule_list(document):
            objects = [(f"{doc_where}items[{i}].", item) for i, item in enumerate(document["items"])]
        else:
            objects = [(doc_where, document)]
        for where, obj in objects:
            if not isinstance(obj, dict):
                continue
            spec = obj.get("spec") if is_prometheus_rule(obj) else obj
            prefix = where + ("spec." if is_prometheus_rule(obj) else "")
            groups = spec.get("groups") if isinstance(spec, dict) else None
            for g, group in enumerate(groups if isinstance(groups, list) else []):
                out.append((f"{prefix}groups[{g}]", group))
    return out


def convert(documents: list[dict], severities: tuple[str, ...] = DEFAULT_SEVERITIES) -> Conversion:
    conversion = Conversion({"version": 1, "groups": []})
    seen_names: dict[str, str] = {}  # group name → where, to keep group names unique within the file
    for where, group in rule_groups(documents):
        if not isinstance(group, dict) or not group.get("name"):
            conversion.not_carried.append(NotCarried(where, "a rule group needs a name"))
            continue
        name = str(group["name"])
        if name in seen_names:
            conversion.not_carried.append(
                NotCarried(where, f'group name "{name}" is also {seen_names[name]}; Prometheus refuses that too')
            )
            continue
        seen_names[name] = where
        _convert_group(conversion, where, group, len(conversion.data["groups"]), severities)
    return conversion


def _convert_group(conversion: Conversion, where: str, group: dict, index: int, severities: tuple[str, ...]) -> None:
    out: dict = {"name": str(group["name"])}
    if group.get("interval"):
        out["interval"] = str(group["interval"])
    if isinstance(group.get("labels"), dict) and group["labels"]:
        out["labels"] = group["labels"]
    out["kind_label"] = False
    for key in ("limit", "query_offset"):
        if group.get(key):
            conversion.not_carried.append(NotCarried(where, f"`{key}` of the group is not carried (rules are)"))
    alerts: list[dict] = []
    by_name: dict[str, list[tuple[str, dict]]] = {}
    order: list[tuple[str, str | dict]] = []  # alert names and records, in the group's order
    rules = group.get("rules") or []
    if not isinstance(rules, list):
        conversion.not_carried.append(NotCarried(where, f"`rules` must be a list, got {type(rules).__name__}"))
        rules = []
    for r, rule in enumerate(rules):
        rwhere = f"{where}.rules[{r}]"
        problem = rule_problem(rule)
        if problem:
            what = f" (alert {rule['alert']})" if isinstance(rule, dict) and rule.get("alert") else ""
            conversion.not_carried.append(NotCarried(rwhere + what, problem))
            continue
        if "record" in rule:
            order.append((rwhere, _record(rule)))
        elif rule.get("alert"):
            name = str(rule["alert"])
            if name not in by_name:
                order.append((rwhere, name))
            by_name.setdefault(name, []).append((rwhere, rule))
        else:
            conversion.not_carried.append(NotCarried(rwhere, "a rule needs `alert:` or `record:`"))
    for rwhere, item in order:
        path = ("groups", index, "alerts", len(alerts))
        if isinstance(item, dict):
            alerts.append(item)
            conversion.carried.append(Carried(path, f"{rwhere} (record {item['record']})", "record"))
            continue
        rules = by_name[item]
        alert = _alert(item, [rule for _, rule in rules], severities)
        alerts.append(alert)
        sources = ", ".join(w.rsplit(".", 1)[-1] for w, _ in rules)
        origin = f"{where}.{sources}" if len(rules) > 1 else rules[0][0]
        conversion.carried.append(Carried(path, f"{origin} (alert {item})", alert["kind"]))
    out["alerts"] = alerts
    conversion.data["groups"].append(out)


RULE_FIELDS = ("alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations")


def rule_problem(rule: object) -> str | None:
    """Why Prometheus would refuse the rule (and so the import does not carry it), or None."""
    if not isinstance(rule, dict):
        return "a rule must be a mapping"
    unknown = [str(key) for key in rule if key not in RULE_FIELDS]
    if unknown:
        return f"unknown field {', '.join(unknown)}; a rule has {', '.join(RULE_FIELDS)}"
    if ("alert" in rule) == ("record" in rule):
        return "a rule needs one of `alert:` or `record:`"
    if "record" in rule and not METRIC_NAME.match(str(rule["record"])):
        return f'"{rule["record"]}" is not a valid metric name for a recording rule'
    if "alert" in rule and not str(rule["alert"] or "").strip():
        return "the alert name is empty"
    if not isinstance(rule.get("expr"), str | int | float) or isinstance(rule.get("expr"), bool):
        return "a rule needs an expression (a string)"
    problem = promql.syntax_error(_text(rule["expr"]).strip())
    if problem:
        return f"its expression is not valid PromQL: {problem}"
    for key in ("for", "keep_firing_for"):
        if rule.get(key) not in (None, "", 0) and parse_duration(str(rule[key])) is None:
            return f'{key}: "{rule[key]}" is not a duration'
    for key in ("labels", "annotations"):
        value = rule.get(key)
        if value is None:
            continue
        if not isinstance(value, dict) or any(isinstance(v, dict | list) for v in value.values()):
            return f"{key} must map names to text"
        if key == "labels" and (bad := [str(k) for k in value if not LABEL_NAME.match(str(k))]):
            return f"not valid label names: {', '.join(bad)}"
    return None


def _record(rule: dict) -> dict:
    out: dict = {"record": str(rule["record"]), "expr": _text(rule["expr"])}
    if isinstance(rule.get("labels"), dict) and rule["labels"]:
        out["labels"] = {str(k): _text(v) for k, v in rule["labels"].items()}
    return out


def _alert(name: str, rules: list[dict], severities: tuple[str, ...]) -> dict:
    """One catalog alert for the rules of one name in one group."""
    parts = [_typed(rule, severities) for rule in rules]
    kinds = {part["kind"] for part in parts}
    kind = kinds.pop() if len(kinds) == 1 else "expr"
    if kind != "expr" and len({_level_key(p) for p in parts}) > 1:
        kind = "expr"
    if kind == "expr":
        parts = [_as_expr(rule, severities) for rule in rules]
    if len(parts) == 1:
        return {"alert": name, **parts[0]}
    if kind == "threshold" and _levels_only(parts):
        key = _level_key(parts[0])
        first = {k: v for k, v in parts[0].items() if k not in (key, "severity")}
        return {"alert": name, **first, key: {p["severity"]: p[key] for p in parts}}
    return {"alert": name, "kind": kind, "variants": [{k: v for k, v in p.items() if k != "kind"} for p in parts]}


def _levels_only(parts: list[dict]) -> bool:
    """Rules that differ only in their level and severity: one alert with a map of levels."""
    key = _level_key(parts[0])
    severities = [p.get("severity") for p in parts]
    if None in severities or len(set(severities)) != len(severities):
        return False
    rest = [{k: v for k, v in p.items() if k not in (key, "severity")} for p in parts]
    return all(r == rest[0] for r in rest)


def _level_key(part: dict) -> str | None:
    return next((key for key in COMPARISONS if key in part), None)


def _common(rule: dict, severities: tuple[str, ...]) -> dict:
    """What every kind carries: severity (from the label), for, keep_firing_for, labels, annotations."""
    out: dict = {}
    labels = {str(k): _text(v) for k, v in (rule.get("labels") or {}).items()}
    severity = labels.pop("severity", None)
    if severity is None:
        out["severity"] = None  # the rule had none: the catalog adds none
    elif severity in severities:
        out["severity"] = severity
    else:
        labels["severity"] = severity  # any other value is kept as a label, on an expr
    out["for"] = _duration(rule.get("for"))
    if rule.get("keep_firing_for"):
        out["keep_firing_for"] = _duration(rule["keep_firing_for"])
    if labels:
        out["labels"] = labels
    annotations = {str(k): _text(v) for k, v in (rule.get("annotations") or {}).items()}
    if annotations:
        out["annotations"] = annotations
    return out


def _typed(rule: dict, severities: tuple[str, ...]) -> dict:
    """The most specific kind that means exactly what the rule's expression does."""
    expr = _text(rule["expr"]).strip()
    common = _common(rule, severities)
    if "labels" in common and "severity" in common["labels"]:
        return _as_expr(rule, severities)  # a severity the catalog does not rank: only an expr keeps it as it is
    threshold = split_comparison(expr)
    if threshold is not None:
        lhs, op, level = threshold
        return {"kind": "threshold", "expr": lhs, LEVEL_KEY[op]: level, **common}
    selector = absent_selector(expr)
    if selector is not None:
        return {"kind": "absent", "expr": selector, **common}
    return _as_expr(rule, severities)


def _as_expr(rule: dict, severities: tuple[str, ...]) -> dict:
    return {"kind": "expr", "expr": _text(rule["expr"]).strip(), **_common(rule, severities)}


def _duration(value: object) -> str:
    if value in (None, "", 0):
        return "0s"  # said explicitly: the catalog's default `for` is not zero
    ms = parse_duration(str(value))
    return format_duration(ms) if ms is not None else str(value)


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _parse(expr: str) -> object | None:
    node = promql.parse(expr)  # cached: the reader parses the same texts again when import checks its output
    return None if isinstance(node, str) else node


def _unparen(node: object) -> object:
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    return node


def split_comparison(expr: str) -> tuple[str, str, float] | None:
    """`EXPR <op> NUMBER` as (EXPR as written, op, NUMBER), or None for any other shape (`a > 1 and b`, `bool`).

    The parser says the shape; the text is cut where the number that ends it begins (a comment after the number
    leaves the rule an expr), and the cut is kept only if EXPR parses to the parser's own left-hand side."""
    node = _unparen(_parse(expr))
    if not isinstance(node, promql_parser.BinaryExpr) or node.modifier is not None:
        return None
    op = str(node.op).strip()
    rhs = _unparen(node.rhs)
    if op not in LEVEL_KEY or not isinstance(rhs, promql_parser.NumberLiteral):
        return None
    cut = _TRAILING_LEVEL.search(_strip_parens(expr))
    if cut is None or cut.group(1) != op:
        return None
    lhs = _strip_parens(cut.string[: cut.start()])
    parsed = _parse(lhs)
    if parsed is None or str(_unparen(parsed)) != str(_unparen(node.lhs)):
        return None
    return lhs, op, float(rhs.val)


def absent_selector(expr: str) -> str | None:
    node = _unparen(_parse(expr))
    if not isinstance(node, promql_parser.Call) or node.func.name != "absent" or len(node.args) != 1:
        return None
    arg = _unparen(node.args[0])
    if not isinstance(arg, promql_parser.VectorSelector):
        return None
    inner = _strip_parens(expr)
    return _strip_parens(inner[inner.index("(") + 1 : inner.rindex(")")])


# The comparison and number that end an expression: `... >= 0.9`, `... < (-1)`, `... == 1e3`.
_TRAILING_LEVEL = re.compile(r"(==|!=|>=|<=|>|<)[\s(]*[-+]?\s*(?:[0-9.][0-9a-fA-FxX._eE+-]*|Inf|NaN)[\s)]*$")


def _strip_parens(text: str) -> str:
    """Outer parentheses that enclose the whole text, removed: `(a + b)` → `a + b`, but `(a) / (b)` stays, as
    `a) / (b` does not parse."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _parse(text[1:-1]) is not None:
        text = text[1:-1].strip()
    return text


def formats(severities: tuple[str, ...]) -> list[Format]:
    bound = functools.partial(convert, severities=severities)
    return [
        Format("Prometheus rule file", is_rule_file, bound),
        Format("PrometheusRule object", lambda d: is_prometheus_rule(d) or is_rule_list(d), bound),
    ]
