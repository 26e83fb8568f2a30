"""Small pure pieces checked against what Prometheus, Alertmanager and Go actually print."""

import pytest

from amcompanion.catalog.durations import format_duration, parse_duration
from amcompanion.catalog.numbers import go_float
from amcompanion.catalog.reader import builtin_windows
from amcompanion.compiler import gotemplate
from amcompanion.compiler.alertmanager import receivers_for, time_interval
from amcompanion.compiler.slo import DAY_MS, factor, scaled
from amcompanion.compiler.unittests import neighbours, values_string


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("30d", "30d"),
        ("28d", "4w"),
        ("90d", "90d"),
        ("14d", "2w"),
        ("1h30m", "1h30m"),
        ("90m", "1h30m"),
        ("0s", "0s"),
        ("365d", "1y"),
    ],
)
def test_durations_print_as_prometheus_does(text: str, printed: str) -> None:
    assert format_duration(parse_duration(text) or 0) == printed


@pytest.mark.parametrize("bad", ["", "5", "5 m", "m5", "1.5h", "-5m"])
def test_bad_durations_are_rejected(bad: str) -> None:
    assert parse_duration(bad) is None


@pytest.mark.parametrize(
    ("value", "go"),
    [
        (96.0, "96"),
        (0.5, "0.5"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (-3.0, "-3"),
        (0.0009999999999999432, "0.0009999999999999432"),
    ],
)
def test_floats_print_as_go_fmt_v(value: float, go: str) -> None:
    assert go_float(value) == go


@pytest.mark.parametrize(
    ("template", "value", "rendered"),
    [
        # Expected strings are what Prometheus 2.42's template functions return for these inputs.
        ("{{ $value | humanize }}", 1234567.0, "1.235M"),
        ("{{ $value | humanize }}", 0.0123, "12.3m"),
        ("{{ humanize1024 $value }}", 2048.0, "2ki"),
        ("{{ $value | humanizePercentage }}", 0.0505, "5.05%"),
        ("{{ $value | humanizeDuration }}", 93784.0, "1d 2h 3m 4s"),
        ("{{ $value | humanizeDuration }}", 0.25, "250ms"),
        ('{{ printf "%.2f" $value }}', 3.14159, "3.14"),
        ('{{ $labels.instance | toUpper }} {{- " x" }}', 1.0, "HOST-1 x"),
        ("{{/* a comment */}}{{ .Labels.instance }}:{{ .Value }}", 2.5, "host-1:2.5"),
    ],
)
def test_template_subset_renders_like_prometheus(template: str, value: float, rendered: str) -> None:
    assert gotemplate.render(template, {"instance": "host-1"}, value) == rendered


def test_templates_beyond_the_subset_are_refused() -> None:
    with pytest.raises(gotemplate.Unsupported):
        gotemplate.render("{{ if gt $value 1.0 }}x{{ end }}", {}, 2.0)


def sloth_windows(days: int) -> tuple:
    windows = next(w for w in builtin_windows() if w.period_ms == days * DAY_MS)
    return (*windows.page, *windows.ticket)


def test_sloth_factors_for_30d_and_28d() -> None:
    assert [factor(p, 30 * DAY_MS) for p in sloth_windows(30)] == [14.4, 6, 3, 1]
    # float64 as Sloth computes them (its internal/alert/alert_test.go expects these digits)
    assert [factor(p, 28 * DAY_MS) for p in sloth_windows(28)] == [
        13.44,
        5.6000000000000005,
        2.8000000000000003,
        0.9333333333333333,
    ]


def test_other_periods_scale_windows_and_keep_the_budget_fractions() -> None:
    month = next(w for w in builtin_windows() if w.period_ms == 30 * DAY_MS)
    week = scaled(month, 7 * DAY_MS).page
    assert [(format_duration(p.short_ms), format_duration(p.long_ms)) for p in week] == [("1m", "14m"), ("7m", "1h24m")]
    assert round(factor(week[0], 7 * DAY_MS), 2) == 14.4


def test_overnight_quiet_hours_split_at_midnight_with_next_weekdays() -> None:
    spec = {
        "times": [{"start_time": "22:00", "end_time": "07:00"}],
        "weekdays": ["monday:friday"],
        "location": "Asia/Shanghai",
    }
    assert time_interval(spec) == [
        {
            "weekdays": ["monday:friday"],
            "location": "Asia/Shanghai",
            "times": [{"start_time": "22:00", "end_time": "24:00"}],
        },
        {
            "weekdays": ["tuesday:saturday"],
            "location": "Asia/Shanghai",
            "times": [{"start_time": "00:00", "end_time": "07:00"}],
        },
    ]


def test_route_walk_follows_continue_and_first_match() -> None:
    tree = {
        "receiver": "root",
        "routes": [
            {"receiver": "b", "matchers": ['x="1"'], "continue": True},
            {"receiver": "c", "matchers": ['y=~"1|2"']},
            {"receiver": "b", "matchers": ['z!="0"']},
        ],
    }
    assert receivers_for(tree, {"x": "1", "y": "2"}) == ["b", "c"]
    assert receivers_for(tree, {"x": "1", "z": "0"}) == ["b"]
    assert receivers_for(tree, {"z": "0"}) == ["root"]
    assert receivers_for(tree, {"x": "1", "z": "1"}) == ["b", "b"]  # amtool prints repeats too


def test_test_values_sit_one_unit_of_the_last_digit_around_a_level() -> None:
    assert neighbours(80) == (79, 81)
    assert neighbours(512) == (511, 513)
    assert neighbours(0.05) == (0.049, 0.051)
    assert values_string([(None, 2), (1.0, 1), (1.0, 2), (2.5, 1)]) == "_x2 1x2 2.5"
