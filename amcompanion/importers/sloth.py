"""Sloth specs → catalog SLOs: `prometheus/v1` spec files, `PrometheusServiceLevel` objects (sloth.slok.dev/v1)
and `AlertWindows` (github.com/slok/sloth, pkg/prometheus/api/v1, pkg/kubernetes/api/sloth/v1,
pkg/prometheus/alertwindows/v1).

An SLO compiles as Sloth generates it (`sloth generate`, its default 30d period): its rules keep Sloth's names
and labels, `sloth_mode`/`sloth_spec` name the input as Sloth does, and alerts carry no `alert_kind`. Sloth's
Go plugins have no equivalent, except the few whose effect the catalog can say (PLUGINS); the others are not
carried, with the reason.
"""

from collections.abc import Callable
from dataclasses import dataclass

from amcompanion.catalog.diagnostics import KeyPath
from amcompanion.catalog.names import LABEL_NAME
from amcompanion.importers import Conversion, Format
from amcompanion.importers.specs import SpecReader

API_VERSION = "sloth.slok.dev/v1"


@dataclass(frozen=True)
class Dialect:
    """The two spellings of one spec: prometheus/v1 files (snake_case) and the Kubernetes object (camelCase)."""

    mode: str  # sloth_mode and sloth_spec of its rules, as Sloth labels them
    spec: str
    spec_fields: tuple[str, ...]
    error_query: str
    total_query: str
    error_ratio_query: str
    page_alert: str
    ticket_alert: str
    slo_plugins: str


PROMETHEUS_V1 = Dialect(
    "cli-gen-prom",
    "prometheus/v1",
    ("version", "service", "labels", "slo_plugins", "slos"),
    "error_query",
    "total_query",
    "error_ratio_query",
    "page_alert",
    "ticket_alert",
    "slo_plugins",
)
KUBERNETES_V1 = Dialect(
    "cli-gen-k8s",
    API_VERSION,
    ("service", "labels", "sloPlugins", "slos"),
    "errorQuery",
    "totalQuery",
    "errorRatioQuery",
    "pageAlert",
    "ticketAlert",
    "sloPlugins",
)

CORE_RULES = {"sloth.dev/core/sli_rules/v1", "sloth.dev/core/metadata_rules/v1", "sloth.dev/core/alert_rules/v1"}
NO_EFFECT = {"sloth.dev/core/debug/v1", "sloth.dev/core/noop/v1", "sloth.dev/core/validate/v1", *CORE_RULES}
VICTORIA_METRICS = "sloth.dev/contrib/validate_victoria_metrics/v1"
DENOMINATOR_CORRECTED = "sloth.dev/contrib/denominator_corrected_rules/v1"


def is_spec(document: dict) -> bool:
    return document.get("version") == PROMETHEUS_V1.spec


def is_service_level(document: dict) -> bool:
    return document.get("apiVersion") == API_VERSION and document.get("kind") == "PrometheusServiceLevel"


def is_alert_windows(document: dict) -> bool:
    return document.get("apiVersion") == API_VERSION and document.get("kind") == "AlertWindows"


def convert_specs(documents: list[dict]) -> Conversion:
    """prometheus/v1 spec files: one group per spec, named after its service."""
    return _convert(documents, PROMETHEUS_V1, lambda sr, i, d: (str(d.get("service", "")), {}))


def convert_service_levels(documents: list[dict]) -> Conversion:
    """PrometheusServiceLevel objects: one group per object, named and with PrometheusRule metadata as the object
    (Sloth writes one PrometheusRule per PrometheusServiceLevel, with its name, namespace, labels, annotations)."""

    def group(sr: SpecReader, i: int, d: dict) -> tuple[str, dict]:
        meta = sr.fields(d.get("metadata"), sr.at(i, "metadata"), ("name", "namespace", "labels", "annotations"))
        sr.fields(d, sr.at(i), ("apiVersion", "kind", "metadata", "spec", "status"))
        return str(meta.get("name", "")), {
            k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta
        }

    return _convert(documents, KUBERNETES_V1, group)


