"""Pyrra `ServiceLevelObjective`s (pyrra.dev/v1alpha1, github.com/pyrra-dev/pyrra kubernetes/api/v1alpha1) →
catalog SLOs, with the error ratio of Pyrra's indicators (slo/rules.go, Burnrate):

- ratio: `sum by (grouping) (rate(errors[w])) / sum by (grouping) (rate(total[w]))`: errors + total;
- latency: `(total - success) / total` of the rates: good (success) + total;
- latencyNative: `1 - histogram_fraction(0, latency, sum by (grouping) (rate(total[w])))`: raw;
- bool_gauge: `(count_over_time - sum_over_time) / count_over_time` of the gauge: good (sum) + total (count).

`grouping` is the SLO's group_by. An SLO is named after its object, its service is the object's namespace (its
name without one); labels prefixed `pyrra.dev/` become the SLO's labels, as Pyrra propagates them to its rules,
and the object's name, namespace and other labels are its PrometheusRule's, as Pyrra writes it. The alerts are the
catalog's page and ticket burn-rate alerts (Sloth's windows), not Pyrra's four with its own windows; its absent
alerts, Thanos and output options have no equivalent and are not carried when set.
"""

import contextlib

from amcompanion.catalog.diagnostics import KeyPath
from amcompanion.catalog.durations import parse_duration
from amcompanion.importers import Conversion, Format
from amcompanion.importers.specs import SpecReader

PROPAGATED = "pyrra.dev/"  # Pyrra's PropagationLabelsPrefix
SPEC_FIELDS = (
    "description",
    "target",
    "window",
    "indicator",
    "alerting",
    "partial_response_strategy",
    "performanceOverAccuracy",
    "ruleOutput",
)
UNSAID = ("partial_response_strategy", "performanceOverAccuracy", "ruleOutput")
TIERS = (("page", ("fastBurn", "mediumBurn")), ("ticket", ("slowBurn", "longTermBurn")))


def is_slo(document: dict) -> bool:
    return document.get("apiVersion") == "pyrra.dev/v1alpha1" and document.get("kind") == "ServiceLevelObjective"


def _sum(fn: str, metric: str, grouping: list) -> str:
    """Pyrra's `sum by (grouping) (fn(metric[window]))`, its grouping sorted and deduplicated as Pyrra does."""
    by = f" by ({', '.join(sorted(set(map(str, grouping))))})" if grouping else ""
    return f"sum{by} ({fn}({metric}[{{{{window}}}}]))"


def convert(documents: list[dict]) -> Conversion:
    sr = SpecReader(documents)
    groups: list[dict] = []
    for i, document in enumerate(documents):
        sr.fields(document, sr.at(i), ("apiVersion", "kind", "metadata", "spec", "status"))
        meta = sr.fields(document.get("metadata"), sr.at(i, "metadata"), ("name", "namespace", "labels", "annotations"))
        spec_at = sr.at(i, "spec")
        spec = sr.fields(document.get("spec"), spec_at, SPEC_FIELDS)
        for key in UNSAID:
            if key in spec:
                sr.skip(
                    (*spec_at, key), "a Pyrra output option (Thanos, rule splitting) the catalog has no equivalent for"
                )
        gpath: KeyPath = ("groups", len(groups))
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        rule_meta = {k: meta[k] for k in ("name", "namespace") if k in meta}
        kept = {k: v for k, v in labels.items() if not str(k).startswith(PROPAGATED)}
        if kept:
            rule_meta["labels"] = kept
        group: dict = {"name": meta.get("name"), "kind_label": False, "prometheus_rule": rule_meta, "slos": []}
        sr.origin(gpath, sr.at(i, "metadata"))
        groups.append(group)
        path: KeyPath = (*gpath, "slos", 0)
        slo: dict = {}
        sr.origin(path, spec_at)
        sr.put(slo, path, "name", meta.get("name"), sr.at(i, "metadata", "name"))
        service_at = "namespace" if "namespace" in meta else "name"
        sr.put(slo, path, "service", meta.get(service_at), sr.at(i, "metadata", service_at))
        target = spec.get("target")  # a string in Pyrra; one that is no number is the reader's to report
        with contextlib.suppress(ValueError):
            target = float(target) if isinstance(target, str) else target
        sr.put(slo, path, "objective", target, (*spec_at, "target"))
        if "window" in spec:
            sr.put(slo, path, "window", spec["window"], (*spec_at, "window"))
        if spec.get("description"):
            sr.put(slo, path, "description", spec["description"], (*spec_at, "description"))
        propagated = {str(k).removeprefix(PROPAGATED): v for k, v in labels.items() if str(k).startswith(PROPAGATED)}
        if propagated:
            sr.put(slo, path, "labels", propagated, sr.at(i, "metadata", "labels"))
        sli = _indicator(sr, spec.get("indicator"), (*spec_at, "indicator"), (*path, "sli"), slo)
        if sli is None:
            groups.pop()
            continue
        slo["alerting"] = _alerting(sr, spec.get("alerting"), (*spec_at, "alerting"), (*path, "alerting"))
        group["slos"].append(slo)
        sr.carried(path, sr.at(i), f"SLO {meta.get('name')}", "slo")
    sr.conversion.data["groups"] = groups
    return sr.conversion


