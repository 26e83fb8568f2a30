"""promtool unit tests that prove every generated alert fires at its level and stays silent below it.

An alert with a query is tested through that query: the test feeds the metrics it reads (`proof.synthesize`
chooses them so the query lands just short of each level, then just past it) and states, at chosen evaluation
times, exactly which alerts fire with which labels and annotations. What is expected comes from evaluating
every rule of the alert's name over the test's inputs, as Prometheus does (`proof.evaluate`), and simulating
its `for` bookkeeping; promtool then checks that the real rules agree, so a changed query fails its tests.
Composites drive their members' ALERTS series, absent alerts their selector, SLOs their SLI ratios; an alert
whose query cannot be driven is tested from its catalog `examples:`, or reported as unproven.
"""

import functools
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import promql_parser

from amcompanion.catalog import promql
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import Alert, Group
from amcompanion.compiler import gotemplate
from amcompanion.compiler.rules import AlertRule, input_name, needs_input_rule, recording_rules, signal_expr
from amcompanion.compiler.slo import SLOPlan, error_budget, sloth_labels
from amcompanion.proof import tree
from amcompanion.proof.evaluate import NAME, Inputs, Labels, over_steps, with_records
from amcompanion.proof.synthesize import Case, Unprovable, prove

LEVEL_WORDS = {">": "above", "<": "below", ">=": "at least", "<=": "at most", "==": "equal to", "!=": "not equal to"}
Runs = list[tuple[float | None, int]]  # (value, samples in a row), one sample per interval; None: no sample