def _convert(
    documents: list[dict], dialect: Dialect, naming: Callable[[SpecReader, int, dict], tuple[str, dict]]
) -> Conversion:
    """One group per spec; the rule groups are Sloth's."""
    sr = SpecReader(documents)
    groups: list[dict] = []
    used: set[str] = set()

    def new_group(name: str, metadata: dict, at: KeyPath) -> dict:
        base, n = name, 2
        while name in used:  # two specs of one service in one file
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        gpath: KeyPath = ("groups", len(groups))
        group: dict = {"name": name, "kind_label": False, "slos": []}
        sr.origin(gpath, at)
        if metadata:
            sr.put(group, gpath, "prometheus_rule", {**metadata, "name": name}, (*at[:-1], "metadata"))
        groups.append(group)
        return group

    for i, document in enumerate(documents):
        name, metadata = naming(sr, i, document)
        k8s = dialect is KUBERNETES_V1
        at = sr.at(i, "spec") if k8s else sr.at(i)
        spec = sr.fields(document.get("spec") if k8s else document, at, dialect.spec_fields)
        group = new_group(name or str(spec.get("service", "")), metadata, at)
        shared = _plugins(sr, spec.get(dialect.slo_plugins), (*at, dialect.slo_plugins))
        for j, item in enumerate(sr.items(spec.get("slos"), (*at, "slos"))):
            gpath = ("groups", groups.index(group), "slos", len(group["slos"]))
            slo = _slo(sr, item, (*at, "slos", j), gpath, dialect, spec, shared)
            if slo is not None:
                group["slos"].append(slo)
        if not spec.get("slos"):
            sr.skip((*at, "slos"), "a Sloth spec needs at least one SLO")
    sr.conversion.data["groups"] = groups
    return sr.conversion


def _slo(
    sr: SpecReader, item: object, at: KeyPath, path: KeyPath, dialect: Dialect, spec: dict, shared: "Plugins"
) -> dict | None:
    d = sr.fields(item, at, ("name", "description", "objective", "plugins", "labels", "sli", "alerting"))
    what = f"SLO {d.get('name', '?')}"
    plugins = shared.then(_plugins(sr, d.get("plugins"), (*at, "plugins")))
    if plugins.not_prometheus:
        sr.skip(at, "its plugins check MetricsQL (VictoriaMetrics); amcompanion compiles PromQL for Prometheus", what)
        return None
    sli_at = (*at, "sli")
    sli = sr.fields(d.get("sli"), sli_at, ("events", "raw", "plugin"))
    if "plugin" in sli:
        plugin = sli["plugin"].get("id") if isinstance(sli["plugin"], dict) else None
        sr.skip(
            (*sli_at, "plugin"),
            f'the SLI plugin "{plugin}" is Go code that Sloth runs; write the query it returns as sli.raw',
            what,
        )
        return None
    sr.origin(path, at)
    slo: dict = {}
    for key in ("name", "objective", "description"):
        if key in d:
            sr.put(slo, path, key, d[key], (*at, key))
    sr.put(slo, path, "service", spec.get("service"), (*at[:-2], "service"))
    labels = {**(spec.get("labels") or {}), **(d.get("labels") or {})}
    if labels:
        sr.put(slo, path, "labels", labels, (*at, "labels") if "labels" in d else (*at[:-2], "labels"))
    slo["sli"] = {}
    sr.origin((*path, "sli"), sli_at)
    if "events" in sli:
        events = sr.fields(sli["events"], (*sli_at, "events"), (dialect.error_query, dialect.total_query))
        for key, source in (("errors", dialect.error_query), ("total", dialect.total_query)):
            sr.put(slo["sli"], (*path, "sli"), key, events.get(source), (*sli_at, "events", source))
    if "raw" in sli:
        raw = sr.fields(sli["raw"], (*sli_at, "raw"), (dialect.error_ratio_query,))
        sr.put(slo["sli"], (*path, "sli"), "raw", raw.get(dialect.error_ratio_query), (*sli_at, "raw"))
    slo["alerting"] = _alerting(sr, d.get("alerting"), (*at, "alerting"), (*path, "alerting"), dialect)
    if dialect is not PROMETHEUS_V1:
        slo["info_labels"] = {"sloth_mode": dialect.mode, "sloth_spec": dialect.spec}
    plugins.apply(slo)
    sr.carried(path, at, what, "slo")
    return slo


