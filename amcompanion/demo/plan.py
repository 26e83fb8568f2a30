"""The demo's catalog: the one it plays with its waiting times compressed and every address on loopback.

Pure functions from a catalog to a catalog: the demo then compiles the result with the ordinary compiler,
so what runs is what `amcompanion compile` would write, only faster and local.
"""

import copy
import dataclasses
import hashlib
from collections.abc import Iterator, Mapping

from amcompanion.catalog.durations import format_duration, parse_duration
from amcompanion.catalog.model import Catalog, Person
from amcompanion.receiver.config import token_digest

MIN_MS = 100  # Alertmanager and Prometheus tick no faster than this is useful
MIN_SLA_MS = 1000  # the history counts in whole seconds
# What Alertmanager waits where a catalog sets nothing: sped up like the rest
ALERTMANAGER_DEFAULTS = {"group_wait": 30_000, "group_interval": 5 * 60_000, "repeat_interval": 4 * 3600_000}
PROMETHEUS_EVALUATION_INTERVAL_MS = 60_000  # Prometheus's default global evaluation_interval


def compress(catalog: Catalog, speed: int) -> Catalog:
    """A copy in which every time a person waits on passes `speed` times faster: `for`, evaluation intervals,
    Alertmanager's group_wait, group_interval and repeat_interval (its defaults too, where the catalog sets
    none), escalation steps and repeats, severity escalations, SLA targets and self_monitoring.channel_failing_for
    (the receiver's other alerts have `for`s of their own, which the catalog does not set). PromQL ranges
    (rate(x[5m]), lookbacks, SLO windows) keep their length: they define what is measured, not how long anyone
    waits. Routes lose their quiet and active hours: those are times of the wall clock, which no speed shortens,
    and the demo pages now."""
    out = copy.deepcopy(catalog)

    def fast(ms: int, least: int = MIN_MS) -> int:
        return max(least, ms // speed) if ms else 0

    d = out.defaults
    # Groups with no interval of their own get one here: Prometheus's global 1m would not be sped up.
    d.for_ms, d.interval_ms = fast(d.for_ms), fast(d.interval_ms or PROMETHEUS_EVALUATION_INTERVAL_MS)
    for key, timings in (
        ("group_wait", d.group_wait),
        ("group_interval", d.group_interval),
        ("repeat_interval", d.repeat_interval),
    ):
        timings.setdefault("*", ALERTMANAGER_DEFAULTS[key])
        timings.update({severity: fast(ms) for severity, ms in timings.items()})
    if d.sla is not None:
        d.sla = {s: (fast(ack, MIN_SLA_MS), fast(resolve, MIN_SLA_MS)) for s, (ack, resolve) in d.sla.items()}
    for group in out.groups:
        group.interval_ms = fast(group.interval_ms or PROMETHEUS_EVALUATION_INTERVAL_MS)
        for alert in group.alerts:
            alert.for_ms = fast(alert.for_ms)
            if alert.escalate is not None:
                alert.escalate = dataclasses.replace(alert.escalate, after_ms=fast(alert.escalate.after_ms))
        for slo in group.slos:
            slo.alert_for_ms = fast(slo.alert_for_ms)
    out.self_monitoring.channel_failing_for_ms = fast(out.self_monitoring.channel_failing_for_ms)
    for policy in out.policies.values():
        for step in policy.steps:
            step.after_ms = fast(step.after_ms)
        if policy.repeat_every_ms is not None:
            policy.repeat_every_ms = fast(policy.repeat_every_ms)
    for route in out.routes:
        for key, value in route.overrides.items():
            ms = parse_duration(value) if isinstance(value, str) else None
            if ms is not None:
                route.overrides[key] = format_duration(fast(ms))
        route.quiet_hours, route.active_hours = [], []
    return out


def on_loopback(
    catalog: Catalog,
    receiver_url: str,
    token_file: str,
    channel_urls: Mapping[str, str],
    person_tokens: Mapping[str, str] | None = None,
) -> Catalog:
    """A copy that reaches nothing beyond this machine: Alertmanager posts to the receiver at `receiver_url`
    (its ack links point there too), every channel talks to its stand-in at `channel_urls[name]`, and routes
    to native Alertmanager receivers (e-mail through a real relay, say) get an empty receiver instead, as does
    self_monitoring's. Each contact of `person_tokens` signs in to the console with their token there."""
    out = copy.deepcopy(catalog)
    for name, token in (person_tokens or {}).items():
        person = out.people.get(name, Person())
        out.people[name] = dataclasses.replace(person, token_sha256=token_digest(token), token_env=None)
    out.receiver.url = out.receiver.external_url = receiver_url
    out.receiver.bearer_token_file = token_file
    for name, settings in out.channels.items():
        settings["base_url"] = channel_urls[name]
        if settings["type"] == "email":
            settings["starttls"] = False  # the stand-in relay speaks plain SMTP on loopback
    for route in out.routes:
        if route.native is not None:
            route.native = {}
    if out.self_monitoring.native is not None:
        out.self_monitoring.native = {}
    return out


class Placeholders(Mapping[str, str]):
    """The environment the demo's receiver reads `${VAR}`s from: any variable has a made-up value (the stand-ins
    are built from the filled-in settings, so they expect exactly these tokens and secrets)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __getitem__(self, name: str) -> str:
        """32 letters and digits: a shape every service's fake takes for a key (PagerDuty's routing key is checked)."""
        return "demo" + hashlib.sha256(name.encode()).hexdigest()[:28]

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
