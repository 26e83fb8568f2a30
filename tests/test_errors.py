"""Each class of bad input is reported as `file:line:column: field: message`, all at once, nothing written."""

import textwrap
from pathlib import Path

import pytest

from amcompanion.catalog import load_catalog
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.cli import main


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def errors_of(root: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(root)
    return [str(d) for d in caught.value.diagnostics]


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    root = tmp_path / "rulesets"
    root.mkdir()
    return root


def test_yaml_syntax_error_names_line_and_column(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        groups:
          - name: node
            alerts: [
        """,
    )
    assert errors_of(cat) == [
        'rulesets/a.yaml:4:13: YAML syntax error: unclosed "[": add the "]" after its last entry\n'
        "  4 |     alerts: [\n"
        "    |             ^"
    ]


def test_duplicate_yaml_key_is_a_syntax_error(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        version: 1
        """,
    )
    (message,) = errors_of(cat)
    assert message.startswith('rulesets/a.yaml:2:1: YAML syntax error: duplicate key "version" (first set on line 1)')


def test_unknown_key_suggests_the_closest_field(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        groups:
          - name: node
            alerts:
              - alert: HighCPU
                expr: rate(node_cpu_seconds_total[5m])
                abve: {warning: 80}
        """,
    )
    assert errors_of(cat) == [
        'rulesets/a.yaml:7:9: groups[0].alerts[0].abve: unknown field "abve"; did you mean "above"?'
    ]


def test_unknown_top_level_key_lists_the_known_ones(cat: Path) -> None:
    write(cat, "a.yaml", "version: 1\nalertz: []\n")
    assert errors_of(cat) == [
        'rulesets/a.yaml:2:1: alertz: unknown top-level key "alertz"; expected one of: version, defaults, receiver, '
        "contacts, channels, escalations, schedules, routes, quiet_hours, groups, self_monitoring, drills,"
        " alert_windows"
    ]


def test_wrong_types(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        groups:
          - name: node
            alerts:
              - alert: Mem
                expr: node_memory_MemAvailable_bytes
                below: {critical: high}
                for: 5 minutes
                labels: [team]
        """,
    )
    assert errors_of(cat) == [
        'rulesets/a.yaml:7:27: groups[0].alerts[0].below.critical: expected a number, got "high"',
        'rulesets/a.yaml:8:14: groups[0].alerts[0].for: expected a duration such as 30s, 5m or 1h30m, got "5 minutes"',
        "rulesets/a.yaml:9:17: groups[0].alerts[0].labels: expected a mapping, got a list",
    ]


def test_promql_syntax_error_points_at_the_expression(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        groups:
          - name: node
            alerts:
              - alert: Bad
                expr: |
                  sum(rate(node_cpu_seconds_total[5m])
                above: 1
              - alert: NotAFunction
                expr: nosuch(up)
                above: 1
        """,
    )
    assert errors_of(cat) == [
        "rulesets/a.yaml:6:15: groups[0].alerts[0].expr: invalid PromQL: unclosed left parenthesis",
        "rulesets/a.yaml:10:15: groups[0].alerts[1].expr: invalid PromQL: unknown function with name 'nosuch'",
    ]


def test_slo_sli_needs_the_window_placeholder_and_valid_promql(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        groups:
          - name: web
            slos:
              - name: avail
                objective: 99.9
                sli:
                  errors: sum(rate(http_requests_total{code=~"5.."}[5m]))
                  total: sum(rate(http_requests_total[{{window}}])
        """,
    )
    assert errors_of(cat) == [
        "rulesets/a.yaml:8:19: groups[0].slos[0].sli.errors: must use {{window}} as the range of its rate(), e.g. "
        "rate(http_requests_total[{{window}}])",
        "rulesets/a.yaml:9:18: groups[0].slos[0].sli.total: invalid PromQL: unclosed left parenthesis",
    ]


def test_duplicate_names_name_both_places(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        groups:
          - name: node
            alerts:
              - {alert: Dup, expr: up, above: 1}
        contacts:
          alice: {phone: "+8613800000001"}
        """,
    )
    write(
        cat,
        "b.yaml",
        """
        version: 1
        groups:
          - name: node
            alerts:
              - {alert: Dup, expr: up, above: 1}
          - name: node
        contacts:
          alice: {phone: "+8613800000001"}
        """,
    )
    # Group names are unique per file, as Prometheus wants them per rule file; alert names catalog-wide.
    assert errors_of(cat) == [
        'rulesets/b.yaml:5:17: groups[0].alerts[0].alert: duplicate alert name "Dup" (first defined at '
        "rulesets/a.yaml:5)",
        'rulesets/b.yaml:6:11: groups[1].name: duplicate group name "node" (first defined at rulesets/b.yaml:3)',
        'rulesets/b.yaml:8:3: contacts.alice: duplicate contact name "alice" (first defined at rulesets/a.yaml:7)',
    ]


def test_undefined_references(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        channels:
          sms: {type: twilio_sms, account_sid: "${SID}", auth_token: "${TOKEN}", from: "+15550000000"}
        escalations:
          infra:
            steps:
              - notify: [ops-dingtalk]
              - after: 10m
                notify: [{channel: sms, to: [alice]}]
        routes:
          - match: {team: db}
            escalation: db-oncall
            quiet_hours: nights
        groups:
          - name: db
            escalation: infra
            alerts:
              - {alert: DatabaseDown, expr: mysql_up == 0}
              - {alert: Both, kind: composite, all: [DatabaseDown, SlowQueries]}
            inhibits:
              - {source: DatabaseDwn, targets: [Both]}
        """,
    )
    assert errors_of(cat) == [
        'rulesets/a.yaml:7:18: escalations.infra.steps[0].notify[0]: undefined channel "ops-dingtalk"',
        'rulesets/a.yaml:9:38: escalations.infra.steps[1].notify[0].to[0]: undefined contact "alice"',
        'rulesets/a.yaml:12:17: routes[0].escalation: undefined escalation policy "db-oncall"',
        'rulesets/a.yaml:13:18: routes[0].quiet_hours[0]: undefined quiet_hours window "nights"',
        'rulesets/a.yaml:19:60: groups[0].alerts[1].all[1]: undefined alert "SlowQueries"',
        'rulesets/a.yaml:21:18: groups[0].inhibits[0].source: undefined alert "DatabaseDwn"; '
        'did you mean "DatabaseDown"?',
    ]


def test_empty_rulesets_directory(cat: Path) -> None:
    assert errors_of(cat) == ["rulesets: no catalog files (*.yaml, *.yml) in this directory"]


def test_missing_version_and_unknown_version(cat: Path) -> None:
    write(cat, "a.yaml", "groups: []\n")
    write(cat, "b.yaml", "version: 2\n")
    assert errors_of(cat) == [
        "rulesets/a.yaml:1:1: version: required field is missing",
        "rulesets/b.yaml:1:10: version: unsupported catalog version 2 (this amcompanion reads version 1)",
    ]


def test_cli_reports_every_error_exits_1_and_leaves_output_untouched(cat: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    write(cat, "a.yaml", "version: 1\ngroups:\n  - name: ok\n    alerts: [{alert: A, expr: up, above: 1}]\n")
    out = cat.parent / "generated"
    assert main(["compile", str(cat), "-o", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    write(cat, "b.yaml", "version: 1\ngroups:\n  - name: bad\n    alerts: [{alert: B, expr: 'up{', above: x}]\n")
    capsys.readouterr()
    assert main(["compile", str(cat), "-o", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "2 errors; nothing written"
    assert err[0].startswith("rulesets/b.yaml:4:31: groups[0].alerts[0].expr: invalid PromQL")
    assert err[1] == 'rulesets/b.yaml:4:45: groups[0].alerts[0].above: expected a number, got "x"'
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_literal_secrets_receiver_name_clashes_and_severity_beside_a_map(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        channels:
          robot: {type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=${T}", secret: s3cret}
        escalations:
          oncall: {steps: [{notify: [robot]}]}
        routes:
          - {name: oncall, match: {severity: info}, native: {webhook_configs: [{url: "http://x.example"}]}}
        groups:
          - name: node
            alerts:
              - {alert: A, expr: up, above: {warning: 1}, severity: critical}
        """,
    )
    assert errors_of(cat) == [
        "rulesets/a.yaml:3:98: channels.robot.secret: a literal secret; write it as ${ENV_VAR} (the receiver reads it "
        "from its environment) so it stays out of generated files",
        'rulesets/a.yaml:7:12: routes[0].name: "oncall" is already the name of an escalation policy\'s receiver; '
        "choose another name",
        "rulesets/a.yaml:11:61: groups[0].alerts[0].severity: applies to a single above value; with a map of levels, "
        "the map names the severities",
    ]


def test_anchors_merge_keys_and_x_keys_are_accepted(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        x-common: &common
          for: 10m
          labels: {team: infra}
        groups:
          - name: node
            alerts:
              - <<: *common
                alert: A
                expr: up == 0
              - <<: *common
                alert: B
                expr: node_load1
                above: 3
                for: 1m
        """,
    )
    catalog = load_catalog(cat)
    a, b = catalog.alerts()
    assert (a.for_ms, a.labels["team"], b.for_ms, b.labels["team"]) == (600_000, "infra", 60_000, "infra")


def test_native_receiver_urls_need_a_scheme(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        routes:
          - match: {severity: info}
            native: {slack_configs: [{api_url: "...", channel: "#info"}], webhook_configs: [{url: "${HOOK}"}]}
        """,
    )
    assert errors_of(cat) == [
        'rulesets/a.yaml:4:40: routes[0].native.slack_configs[0].api_url: "..." is not a URL (it needs a scheme '
        "such as https://)",
        'rulesets/a.yaml:4:91: routes[0].native.webhook_configs[0].url: "${HOOK}" is not a URL (Alertmanager does '
        "not expand ${VAR}; use its *_file setting for a secret URL)",
    ]


def test_sla_targets_need_known_severities_and_both_durations(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        defaults:
          sla:
            critcal: {ack: 5m, resolve: 30m}
            warning: {ack: 15m}
            info: {ack: 0s, resolve: soon}
        """,
    )
    assert errors_of(cat) == [
        'rulesets/a.yaml:4:5: defaults.sla.critcal: unknown severity "critcal"; did you mean "critical"?',
        "rulesets/a.yaml:5:14: defaults.sla.warning.resolve: required field is missing",
        "rulesets/a.yaml:6:17: defaults.sla.info.ack: a target must be 1s or longer",
        'rulesets/a.yaml:6:30: defaults.sla.info.resolve: expected a duration such as 30s, 5m or 1h30m, got "soon"',
    ]


def test_self_monitoring_fields_are_checked_like_the_rest(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        escalations:
          infra-oncall: {steps: [{notify: [robot]}]}
        channels:
          robot: {type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=${T}"}
        self_monitoring:
          escalation: infra-oncal
          channel_failing_for: ten minutes
          jobb: amcompanion
          enabled: "no"
        """,
    )
    assert errors_of(cat) == [
        'rulesets/a.yaml:7:15: self_monitoring.escalation: undefined escalation policy "infra-oncal"; '
        'did you mean "infra-oncall"?',
        "rulesets/a.yaml:8:24: self_monitoring.channel_failing_for: expected a duration such as 30s, 5m or 1h30m, "
        'got "ten minutes"',
        'rulesets/a.yaml:9:3: self_monitoring.jobb: unknown field "jobb"; did you mean "job"?',
        'rulesets/a.yaml:10:12: self_monitoring.enabled: expected true or false, got "no"',
    ]


def test_self_monitoring_pages_one_receiver_owns_its_group_name_and_is_set_once(cat: Path) -> None:
    write(
        cat,
        "a.yaml",
        """
        version: 1
        escalations:
          amcompanion-self-monitoring: {steps: [{notify: [robot]}]}
        channels:
          robot: {type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=${T}"}
        self_monitoring:
          escalation: amcompanion-self-monitoring
          native: {webhook_configs: [{url: "${HOOK}"}]}
        groups:
          - name: amcompanion
        """,
    )
    write(cat, "b.yaml", "version: 1\nself_monitoring: {enabled: false}\n")
    assert errors_of(cat) == [
        "rulesets/a.yaml:7:3: self_monitoring: give either escalation (a policy) or native (an Alertmanager "
        "receiver), not both",
        'rulesets/a.yaml:8:11: self_monitoring.native: "amcompanion-self-monitoring" is already the name of an '
        "escalation policy's receiver; choose another name",
        'rulesets/a.yaml:8:36: self_monitoring.native.webhook_configs[0].url: "${HOOK}" is not a URL (Alertmanager '
        "does not expand ${VAR}; use its *_file setting for a secret URL)",
        "rulesets/b.yaml:2:1: self_monitoring: self_monitoring may be set in one file only (first defined at "
        "rulesets/a.yaml:6)",
    ]