def _alerting(sr: SpecReader, value: object, at: KeyPath, path: KeyPath, dialect: Dialect) -> dict | bool:
    """Sloth's alerting: absent, or both tiers disabled, is `alerting: false`."""
    if value is None:
        return False
    fields = ("name", "labels", "annotations", dialect.page_alert, dialect.ticket_alert)
    d = sr.fields(value, at, fields)
    sr.origin(path, at)
    out: dict = {}
    for key in ("name", "labels", "annotations"):
        if key in d:
            sr.put(out, path, key, d[key], (*at, key))
    for source, tier in ((dialect.page_alert, "page"), (dialect.ticket_alert, "ticket")):
        t = sr.fields(d.get(source), (*at, source), ("disable", "labels", "annotations"))
        if t.get("disable") is True:
            out[tier] = False
            continue
        out[tier] = {}
        sr.origin((*path, tier), (*at, source))
        for key in ("labels", "annotations"):
            if key in t:
                sr.put(out[tier], (*path, tier), key, t[key], (*at, source, key))
    return False if out["page"] is False and out["ticket"] is False else out


@dataclass
class Plugins:
    """What a plugin chain does to an SLO's catalog data, as far as the catalog can say it."""

    interval: object = None  # contrib rule_intervals: one interval for all three rule groups
    info_labels: dict | None = None  # contrib info_labels: labels on sloth_slo_info
    denominator_corrected: bool = False  # contrib denominator_corrected_rules
    not_prometheus: bool = False  # contrib validate_victoria_metrics: the queries are MetricsQL

    def then(self, other: "Plugins") -> "Plugins":
        """The SLO's own plugins after its spec's."""
        return Plugins(
            other.interval or self.interval,
            {**(self.info_labels or {}), **(other.info_labels or {})} or None,
            self.denominator_corrected or other.denominator_corrected,
            self.not_prometheus or other.not_prometheus,
        )

    def apply(self, slo: dict) -> None:
        if self.interval is not None:
            slo["interval"] = self.interval
        if self.info_labels:
            slo["info_labels"] = {**slo.get("info_labels", {}), **self.info_labels}
        if self.denominator_corrected:
            slo["sli"]["denominator_corrected"] = True


def _plugins(sr: SpecReader, value: object, at: KeyPath) -> Plugins:
    out = Plugins()
    d = sr.fields(value, at, ("overridePrevious", "chain"))
    chain = sr.items(d.get("chain"), (*at, "chain"))
    ids = {p.get("id") for p in chain if isinstance(p, dict)}
    if d.get("overridePrevious") and not ids >= CORE_RULES:
        sr.skip(
            (*at, "overridePrevious"),
            "replaces Sloth's default rule plugins; amcompanion always writes the SLI, metadata and alert rules",
        )
    for k, plugin in enumerate(chain):
        pat = (*at, "chain", k)
        p = sr.fields(plugin, pat, ("id", "config", "priority"))
        config = p.get("config") if isinstance(p.get("config"), dict) else {}
        pid = p.get("id")
        if pid == "sloth.dev/core/debug/v1" or (pid in NO_EFFECT and not config):
            continue  # logs, checks, or writes the rules amcompanion writes anyway
        if pid in NO_EFFECT or (pid == DENOMINATOR_CORRECTED and config):
            sr.skip((*pat, "config"), "changes how Sloth writes its rules; amcompanion writes them Sloth's default way")
        elif pid == DENOMINATOR_CORRECTED:
            out.denominator_corrected = True
        elif pid == VICTORIA_METRICS:
            out.not_prometheus = True
        elif pid == "sloth.dev/contrib/rule_intervals/v1":
            intervals = config.get("interval") if isinstance(config.get("interval"), dict) else {}
            if set(intervals.values()) == {intervals.get("default")}:
                out.interval = intervals["default"]
            else:
                sr.skip((*pat, "config", "interval"), "the catalog has one interval for all three rule groups")
        elif pid == "sloth.dev/contrib/info_labels/v1":
            out.info_labels = _info_labels(sr, config, (*pat, "config"))
        else:
            sr.skip(pat, f'the plugin "{pid}" is Go code that Sloth runs; amcompanion has no equivalent')
    return out


