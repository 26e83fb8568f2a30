"""OpenSLO SLOs → catalog SLOs: `openslo/v1alpha` as Sloth reads it (internal/storage/io/openslo.go), and
`openslo/v1` SLO and SLI objects (github.com/OpenSLO/OpenSLO).

v1alpha, as Sloth: every objective is an SLO named `<name>-<index>`, its ratioMetrics' good/total queries use
`{{.window}}`, the period is `timeWindows[0].count` days (30d without one), and there are no alerts. v1: one SLO
per objective (`<name>-<index>` when there are several), its indicator inline or an SLI of the same file;
a query without `{{window}}` is a counter selector (rated over each window) or a gauge (summed over it).
Neither version's alert policies, time slices or calendar windows have an equivalent; they are not carried.
"""

import re

import promql_parser

from amcompanion.catalog.diagnostics import KeyPath
from amcompanion.catalog.names import LABEL_NAME, WINDOW_PLACEHOLDER
from amcompanion.importers import Conversion, Format
from amcompanion.importers.specs import SpecReader

METADATA = ("name", "displayName", "labels", "annotations")
V1_KINDS = ("SLO", "SLI", "Service", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget")
V1_SLO_FIELDS = (
    "description",
    "service",
    "indicator",
    "indicatorRef",
    "timeWindow",
    "budgetingMethod",
    "objectives",
    "alertPolicies",
)
DURATION = re.compile(r"^(\d+)([mhdw])$")  # the shorthands of fixed length (M, Q and Y are not)


def is_v1alpha(document: dict) -> bool:
    return document.get("apiVersion") == "openslo/v1alpha" and document.get("kind") == "SLO"


def is_v1(document: dict) -> bool:
    return document.get("apiVersion") == "openslo/v1" and document.get("kind") in V1_KINDS


def _group(sr: SpecReader, i: int, meta: dict, spec_at: KeyPath) -> tuple[dict, KeyPath]:
    """A document's group, named after it."""
    groups = sr.conversion.data.setdefault("groups", [])
    path: KeyPath = ("groups", len(groups))
    group = {"name": meta.get("name"), "kind_label": False, "slos": []}
    sr.origin(path, spec_at)
    sr.origin((*path, "name"), sr.at(i, "metadata", "name"))
    groups.append(group)
    return group, path


def _slo(
    sr: SpecReader, group: dict, gpath: KeyPath, version: str, fields: dict[str, tuple[object, KeyPath]]
) -> tuple[dict, KeyPath]:
    """A catalog SLO of `group` from (value, source path) pairs, without alerts (Sloth's OpenSLO SLOs have none),
    labelled as Sloth labels an SLO of `version`."""
    path = (*gpath, "slos", len(group["slos"]))
    slo: dict = {}
    for key, (value, at) in fields.items():
        sr.put(slo, path, key, value, at)
    slo["info_labels"] = {"sloth_mode": "cli-gen-openslo", "sloth_spec": version}
    slo["alerting"] = False
    slo["sli"] = {}
    group["slos"].append(slo)
    return slo, path


def convert_v1alpha(documents: list[dict]) -> Conversion:
    sr = SpecReader(documents)
    for i, document in enumerate(documents):
        sr.fields(document, sr.at(i), ("apiVersion", "kind", "metadata", "spec"))
        meta = sr.fields(document.get("metadata"), sr.at(i, "metadata"), METADATA)
        spec_at = sr.at(i, "spec")
        spec = sr.fields(
            document.get("spec"),
            spec_at,
            ("service", "description", "budgetingMethod", "objectives", "timeWindows", "indicator"),
        )
        group, gpath = _group(sr, i, meta, spec_at)
        window = _v1alpha_window(sr, spec.get("timeWindows"), (*spec_at, "timeWindows"))
        _budgeting(sr, spec.get("budgetingMethod"), (*spec_at, "budgetingMethod"))
        for k, objective in enumerate(sr.items(spec.get("objectives"), (*spec_at, "objectives"))):
            oat = (*spec_at, "objectives", k)
            o = sr.fields(objective, oat, ("displayName", "op", "value", "target", "timeSliceTarget", "ratioMetrics"))
            if "ratioMetrics" not in o:
                sr.skip(oat, "only ratioMetrics objectives have an equivalent (as in Sloth)")
                continue
            ratio_at = (*oat, "ratioMetrics")
            ratio = sr.fields(o["ratioMetrics"], ratio_at, ("incremental", "good", "total"))
            queries = {}
            for key in ("good", "total"):
                q = sr.fields(ratio.get(key), (*ratio_at, key), ("source", "queryType", "query", "metadata"))
                if q.get("source") not in ("prometheus", "sloth") or q.get("queryType") != "promql":
                    sr.skip((*ratio_at, key), "a prometheus (or sloth) promql query is needed (as in Sloth)")
                queries[key] = (q.get("query"), (*ratio_at, key, "query"))
            slo, path = _slo(
                sr,
                group,
                gpath,
                "openslo/v1alpha",
                {
                    "name": (f"{meta.get('name')}-{k}", sr.at(i, "metadata", "name")),
                    "service": (spec.get("service"), (*spec_at, "service")),
                    "objective": (_percent(o.get("target")), (*oat, "target")),
                    **(
                        {"description": (spec["description"], (*spec_at, "description"))}
                        if "description" in spec
                        else {}
                    ),
                    **({"window": window} if window else {}),
                },
            )
            for key, (query, at) in queries.items():
                sr.put(slo["sli"], (*path, "sli"), key, query, at)
    return sr.conversion


def _percent(target: object) -> object:
    """OpenSLO's target ratio as the catalog's percentage, computed as Sloth does (`target * 100`)."""
    return target * 100 if isinstance(target, int | float) and not isinstance(target, bool) else target


def _v1alpha_window(sr: SpecReader, value: object, at: KeyPath) -> tuple[str, KeyPath] | None:
    if not value:
        return None
    if not isinstance(value, list) or len(value) != 1:
        sr.skip(at, "exactly one time window is needed (as in Sloth)")
        return None
    w = sr.fields(value[0], (*at, 0), ("unit", "count", "isRolling", "calendar"))
    if str(w.get("unit", "")).lower() != "day" or "calendar" in w:
        sr.skip((*at, 0), "only rolling windows of whole days have an equivalent (as in Sloth)")
        return None
    return f"{w.get('count')}d", (*at, 0, "count")


def _budgeting(sr: SpecReader, method: object, at: KeyPath) -> None:
    if method not in (None, "Occurrences"):
        sr.skip(at, f"{method} budgeting: amcompanion counts occurrences (events), not time slices")


def convert_v1(documents: list[dict]) -> Conversion:
    sr = SpecReader(documents)
    slis = {}
    for i, document in enumerate(documents):
        if document.get("kind") == "SLI":
            meta = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
            slis[meta.get("name")] = (document.get("spec"), sr.at(i, "spec"))
    for i, document in enumerate(documents):
        kind = document.get("kind")
        sr.fields(document, sr.at(i), ("apiVersion", "kind", "metadata", "spec"))
        if kind == "SLO":
            _v1_slo(sr, i, document, slis)
        elif kind in ("AlertPolicy", "AlertCondition", "AlertNotificationTarget"):
            sr.skip(sr.at(i), f"an OpenSLO {kind}: the catalog's burn-rate alerts (alerting) are its own")
    return sr.conversion


def _v1_slo(sr: SpecReader, i: int, document: dict, slis: dict) -> None:
    meta = sr.fields(document.get("metadata"), sr.at(i, "metadata"), METADATA)
    spec_at = sr.at(i, "spec")
    spec = sr.fields(
        document.get("spec"),
        spec_at,
        V1_SLO_FIELDS,
    )
    _budgeting(sr, spec.get("budgetingMethod"), (*spec_at, "budgetingMethod"))
    if spec.get("alertPolicies"):
        sr.skip((*spec_at, "alertPolicies"), "the catalog's burn-rate alerts (alerting) are its own")
    if "indicator" in spec:
        indicator = sr.fields(spec["indicator"], (*spec_at, "indicator"), ("metadata", "spec"))
        sli_spec, sli_at = indicator.get("spec"), (*spec_at, "indicator", "spec")
    elif spec.get("indicatorRef") in slis:
        sli_spec, sli_at = slis[spec["indicatorRef"]]
    else:
        sr.skip((*spec_at, "indicatorRef"), f'the SLI "{spec.get("indicatorRef")}" is not in this file')
        return
    sli = _v1_sli(sr, sli_spec, sli_at)
    window = _v1_window(sr, spec.get("timeWindow"), (*spec_at, "timeWindow"))
    labels = _v1_labels(sr, meta.get("labels"), sr.at(i, "metadata", "labels"))
    objectives = sr.items(spec.get("objectives"), (*spec_at, "objectives"))
    if not objectives:
        sr.skip((*spec_at, "objectives"), "an SLO needs an objective")
    group, gpath = _group(sr, i, meta, spec_at)
    for k, objective in enumerate(objectives):
        oat = (*spec_at, "objectives", k)
        o = sr.fields(objective, oat, ("displayName", "op", "value", "target", "targetPercent", "timeSliceTarget"))
        if sli is None:
            continue
        target = (
            ("targetPercent", o["targetPercent"]) if "targetPercent" in o else ("target", _percent(o.get("target")))
        )
        name = meta.get("name") if len(objectives) == 1 else f"{meta.get('name')}-{k}"
        slo, path = _slo(
            sr,
            group,
            gpath,
            "openslo/v1",
            {
                "name": (name, sr.at(i, "metadata", "name")),
                "service": (spec.get("service"), (*spec_at, "service")),
                "objective": (target[1], (*oat, target[0])),
                **({"description": (spec["description"], (*spec_at, "description"))} if "description" in spec else {}),
                **({"window": window} if window else {}),
                **({"labels": (labels, sr.at(i, "metadata", "labels"))} if labels else {}),
            },
        )
        for key, (query, at) in sli.items():
            sr.put(slo["sli"], (*path, "sli"), key, query, at)
    if not group["slos"]:
        sr.conversion.data["groups"].remove(group)


def _v1_sli(sr: SpecReader, value: object, at: KeyPath) -> dict[str, tuple[str, KeyPath]] | None:
    """The catalog SLI (errors/good + total, or raw) of an OpenSLO ratioMetric, with where each query was."""
    spec = sr.fields(value, at, ("description", "thresholdMetric", "ratioMetric"))
    if "ratioMetric" not in spec:
        sr.skip(at, "only ratioMetric indicators have an equivalent (a threshold needs a ratio of events)")
        return None
    rat = (*at, "ratioMetric")
    ratio = sr.fields(spec["ratioMetric"], rat, ("counter", "good", "bad", "total", "rawType", "raw"))
    counter = ratio.get("counter") is True
    queries = {key: _v1_query(sr, ratio[key], (*rat, key)) for key in ("good", "bad", "total", "raw") if key in ratio}
    if None in queries.values():
        return None
    if "raw" in queries:
        query, qat = queries["raw"]
        ratio_of = query if WINDOW_PLACEHOLDER.search(query) else f"avg_over_time(({query})[{{{{window}}}}:])"
        error_ratio = ratio_of if ratio.get("rawType") == "failure" else f"1 - ({ratio_of})"
        return {"raw": (error_ratio, qat)}
    out = {}
    for source, key in (("good", "good"), ("bad", "errors"), ("total", "total")):
        if source in queries:
            query, qat = queries[source]
            windowed = _windowed(query, counter)
            if windowed is None:
                sr.skip(qat, "a counter query other than a series selector cannot be rated: write it with {{window}}")
                return None
            out[key] = (windowed, qat)
    return out


def _v1_query(sr: SpecReader, value: object, at: KeyPath) -> tuple[str, KeyPath] | None:
    source = sr.fields(value, at, ("metricSource",))
    ms_at = (*at, "metricSource")
    ms = sr.fields(source.get("metricSource"), ms_at, ("metricSourceRef", "type", "spec"))
    query = ms.get("spec", {}).get("query") if isinstance(ms.get("spec"), dict) else None
    if str(ms.get("type", "Prometheus")).lower() != "prometheus" or not isinstance(query, str):
        sr.skip(ms_at, "a Prometheus metric source with spec.query is needed")
        return None
    return query.strip(), (*ms_at, "spec", "query")


def _windowed(query: str, counter: bool) -> str | None:
    """The query over `{{window}}`: as written if it says where; a counter selector rated; a gauge summed."""
    if WINDOW_PLACEHOLDER.search(query):
        return query
    if not counter:
        return f"sum(sum_over_time(({query})[{{{{window}}}}:]))"
    try:
        selector = isinstance(promql_parser.parse(query), promql_parser.VectorSelector)
    except ValueError:
        return None
    return f"sum(rate({query}[{{{{window}}}}]))" if selector else None


def _v1_window(sr: SpecReader, value: object, at: KeyPath) -> tuple[str, KeyPath] | None:
    if not value:
        return None
    if not isinstance(value, list) or len(value) != 1:
        sr.skip(at, "exactly one time window is needed")
        return None
    w = sr.fields(value[0], (*at, 0), ("duration", "isRolling", "calendar"))
    duration = str(w.get("duration", ""))
    if "calendar" in w or w.get("isRolling") is False or not DURATION.match(duration):
        sr.skip((*at, 0), "only rolling windows of a fixed length (m, h, d, w) have an equivalent")
        return None
    return duration, (*at, 0, "duration")


def _v1_labels(sr: SpecReader, value: object, at: KeyPath) -> dict[str, str]:
    """OpenSLO labels that are Prometheus labels: a valid name and one value."""
    out = {}
    for name, label in (value if isinstance(value, dict) else {}).items():
        if LABEL_NAME.match(str(name)) and isinstance(label, str):
            out[str(name)] = label
        else:
            sr.skip((*at, name), "not a Prometheus label (a valid name with one string value)")
    return out


FORMATS = [
    Format("OpenSLO v1alpha SLO", is_v1alpha, convert_v1alpha, drop_in=True),
    Format("OpenSLO v1 objects", is_v1, convert_v1, drop_in=True),
]