def _indicator(sr: SpecReader, value: object, at: KeyPath, path: KeyPath, slo: dict) -> dict | None:
    d = sr.fields(value, at, ("ratio", "latency", "latencyNative", "bool_gauge"))
    kinds = [k for k in ("ratio", "latency", "latencyNative", "bool_gauge") if k in d]
    if len(kinds) != 1:
        sr.skip(at, "one of ratio, latency, latencyNative, bool_gauge is needed")
        return None
    kind = kinds[0]
    kat = (*at, kind)
    fields = {
        "ratio": ("errors", "total", "grouping"),
        "latency": ("success", "total", "grouping"),
        "latencyNative": ("total", "latency", "grouping"),
        "bool_gauge": ("metric", "grouping"),
    }[kind]
    k = sr.fields(d[kind], kat, fields)
    grouping = k.get("grouping") if isinstance(k.get("grouping"), list) else []
    if grouping:
        sr.put(slo, path[:-1], "group_by", grouping, (*kat, "grouping"))

    def metric(key: str) -> str:
        query = sr.fields(k.get(key), (*kat, key), ("metric",))
        return str(query.get("metric", ""))

    sli: dict = {}
    sr.origin(path, kat)
    if kind == "ratio":
        sr.put(sli, path, "errors", _sum("rate", metric("errors"), grouping), (*kat, "errors", "metric"))
        sr.put(sli, path, "total", _sum("rate", metric("total"), grouping), (*kat, "total", "metric"))
    elif kind == "latency":
        sr.put(sli, path, "good", _sum("rate", metric("success"), grouping), (*kat, "success", "metric"))
        sr.put(sli, path, "total", _sum("rate", metric("total"), grouping), (*kat, "total", "metric"))
    elif kind == "latencyNative":
        seconds = _seconds(k.get("latency"))
        if seconds is None:
            sr.skip((*kat, "latency"), "expected a duration such as 200ms")
            return None
        ratio = f"1 - histogram_fraction(0, {seconds:g}, {_sum('rate', metric('total'), grouping)})"
        sr.put(sli, path, "raw", ratio, (*kat, "total", "metric"))
    else:
        gauge = str(k.get("metric", ""))
        sr.put(sli, path, "good", _sum("sum_over_time", gauge, grouping), (*kat, "metric"))
        sr.put(sli, path, "total", _sum("count_over_time", gauge, grouping), (*kat, "metric"))
    slo["sli"] = sli
    return sli


def _seconds(value: object) -> float | None:
    ms = parse_duration(value) if isinstance(value, str) else None
    return ms / 1000 if ms else None


def _alerting(sr: SpecReader, value: object, at: KeyPath, path: KeyPath) -> dict | bool:
    d = sr.fields(value, at, ("disabled", "burnrates", "absent", "name", "absentName", "severities"))
    if d.get("disabled") is True or d.get("burnrates") is False:
        return False
    if d.get("absent") is True or "absentName" in d:
        sr.skip((*at, "absent"), "Pyrra's absent alert: write a kind: absent alert for the total metric")
    out: dict = {}
    sr.origin(path, at)
    if "name" in d:
        sr.put(out, path, "name", d["name"], (*at, "name"))
    severities = sr.fields(d.get("severities"), (*at, "severities"), ("absent", *(s for _, p in TIERS for s in p)))
    for tier, pair in TIERS:  # a tier's two window pairs are Pyrra's two alerts of that tier
        chosen = {severities[s] for s in pair if s in severities}
        if len(chosen) > 1:
            sr.skip(
                (*at, "severities", pair[1]), f"the catalog's {tier} tier has one severity for {' and '.join(pair)}"
            )
        elif chosen:
            sr.put(out, path, tier, {"labels": {"severity": chosen.pop()}}, (*at, "severities", pair[0]))
    return out


FORMATS = [Format("Pyrra ServiceLevelObjective", is_slo, convert, drop_in=True)]