def _info_labels(sr: SpecReader, config: object, at: KeyPath) -> dict:
    d = sr.fields(config, at, ("labels", "metricName"))
    if d.get("metricName", "sloth_slo_info") != "sloth_slo_info":
        sr.skip((*at, "metricName"), "the catalog's info_labels go on sloth_slo_info")
        return {}
    labels = d.get("labels") if isinstance(d.get("labels"), dict) else {}
    for name in labels:
        if not LABEL_NAME.match(str(name)):
            sr.skip((*at, "labels", name), f'"{name}" is not a valid Prometheus label name (promtool rejects it)')
    return {k: v for k, v in labels.items() if LABEL_NAME.match(str(k))}


def convert_alert_windows(documents: list[dict]) -> Conversion:
    """AlertWindows: `alert_windows` entries, named by `metadata.name` if given (else by their file's name)."""
    sr = SpecReader(documents)
    entries = []
    for i, document in enumerate(documents):
        sr.fields(document, sr.at(i), ("apiVersion", "kind", "metadata", "spec"))
        meta = sr.fields(document.get("metadata"), sr.at(i, "metadata"), ("name", "labels", "annotations"))
        spec = sr.fields(document.get("spec"), sr.at(i, "spec"), ("sloPeriod", "page", "ticket"))
        path: KeyPath = ("alert_windows", i)
        entry: dict = {}
        sr.origin(path, sr.at(i, "spec"))
        if "name" in meta:
            sr.put(entry, path, "name", meta["name"], sr.at(i, "metadata", "name"))
        sr.put(entry, path, "period", spec.get("sloPeriod"), sr.at(i, "spec", "sloPeriod"))
        for tier in ("page", "ticket"):
            t = sr.fields(spec.get(tier), sr.at(i, "spec", tier), ("quick", "slow"))
            entry[tier] = {}
            sr.origin((*path, tier), sr.at(i, "spec", tier))
            for speed in ("quick", "slow"):
                at = sr.at(i, "spec", tier, speed)
                w = sr.fields(t.get(speed), at, ("errorBudgetPercent", "shortWindow", "longWindow"))
                pair: dict = {}
                sr.origin((*path, tier, speed), at)
                for key, source in WINDOW_FIELDS:
                    sr.put(pair, (*path, tier, speed), key, w.get(source), (*at, source))
                entry[tier][speed] = pair
        entries.append(entry)
    sr.conversion.data["alert_windows"] = entries
    return sr.conversion


WINDOW_FIELDS = (
    ("budget_percent", "errorBudgetPercent"),
    ("short_window", "shortWindow"),
    ("long_window", "longWindow"),
)

ALERT_WINDOWS = Format("Sloth AlertWindows", is_alert_windows, convert_alert_windows, drop_in=True)
FORMATS = [
    Format("Sloth prometheus/v1 spec", is_spec, convert_specs, drop_in=True),
    Format("Sloth PrometheusServiceLevel", is_service_level, convert_service_levels, drop_in=True),
    ALERT_WINDOWS,
]