@dataclass
class Expectation:
    """An alert rule as the simulator sees it: when its condition holds and what it fires with."""

    for_ms: int
    labels: dict[str, str]  # rule labels (templates allowed)
    annotations: dict[str, str]
    holds: list[tuple[bool, int]]  # runs: (does the condition hold, for how many samples)
    value: Callable[[int], float]
    series_labels: dict[str, str]  # what `$labels` is in its templates
    keep_ms: int = 0  # keep_firing_for
    rendered: dict[float, dict | None] = field(default_factory=dict)  # by $value: the expected alert
    # by $value: rendered annotations, shared by the rules of one alert (same templates, same series)
    rendered_annotations: dict[float, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._states: dict[int, list[int | None]] = {}
        self.templated_labels = any("{{" in v for v in self.labels.values())
        merged: list[tuple[bool, int]] = []  # so that a run starts where the condition began to hold
        for now, length in self.holds:
            if merged and merged[-1][0] == now:
                merged[-1] = (now, merged[-1][1] + length)
            else:
                merged.append((now, length))
        self.holds = merged

    def firing_at(self, index: int, interval_ms: int) -> bool:
        """Prometheus fires once the condition has held since ActiveAt for at least `for`, and with
        `keep_firing_for` goes on firing that long after it stopped holding."""
        return self.source_at(index, interval_ms) is not None

    def source_at(self, index: int, interval_ms: int) -> int | None:
        """The evaluation whose value the alert fires with at `index` (itself, or the last that held while it
        keeps firing); None when it does not fire."""
        if not self.keep_ms:
            start = 0
            for now, length in self.holds:
                if index < start + length:
                    return index if now and (index - start) * interval_ms >= self.for_ms else None
                start += length
            return None
        states = self._states.get(interval_ms)
        if states is None:
            states = self._states[interval_ms] = self._simulate(interval_ms)
        return states[index] if index < len(states) else None

    def _simulate(self, interval_ms: int) -> list[int | None]:
        out: list[int | None] = []
        active_at = keep_since = last = None
        firing = False
        step = 0
        for now, length in self.holds:
            for _ in range(length):
                t = step * interval_ms
                if now:
                    active_at = t if active_at is None else active_at
                    keep_since, last = None, step
                    firing = firing or t - active_at >= self.for_ms
                elif firing:  # kept firing, with the value it last held with, until keep_firing_for is over
                    keep_since = t if keep_since is None else keep_since
                    if t - keep_since >= self.keep_ms:
                        active_at = keep_since = None
                        firing = False
                else:
                    active_at = None
                out.append(last if firing else None)
                step += 1
        return out

    def expected(self, value: float) -> dict | None:
        """The alert as promtool reports it for `$value`; None when a template is beyond gotemplate."""
        if value not in self.rendered:
            try:
                labels = (
                    {k: gotemplate.render(v, self.series_labels, value) for k, v in self.labels.items()}
                    if self.templated_labels
                    else self.labels
                )
                annotations = self.rendered_annotations.get(value)
                if annotations is None:
                    annotations = {
                        k: gotemplate.render(v, self.series_labels, value) for k, v in self.annotations.items()
                    }
                    self.rendered_annotations[value] = annotations
            except gotemplate.Unsupported:
                self.rendered[value] = None
            else:
                alert: dict = {"exp_labels": dict(sorted({**self.series_labels, **labels}.items()))}
                if annotations:
                    alert["exp_annotations"] = dict(sorted(annotations.items()))
                self.rendered[value] = alert
        return self.rendered[value]


def series_string(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def values_string(runs: Runs) -> str:
    """promtool's expanding notation: `_xN` is N missing samples, `VxN` is N+1 samples of V."""
    parts = []
    for value, same in itertools.groupby(runs, key=lambda run: run[0]):
        count = sum(length for _, length in same)
        if value is None:
            parts.append(f"_x{count}")
        else:
            text = repr(float(value)) if value != int(value) else str(int(value))
            parts.append(f"{text}x{count - 1}" if count > 1 else text)
    return " ".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def values_notation(values: Sequence[float | None]) -> str:
    """promtool's notation for one value per step: `_xN` gaps, `VxN` repeats and `A+DxN` progressions, the
    latter only where promtool's repeated addition gives back exactly these floats."""
    parts, i = [], 0
    while i < len(values):
        value = values[i]
        j = i + 1
        if value is None:
            while j < len(values) and values[j] is None:
                j += 1
            parts.append(f"_x{j - i}")
        else:
            step = values[j] - value if j < len(values) and values[j] is not None else None  # type: ignore[operator]
            current = value
            while step is not None and j < len(values) and values[j] is not None and current + step == values[j]:
                current += step
                j += 1
            if j - i == 1:
                parts.append(_number(value))
            elif step == 0:
                parts.append(f"{_number(value)}x{j - i - 1}")
            else:
                sign = "+" if step >= 0 else "-"  # type: ignore[operator]
                parts.append(f"{_number(value)}{sign}{_number(abs(step))}x{j - i - 1}")  # type: ignore[arg-type]
        i = j
    return " ".join(parts)


def sample_count(notation: str) -> int:
    """How many samples promtool's notation expands to (`_x3` 3, `1x3` and `0+1x3` 4)."""
    count = 0
    for token in notation.split():
        times = token.rsplit("x", 1)
        repeat = int(times[1]) if len(times) == 2 and times[1].isdigit() else None
        count += 1 if repeat is None else repeat if token.startswith("_") else repeat + 1
    return count


def expected_alerts(exps: Sequence[Expectation], index: int, interval_ms: int) -> list[dict] | None:
    """The alerts firing at `index`; None when a template is beyond what can be rendered here."""
    alerts = []
    for exp in exps:
        source = exp.source_at(index, interval_ms)
        if source is not None:
            alert = exp.expected(exp.value(source))
            if alert is None:
                return None
            alerts.append(alert)
    return sorted(alerts, key=lambda a: sorted(a["exp_labels"].items()))


def alert_checks(name: str, exps: Sequence[Expectation], indexes: Sequence[int], interval_ms: int) -> dict:
    """alert_rule_test entries, or ALERTS-series checks when annotations cannot be rendered here."""
    rule_tests = []
    for index in sorted(set(indexes)):
        alerts = expected_alerts(exps, index, interval_ms)
        if alerts is None:
            return {
                "promql_expr_test": [_alerts_series_check(name, exps, i, interval_ms) for i in sorted(set(indexes))]
            }
        rule_tests.append({"eval_time": format_duration(index * interval_ms), "alertname": name, "exp_alerts": alerts})
    return {"alert_rule_test": rule_tests}


def _alerts_series_check(name: str, exps: Sequence[Expectation], index: int, interval_ms: int) -> dict:
    samples = []
    for exp in exps:
        if exp.firing_at(index, interval_ms):
            labels = {**exp.series_labels, **exp.labels, "alertname": name, "alertstate": "firing"}
            samples.append({"labels": series_string("ALERTS", labels), "value": 1})
    return {
        "expr": f'ALERTS{{alertname="{name}", alertstate="firing"}}',
        "eval_time": format_duration(index * interval_ms),
        "exp_samples": sorted(samples, key=lambda s: s["labels"]),
    }


def test_labels(names: set[str] | list[str]) -> dict[str, str]:
    return {name: f"{name}-1" for name in sorted(names)}


def steps_for(for_ms: int, interval_ms: int) -> int:
    """Samples in one phase: enough for the longest `for` to elapse, plus one."""
    return math.ceil(for_ms / interval_ms) + 2


def round_size(steps: int) -> int:
    """Alerts share a round when their `for` needs a similar number of steps: 8, 10, 12, 14, 16, 20, 24, 28,
    32, 40, ... (at most a quarter more than one needs), so one long `for` does not lengthen every alert's test."""
    size, grain = 8, 2
    while size < steps:
        size += grain
        if size == 4 * grain * 2:
            grain *= 2
    return size


@functools.lru_cache(maxsize=1024)
def neighbours(level: float) -> tuple[float, float]:
    """Readable values just under and over a level, one unit of its last digit away (512 → 511, 513;
    80 → 79, 81; 0.05 → 0.049, 0.051): a level edited by hand by that much fails the test."""
    exact = Decimal(repr(level))
    if not level:
        return -1.0, 1.0
    place = min(exact.adjusted() - 1, exact.normalize().as_tuple().exponent)  # type: ignore[operator]
    step = Decimal(1).scaleb(place)
    return float(exact - step), float(exact + step)


class GroupTests:
    """The tests of one rule group file."""

    def __init__(
        self,
        group: Group,
        interval_ms: int,
        all_alerts: dict[str, Alert],
        longest_slo_for_ms: int,
        sample_ms: int | None = None,
        group_rules: Sequence[AlertRule] = (),
    ):
        """Rules are evaluated every `interval_ms`; the inputs of queries are sampled every `sample_ms` (a
        divisor of it, fine enough for their windows), the other tests' series at each evaluation. `group_rules`
        are all the alerting rules of the group's file, whichever test file their own alerts are tested in:
        promtool evaluates them all, so what fires under a name comes from all the rules of that name."""
        self.group = group
        self.interval = interval_ms
        self.sample_ms = sample_ms or interval_ms
        self.every = interval_ms // self.sample_ms
        self.all_alerts = all_alerts
        self.untested: list[str] = []  # alerts whose expression returns series with no input at all
        self.unproven: list[tuple[str, str]] = []  # alerts whose query could not be driven, and why
        # Alerts share test cases ("rounds"): promtool evaluates every rule of the file at every step of every
        # test, so one round for many alerts beats one test per alert.
        self.slo_phase = steps_for(longest_slo_for_ms, interval_ms)
        self.rounds: dict[str, list[dict]] = {}
        self.composite_names: dict[str, list[set[str]]] = {}  # per round family: alerts each round involves
        self.rules_by_name: dict[str, list[AlertRule]] = {}
        for rule in group_rules:
            self.rules_by_name.setdefault(rule.alert.name, []).append(rule)
        self.named_by_group = bool(group_rules)
        self.example_tests: list[dict] = []
        self.query_cases: list[tuple[Alert, str, Case]] = []  # placed in rounds when the document is made
        self.recording_texts = [(rule["record"], rule["expr"]) for a in group.alerts for rule in recording_rules(a)]
        self.recordings = [
            (name, node) for name, text in self.recording_texts if not isinstance(node := tree.parse(text), str)
        ]

    def _round(self, family: str, index: int) -> dict:
        rounds = self.rounds.setdefault(family, [])
        while len(rounds) <= index:
            rounds.append(
                {"titles": [], "series": [], "alerts": {}, "evaluate": {}, "inputs": [], "metrics": set(), "cases": {}}
            )
        return rounds[index]

    def add_to_round(
        self,
        family: str,
        index: int,
        title: str,
        series: list[tuple[str, Runs]],
        name: str,
        exps: Sequence[Expectation],
        indexes: Sequence[int],
    ) -> None:
        """Add an alert's series and expectations to a round. The checks are made when the document is: the
        variants of one alert name in a round are checked together, at every time any of them is checked."""
        found = self._round(family, index)
        found["titles"].append(title)
        found["series"] += [(text, values_string(runs)) for text, runs in series]
        all_exps, all_indexes = found["alerts"].setdefault(name, ([], []))
        all_exps.extend(exps)
        all_indexes.extend(indexes)

    def alert(self, alert: Alert, rules: list[AlertRule]) -> None:
        if not self.named_by_group:
            self.rules_by_name.setdefault(alert.name, []).extend(rules)
        self.examples(alert)
        # The catalog's own expressions (already parsed once) decide; the signal only wraps them.
        written = [e for e in (alert.expr, alert.errors, alert.total) if e]
        if alert.kind == "absent":
            self.absent(alert, rules, alert.expr or "")
        elif alert.kind == "composite":
            self.composite(alert, rules)
        elif alert.kind in ("threshold", "expr") and (selector := promql.absent_argument(alert.expr or "")):
            self.absent(alert, rules, selector)  # an alert written as absent(...) is tested like one
        elif any(promql.produces_without_input(e) for e in written):
            if not alert.examples:
                self.untested.append(alert.name)
        else:
            self.query(alert, rules)

    def _exps(
        self,
        rules: list[AlertRule],
        holds: Callable[[AlertRule], list[tuple[bool, int]]],
        value: Callable[[int], float],
        series_labels: dict[str, str],
    ) -> list[Expectation]:
        shared: dict[float, dict[str, str]] = {}
        return [
            Expectation(
                r.for_ms,
                r.labels,
                r.annotations,
                holds(r),
                value,
                series_labels,
                keep_ms=r.alert.keep_firing_for_ms,
                rendered_annotations=shared,
            )
            for r in rules
        ]

    def for_edges(self, rules: list[AlertRule], start: int) -> list[int]:
        """The evaluations just before and at the moment each `for` elapses after `start` (`start` itself
        for a rule without `for`)."""
        edges = []
        for rule in rules:
            steps = math.ceil(rule.for_ms / self.interval)
            edges += [start + steps - 1, start + steps] if steps else [start]
        return edges

    def checkpoints(self, rules: list[AlertRule], n: int) -> list[int]:
        """Where a two-phase test (the input changes at sample n) is checked: the last sample before the
        change, then each `for` edge."""
        return [n - 1, *self.for_edges(rules, n)]

    def query(self, alert: Alert, rules: list[AlertRule]) -> None:
        """Round k: the metrics the alert's query reads, the query just short of the k-th level, then just past
        it; what is expected is evaluated when the document is made, over all of the round's inputs."""
        comparison = alert.comparison or ">"
        levels = sorted({r.level for r in rules if r.level is not None})
        records = self.records_read(signal_expr(alert) or "")
        if needs_input_rule(alert):
            records = [*self.records_read(alert.expr or ""), (input_name(alert), alert.expr or "")]
        try:
            proof = prove(
                signal_expr(alert) or "",
                records,
                comparison,
                levels,
                gotemplate.referenced_labels(*alert.annotations.values(), *alert.labels.values()),
                self.sample_ms,
                max(r.for_ms for r in rules),
                noisy_levels=alert.kind == "anomaly",
                neighbours=neighbours,
                eval_every=self.every,
            )
        except Unprovable as exc:
            if not alert.examples:
                self.unproven.append((alert.name, str(exc)))
            return
        for level, case in proof.cases:
            if level is None:
                title = f"{alert.name} present"
            else:
                title = f"{alert.name} {LEVEL_WORDS[comparison]} {_num(level)}"
            self.query_cases.append((alert, title, case))

    def place_queries(self) -> None:
        """Query cases into rounds, the longest first: a case joins the first round at least as long whose
        cases read other metrics (one does not move another), its second phase running on to the round's end;
        promtool evaluates every rule of the file at every step of a round, so fewer, fuller rounds are faster."""
        placed: list[dict] = []
        for alert, title, case in sorted(self.query_cases, key=lambda c: -c[2].steps):
            metrics = {item.metric for item in case.world.inputs}
            found = next((r for r in placed if r["steps"] >= case.steps and not r["metrics"] & metrics), None)
            if found is None:
                found = self._round("queries", len(placed))
                found["steps"] = case.steps
                placed.append(found)
            inputs = [(item.series_labels(), values) for item, values in case.series(found["steps"])]
            found["titles"].append(title)
            found["metrics"] |= metrics
            found["cases"][id(alert)] = case
            found["inputs"] += inputs
            found["series"] += [
                (series_string(dict(labels)[NAME], dict(_without_name(labels))), values_notation(values))
                for labels, values in inputs
            ]
            ends = [case.n, *([case.back] if case.back else []), found["steps"]]  # each phase's last evaluation
            found["evaluate"].setdefault(alert.name, []).extend((end - 1) // self.every for end in ends)
        self.query_cases = []

    def examples(self, alert: Alert) -> None:
        """A test per catalog example: its input series, and the severities firing at its time."""
        for k, example in enumerate(alert.examples):
            samples = max(sample_count(values) for _, values in example.series)
            at = example.at_ms if example.at_ms is not None else (samples - 1) * example.interval_ms
            self.example_tests.append(
                {
                    "name": f"examples of {alert.name}, {k + 1} of {len(alert.examples)}",
                    "interval": format_duration(example.interval_ms),
                    "input_series": [{"series": series, "values": values} for series, values in example.series],
                    "promql_expr_test": [
                        {
                            "expr": f'max by (severity) (ALERTS{{alertname="{alert.name}", alertstate="firing"}})',
                            "eval_time": format_duration(at),
                            "exp_samples": [
                                {"labels": f'{{severity="{s}"}}' if s is not None else "{}", "value": 1}
                                for s in sorted(set(example.fires), key=str)
                            ],
                        }
                    ],
                }
            )

    def records_read(self, expr: str) -> list[tuple[str, str]]:
        """The group's recording rules an expression reads, directly or through another, in the group's order:
        the test feeds their inputs, and promtool evaluates them as Prometheus would."""
        wanted: set[str] = set()
        pending = [expr]
        texts = dict(self.recording_texts)
        while pending:
            node = tree.parse(pending.pop())
            for item in tree.walk(node) if not isinstance(node, str) else ():
                if isinstance(item, tree.Selector) and item.name in texts and item.name not in wanted:
                    wanted.add(item.name)
                    pending.append(texts[item.name])
        return [(name, text) for name, text in self.recording_texts if name in wanted]

    def evaluated(self, found: dict, name: str) -> list[Expectation]:
        """Every rule named `name` over a round's inputs: an expectation per series it returns. A rule of an
        alert whose case is in the round, and whose metrics no other case feeds, returns what its query did in
        the case, filtered by its level; one whose metrics the round does not feed returns nothing; any other
        is evaluated over all of the round's inputs."""
        inputs = found["inputs"]
        steps = len(inputs[0][1])
        evaluations = range(0, steps, self.every)
        fed: list[Inputs] = []
        exps = []
        annotations: dict[tuple, dict[float, dict[str, str]]] = {}  # by series and templates
        for rule in self.rules_by_name.get(name, []):
            node = tree.parse(rule.expr)
            if isinstance(node, str):
                continue
            read = self._metrics(node)
            case = found["cases"].get(id(rule.alert))
            own = (
                case is not None
                and case.steps == steps
                and read is not None
                and read <= {i.metric for i in case.world.inputs}
            )
            if own and not read & (found["metrics"] - {i.metric for i in case.world.inputs}):
                outputs = [[s for s in out if rule.holds(s[1])] for out in case.outputs]
            elif read is not None and not read & found["metrics"] and not promql.produces_without_input(rule.expr):
                continue
            else:
                if not fed:
                    fed.append(
                        with_records(
                            Inputs(self.sample_ms, [labels for labels, _ in inputs], [v for _, v in inputs]),
                            self.recordings,
                            every=self.every,
                        )[0]
                    )
                outputs = over_steps(node, fed[0], evaluations)
            by_series: dict[Labels, list[float | None]] = {}
            for step, out in enumerate(outputs):
                for labels, value in out or ():
                    by_series.setdefault(_without_name(labels), [None] * len(evaluations))[step] = value
            for labels, values in by_series.items():
                exps.append(
                    Expectation(
                        rule.for_ms,
                        rule.labels,
                        rule.annotations,
                        [(v is not None, 1) for v in values],
                        lambda i, values=values: values[i] if values[i] is not None else 0.0,
                        dict(labels),
                        keep_ms=rule.alert.keep_firing_for_ms,
                        rendered_annotations=annotations.setdefault((labels, tuple(rule.annotations.items())), {}),
                    )
                )
        return exps

    def _metrics(self, node: tree.Node) -> set[str] | None:
        """The metrics a rule reads, through the group's recording rules; None when a selector names none."""
        recorded = dict(self.recordings)
        out: set[str] = set()
        for item in tree.walk(node):
            if isinstance(item, tree.Selector):
                if not item.name:
                    return None
                out.add(item.name)  # a recorded name too: a test may feed it
                if item.name in recorded:
                    inner = self._metrics(recorded[item.name])
                    if inner is None:
                        return None
                    out |= inner
        return out

    def absent(self, alert: Alert, rules: list[AlertRule], selector: str) -> None:
        """Round 1: no series at all, so every absent alert of the file fires after its `for`; round 2: a
        series for each selector, and all stay silent."""
        labels = promql.equality_labels(selector)
        n = round_size(steps_for(max(r.for_ms for r in rules), self.interval))
        family = f"absent alerts over {format_duration(n * self.interval)}"
        exps = self._exps(rules, lambda r: [(True, n)], lambda i: 1.0, labels)
        indexes = [n - 1, *self.for_edges(rules, 0)]
        self.add_to_round(family, 0, f"{alert.name} without {selector}", [], alert.name, exps, indexes)
        present = selector_series(selector)
        if present is not None:
            quiet = self._exps(rules, lambda r: [(False, n)], lambda i: 1.0, labels)
            self.add_to_round(
                family,
                1,
                f"{alert.name} with {present}",
                [(present, [(1.0, n)])],
                alert.name,
                quiet,
                [n - 1],
            )

    def composite(self, alert: Alert, rules: list[AlertRule]) -> None:
        """Members' ALERTS series: for `all`, one member first, then all; for `any`, none, then one. Composites
        share a round only when no alert is a member (or the composite) of two of them."""
        on = test_labels(alert.on)
        n = round_size(steps_for(max(r.for_ms for r in rules), self.interval))
        member_values: list[Runs] = []
        for i, _member in enumerate(alert.members):
            early = alert.all_members and i == 0  # `all`: one member alone does not fire it
            member_values.append([(1.0 if early else None, n), (1.0 if alert.all_members or i == 0 else None, n)])
        series = [
            (series_string("ALERTS", {**on, "alertname": m, "alertstate": "firing"}), v)
            for m, v in zip(alert.members, member_values, strict=True)
        ]
        series += self.quiet_absent_members(alert, 2 * n)

        combine = all if alert.all_members else any
        fires = [(combine(v[phase][0] is not None for v in member_values), n) for phase in (0, 1)]
        exps = self._exps(rules, lambda r: fires, lambda i: 1.0, on)
        indexes = self.checkpoints(rules, n)
        family = f"composites over {format_duration(2 * n * self.interval)}"
        involved = {alert.name, *alert.members}
        taken = self.composite_names.setdefault(family, [])
        index = next((i for i, names in enumerate(taken) if not names & involved), len(taken))
        if index == len(taken):
            taken.append(set())
        taken[index] |= involved
        mode = "all" if alert.all_members else "any"
        self.add_to_round(
            family,
            index,
            f"{alert.name} ({mode} of {', '.join(alert.members)})",
            series,
            alert.name,
            exps,
            indexes,
        )

    def quiet_absent_members(self, alert: Alert, n: int) -> list[tuple[str, Runs]]:
        """Absent alerts of this file fire in every test; feed their selectors so they stay quiet."""
        out = []
        for member in alert.members:
            other = self.all_alerts.get(member)
            if other is not None and other.kind == "absent" and other.group == self.group.name:
                present = selector_series(other.expr or "")
                if present is not None:
                    out.append((present, [(1.0, n)]))
        return out

    def slo(self, plan: SLOPlan) -> None:
        """Each window pair just over and just under its burn-rate factor (the other windows at 0), so a
        factor or window edited by hand fails; then min_events, or a 100% objective's any-error rule."""
        slo = plan.slo
        if not plan.alerts:
            return
        identity = {**slo.labels, **sloth_labels(slo), **test_labels(slo.group_by)}
        budget = error_budget(slo)
        plenty = slo.min_events or 1.0  # exactly enough: `>= min_events` holds at the boundary
        everywhere = dict.fromkeys(plan.windows_ms)
        cases: list[tuple[str, dict[int, float], float]] = []
        if budget == 0:
            cases += [
                ("any error burns a 100% objective", dict.fromkeys(everywhere, 0.001), plenty),
                ("no errors, no alert", dict.fromkeys(everywhere, 0.0), plenty),
            ]
        for burn in plan.alerts if budget else ():
            for pair, factor in zip(burn.pairs, burn.factors, strict=True):
                windows = f"{format_duration(pair.short_ms)}/{format_duration(pair.long_ms)}"
                for scale, outcome in ((1.02, "over"), (0.98, "under")):
                    ratio = factor * scale * budget
                    cases.append(
                        (
                            f"{burn.tier_name} {windows} {outcome} {_num(factor)}x",
                            {pair.short_ms: ratio, pair.long_ms: ratio},
                            plenty,
                        )
                    )
        if slo.min_events and budget:
            fastest = max(f for burn in plan.alerts for f in burn.factors) * 1.25
            cases.append(
                (
                    f"fewer than {_num(slo.min_events)} events: silent at {_num(fastest)}x",
                    dict.fromkeys(everywhere, fastest * budget),
                    slo.min_events / 2,
                )
            )
        n = self.slo_phase
        for case, (title, ratios, events) in enumerate(cases):
            values = {w: ratios.get(w, 0.0) for w in plan.windows_ms}
            series: list[tuple[str, Runs]] = [
                (
                    series_string(
                        f"slo:sli_error:ratio_rate{format_duration(w)}",
                        {**identity, "sloth_window": format_duration(w)},
                    ),
                    [(values[w], n)],
                )
                for w in plan.windows_ms
            ]
            series += [
                (
                    series_string(
                        f"slo:sli_total:count{format_duration(w)}", {**identity, "sloth_window": format_duration(w)}
                    ),
                    [(events, n)],
                )
                for w in plan.event_windows_ms
            ]
            exps = []
            for burn in plan.alerts:
                firing = [
                    p
                    for p, f in zip(burn.pairs, burn.factors, strict=True)
                    if values[p.short_ms] > f * budget and values[p.long_ms] > f * budget
                ]
                fires = bool(firing) and events >= slo.min_events
                # `A and B or C and D` keeps the value of the first clause's short window that fired.
                value = values[firing[0].short_ms] if firing else 0.0
                exps.append(
                    Expectation(
                        slo.alert_for_ms,
                        burn.labels,
                        burn.annotations,
                        [(fires, n)],
                        lambda i, value=value: value,
                        identity,
                    )
                )
            self.add_to_round(
                "SLOs",
                case,
                f"{slo.sloth_id} {title}",
                series,
                slo.alert_name,
                exps,
                [n - 1],
            )

    def document(self, rule_file: str) -> dict:
        self.place_queries()
        rounds = []
        for family, entries in self.rounds.items():
            for index, found in enumerate(entries):
                checks: dict[str, list] = {}
                expected = dict(found["alerts"])
                for name, hints in found["evaluate"].items():
                    exps = self.evaluated(found, name)
                    evaluations = len(found["inputs"][0][1]) // self.every
                    expected[name] = (exps, [*hints, *self.changes(exps, evaluations)])
                for name, (exps, indexes) in expected.items():
                    for kind, items in alert_checks(name, exps, indexes, self.interval).items():
                        checks.setdefault(kind, []).extend(items)
                titles = found["titles"]
                more = f" and {len(titles) - 3} more" if len(titles) > 3 else ""
                sampled = self.interval
                if "steps" in found:  # query rounds are as long as their longest case
                    sampled = self.sample_ms
                    family = f"queries over {format_duration(found['steps'] * sampled)}"
                name = f"{family}, round {index + 1} of {len(entries)}: {', '.join(titles[:3])}{more}"
                rounds.append(
                    {
                        "name": name,
                        "interval": format_duration(sampled),
                        "input_series": [{"series": s, "values": values} for s, values in found["series"]],
                        **checks,
                    }
                )
        return {
            "rule_files": [rule_file],
            "evaluation_interval": format_duration(self.interval),
            "tests": [*rounds, *self.example_tests],
        }

    def changes(self, exps: Sequence[Expectation], steps: int) -> list[int]:
        """The evaluations around each change of what fires: where a `for` elapses, where an alert resolves."""
        out = []
        previous = None
        for step in range(steps):
            now = tuple(exp.firing_at(step, self.interval) for exp in exps)
            if previous is not None and now != previous:
                out += [step - 1, step]
            previous = now
        return out


def _without_name(labels: Labels) -> Labels:
    return tuple(item for item in labels if item[0] != NAME)


def _num(value: float) -> str:
    return f"{value:.4g}"


_LITERAL_ALTERNATIVE = re.compile(r"^[\w.:/ -]+")


def selector_series(selector: str, extra: dict[str, str] | None = None) -> str | None:
    """A series the selector matches (with `extra` labels where the selector leaves them free), for tests that
    need it present; None when none is easy to build."""
    try:
        node = promql_parser.parse(selector)
    except ValueError:
        return None
    if not isinstance(node, promql_parser.VectorSelector) or not node.name:
        return None
    labels: dict[str, str] = dict(extra or {})
    for m in node.matchers.matchers:
        op = str(m.op).rsplit(".", 1)[-1]
        if m.name == "__name__":
            continue
        if op == "Equal":
            labels[m.name] = m.value
        elif op == "Re":
            candidate = m.value.split("|")[0].strip("()")
            if not _LITERAL_ALTERNATIVE.fullmatch(candidate or "") or not re.fullmatch(m.value, candidate):
                return None
            labels[m.name] = candidate
        else:  # != and !~: a value they do not exclude
            candidate = "amcompanion-test"
            if (op == "NotEqual" and m.value == candidate) or (op == "NotRe" and re.fullmatch(m.value, candidate)):
                return None
            labels[m.name] = candidate
    return series_string(node.name, labels)
