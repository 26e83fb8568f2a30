"""`amcompanion schema`: the catalog's JSON Schema is written from the shapes the reader validates with. It is
valid draft 2020-12, takes every catalog the project has, rejects what the reader rejects, and lists for every
shape exactly the fields the reader accepts there, so that editor and compiler cannot disagree on a key."""

import json
import re
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
import yaml_rs

from amcompanion.catalog import load_catalog, shapes
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.catalog.reader import apply_merge_keys, catalog_files
from amcompanion.catalog.schema import catalog_schema
from amcompanion.catalog.schema_url import SCHEMA_URL
from amcompanion.catalog.shapes import Shape
from amcompanion.cli import main
from amcompanion.importers.run import import_sources
from tests.conftest import CATALOGS, ROOT

SCHEMA = catalog_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
DOCS_SCHEMA = ROOT / "docs" / "catalog.schema.json"
PROJECT_CATALOGS = [ROOT / "rulesets", *sorted(CATALOGS.iterdir()), ROOT / "amcompanion" / "starter"]
REFRESH = "amcompanion schema -o docs/catalog.schema.json"


def schema_errors(data: object) -> list[jsonschema.ValidationError]:
    """Every fault the schema finds, down the branches of an anyOf too (a list the reader also takes empty)."""
    found, stack = [], list(VALIDATOR.iter_errors(data))
    while stack:
        error = stack.pop()
        found.append(error)
        stack += error.context
    return found


def load(text: str) -> object:
    """A file's data as the reader sees it (YAML 1.2, merge keys applied), except that the times yaml_rs makes of
    date-like strings are text again, as an editor's schema check sees them."""
    return as_text_times(apply_merge_keys(yaml_rs.loads(text)))


def as_text_times(node: object) -> object:
    if isinstance(node, dict):
        return {key: as_text_times(value) for key, value in node.items()}
    if isinstance(node, list):
        return [as_text_times(value) for value in node]
    return node.isoformat(sep=" ") if isinstance(node, datetime) else node


def test_the_schema_is_valid_draft_2020_12_and_every_reference_resolves() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == SCHEMA_URL
    referenced = set(re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(SCHEMA)))
    assert referenced == set(SCHEMA["$defs"])  # none dangling, none written for nothing


@pytest.mark.parametrize(
    "path", [p for d in PROJECT_CATALOGS for p in catalog_files(d)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_catalog_of_the_project_validates(path: Path) -> None:
    assert [(list(e.absolute_path), e.message) for e in VALIDATOR.iter_errors(load(path.read_text()))] == []


def test_the_files_amcompanion_import_writes_validate(tmp_path: Path) -> None:
    report = import_sources([ROOT / "tests" / "data" / "rules"], tmp_path / "imported")
    assert len(report.files) == 2 and report.problems == []
    load_catalog(tmp_path / "imported")
    for item in report.files:
        data = load(Path(item.target).read_text())
        assert [(list(e.absolute_path), e.message) for e in VALIDATOR.iter_errors(data)] == [], item.target


# The forms the reader takes beside the usual ones: a single item for a list, empty lists, `x-` scratch keys
# with a merge key, a number where a string goes, a 0 duration, tiers switched off, records, and variants
# that give the kind's required fields themselves.
EDGE_FORMS = """\
version: 1
x-common: &common {for: 0, labels: {tier: 1}}
defaults:
  severities: [low, high]
  group_wait: {high: 0s, low: 30s}
  sla: {high: {ack: 5m, resolve: 1h}}
  slos: {window: 28d, labels: {team: web}}
contacts:
  ann: {phone: "+15550000001", email: ann@example.com, telegram_chat_id: 1001}
channels:
  chat: {type: telegram, bot_token: "${TG}", chat_id: -100, parse_mode: none, max_in_flight: 4.0}
escalations:
  oncall:
    steps: [{notify: chat}, {after: 10m, notify: {channel: chat, to: ann}}]
    on_failure: wait
routes:
  - {matchers: 'severity="high"', escalation: oncall, quiet_hours: nights}
quiet_hours:
  nights: {times: {start_time: "22:00", end_time: "24:00"}, weekdays: "monday:friday", years: [2026]}
alert_windows:
groups:
  - name: empty
    alerts:
    slos:
  - name: web
    escalation: oncall
    alerts:
      - record: job:up:sum
        expr: sum by (job) (up)
      - {<<: *common, alert: WebDown, expr: up == 0, severity: null}
      - alert: WebErrors
        kind: ratio
        errors: errors_total
        total: requests_total
        variants:
          - {severity: low, above: 0.01}
          - {severity: high, above: 0.05, for: 5m}
      - {alert: WebTrouble, kind: composite, any: WebDown}
      - alert: DiskFull
        variants: [{severity: low, expr: disk_used > 80}, {severity: high, expr: disk_used > 95}]
    slos:
      - name: availability
        objective: 99.9
        sli: {good: "sum(rate(ok_total[{{window}}]))", total: "sum(rate(requests_total[{{window}}]))"}
        alerting: {page: false, ticket: null}
      - name: quiet
        objective: 99
        sli: {raw: "1 - avg_over_time(probe_success[{{window}}])"}
        alerting: false
"""


def test_the_forms_the_reader_takes_beside_the_usual_ones_validate(tmp_path: Path) -> None:
    (tmp_path / "edges.yaml").write_text(EDGE_FORMS)
    load_catalog(tmp_path)
    assert [(list(e.absolute_path), e.message) for e in VALIDATOR.iter_errors(load(EDGE_FORMS))] == []


BASE = """\
version: 1
channels:
  chat: {type: slack, url: "${SLACK_URL}"}
escalations:
  oncall: {steps: [{notify: [chat]}]}
groups:
  - name: node
    escalation: oncall
    alerts:
      - alert: HighCPU
        expr: cpu_usage
        above: {warning: 80, critical: 95}
"""
# (what is broken, text added to or changed in BASE, where the reader says so, what it says, the schema's rule)
BROKEN = [
    (
        "unknown field in an alert",
        ("above:", "fro: 5m\n        above:"),
        "groups[0].alerts[0].fro",
        'unknown field "fro"; did you mean "for"?',
        "additionalProperties",
    ),
    (
        "a field of another kind",
        ("above:", "kind: trend\n        within: 5m\n        lookback: 1h\n        horizon: 1h\n        above:"),
        "groups[0].alerts[0].within",
        'field "within" does not apply to kind trend',
        "additionalProperties",
    ),
    (
        "a field of the default kind's other",
        ("above:", "baseline: 1d\n        above:"),
        "groups[0].alerts[0].baseline",
        'field "baseline" does not apply to kind threshold',
        "additionalProperties",
    ),
    (
        "a kind's required field missing",
        ("expr: cpu_usage", "kind: ratio\n        errors: cpu_usage"),
        "groups[0].alerts[0].total",
        "required field is missing",
        "required",
    ),
    (
        "a channel missing a required setting",
        ('{type: slack, url: "${SLACK_URL}"}', '{type: telegram, bot_token: "${TG}"}'),
        "channels.chat.chat_id",
        "required field is missing",
        "required",
    ),
    (
        "a setting of another channel type",
        ('url: "${SLACK_URL}"', 'url: "${SLACK_URL}", chat_id: "1"'),
        "channels.chat.chat_id",
        'unknown field "chat_id"',
        "additionalProperties",
    ),
    (
        "an unknown channel type",
        ("type: slack", "type: opsgenie"),
        "channels.chat.type",
        'unknown channel type "opsgenie"',
        "enum",
    ),
    (
        "a literal secret",
        ('{type: slack, url: "${SLACK_URL}"}', "{type: telegram, bot_token: abc123, chat_id: '1'}"),
        "channels.chat.bot_token",
        "a literal secret",
        "pattern",
    ),
    (
        "a message format the channel lacks",
        ("channels:", 'channels:\n  tg: {type: telegram, bot_token: "${TG}", chat_id: "1", parse_mode: html}'),
        "channels.tg.parse_mode",
        "expected one of HTML, MarkdownV2, Markdown, none",
        "enum",
    ),
    (
        "wrong type for for",
        ("above:", "for: 5\n        above:"),
        "groups[0].alerts[0].for",
        "expected a duration such as 30s, 5m or 1h30m, got 5",
        "anyOf",
    ),
    (
        "a bad severity map value type",
        ("critical: 95", "critical: high"),
        "groups[0].alerts[0].above.critical",
        'expected a number, got "high"',
        "type",
    ),
    (
        "an unknown top-level key",
        ("groups:", "group: []\ngroups:"),
        "group",
        'unknown top-level key "group"; did you mean "groups"?',
        "additionalProperties",
    ),
    ("another catalog version", ("version: 1", "version: 2"), "version", "unsupported catalog version 2", "const"),
    (
        "an unknown policy choice",
        ("[{notify: [chat]}]}", "[{notify: [chat]}], on_resolve: everyone}"),
        "escalations.oncall.on_resolve",
        'unknown value "everyone"',
        "enum",
    ),
    (
        "receiver, not a route field",
        ("groups:", "routes: [{match: {team: db}, receiver: oncall}]\ngroups:"),
        "routes[0].receiver",
        'unknown field "receiver"',
        "additionalProperties",
    ),
    (
        "an unquoted phone number",
        ("channels:", "contacts:\n  ann: {phone: +8613800000001}\nchannels:"),
        "contacts.ann.phone",
        "is not an E.164 phone number",
        "type",
    ),
    (
        "an SLI without {{window}}",
        (
            "    alerts:",
            "    slos: [{name: a, objective: 99, sli: {errors: 'e[5m]', total: 't[{{window}}]'}}]\n    alerts:",
        ),
        "groups[0].slos[0].sli.errors",
        "must use {{window}}",
        "pattern",
    ),
    (
        "a variant's unknown field",
        (
            "above: {warning: 80, critical: 95}",
            "kind: threshold\n        variants: [{severity: warning, above: 80, owner: me}]",
        ),
        "groups[0].alerts[0].variants[0].owner",
        'unknown field "owner"',
        "additionalProperties",
    ),
]


def dotted(path: list) -> str:
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path).lstrip(".")


@pytest.mark.parametrize(("broken", "change", "where", "says", "rule"), BROKEN, ids=[case[0] for case in BROKEN])
def test_a_broken_file_is_rejected_by_the_schema_and_by_the_reader(
    tmp_path: Path, broken: str, change: tuple[str, str], where: str, says: str, rule: str
) -> None:
    assert BASE.count(change[0]) == 1, broken
    text = BASE.replace(*change)
    (tmp_path / "broken.yaml").write_text(text)
    with pytest.raises(CatalogError) as error:
        load_catalog(tmp_path)
    assert [d.message for d in error.value.diagnostics if dotted(list(d.path)) == where and says in d.message], (
        error.value.diagnostics
    )
    # The schema's rule fails at the field (at its mapping for a key that is missing or not allowed there).
    at = where.rpartition(".")[0] if rule in ("additionalProperties", "required") else where
    faults = {(dotted(list(e.absolute_path)), e.validator) for e in schema_errors(load(text))}
    assert (at, rule) in faults, faults


def test_the_base_of_the_broken_files_is_valid(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    load_catalog(tmp_path)
    assert list(VALIDATOR.iter_errors(load(BASE))) == []


# -- the same fields, shape by shape ---------------------------------------------------------------------
HOLE = "<the mapping under test>"
SLO = {"name": "s", "objective": 99, "sli": {"errors": "e[{{window}}]", "total": "t[{{window}}]"}}


def group(**fields: object) -> dict:
    return {"version": 1, "groups": [{"name": "g", **fields}]}


def alert(**fields: object) -> dict:
    return group(alerts=[{"alert": "A", **fields}])


# Where each shape's mapping sits in a file, and the fields it is given beside null ones (the reader looks at a
# key's value only once the key is known; a dispatching key must name the case, and `x-` keys are scratch).
PLACES: dict[Shape, tuple[object, dict]] = {
    shapes.FILE: (HOLE, {"version": 1, "x-scratch": None}),
    shapes.DEFAULTS: ({"version": 1, "defaults": HOLE}, {}),
    shapes.SLA_TARGET: ({"version": 1, "defaults": {"sla": {"critical": HOLE}}}, {}),
    shapes.SLO_DEFAULTS: ({"version": 1, "defaults": {"slos": HOLE}}, {}),
    shapes.RECEIVER: ({"version": 1, "receiver": HOLE}, {}),
    shapes.SELF_MONITORING: ({"version": 1, "self_monitoring": HOLE}, {}),
    shapes.DRILLS: ({"version": 1, "drills": HOLE}, {}),
    shapes.CONTACT: ({"version": 1, "contacts": {"ann": HOLE}}, {}),
    **{shape: ({"version": 1, "channels": {"c": HOLE}}, {"type": t}) for t, shape in shapes.CHANNELS.items()},
    shapes.POLICY: ({"version": 1, "escalations": {"p": HOLE}}, {}),
    shapes.STEP: ({"version": 1, "escalations": {"p": {"steps": [HOLE]}}}, {}),
    shapes.TARGET: ({"version": 1, "escalations": {"p": {"steps": [{"notify": [HOLE]}]}}}, {}),
    shapes.REPEAT: ({"version": 1, "escalations": {"p": {"steps": [{"notify": "c"}], "repeat": HOLE}}}, {}),
    shapes.ROUTE: ({"version": 1, "routes": [HOLE]}, {}),
    shapes.SCHEDULE: ({"version": 1, "schedules": {"s": HOLE}}, {}),
    shapes.LAYER: ({"version": 1, "schedules": {"s": {"time_zone": "UTC", "layers": [HOLE]}}}, {}),
    shapes.RESTRICTION: (
        {"version": 1, "schedules": {"s": {"time_zone": "UTC", "layers": [{"restrict": [HOLE]}]}}},
        {},
    ),
    shapes.ICAL: ({"version": 1, "schedules": {"s": {"time_zone": "UTC", "layers": [{"ical": HOLE}]}}}, {}),
    shapes.OVERRIDE: ({"version": 1, "schedules": {"s": {"time_zone": "UTC", "layers": [], "overrides": [HOLE]}}}, {}),
    shapes.INTERVAL: ({"version": 1, "quiet_hours": {"q": [HOLE]}}, {}),
    shapes.TIME_SPAN: ({"version": 1, "quiet_hours": {"q": [{"times": [HOLE]}]}}, {}),
    shapes.GROUP: ({"version": 1, "groups": [HOLE]}, {}),
    **{shape: (group(alerts=[HOLE]), {"kind": kind}) for kind, shape in shapes.ALERTS.items()},
    **{shape: (alert(kind=kind, variants=[HOLE]), {}) for kind, shape in shapes.VARIANTS.items()},
    shapes.RECORD: (group(alerts=[HOLE]), {}),
    shapes.ESCALATE: (alert(expr="up", escalate=HOLE), {}),
    shapes.LINT: (alert(expr="up", lint=HOLE), {}),
    shapes.EXAMPLE: (alert(expr="up", examples=[HOLE]), {}),
    shapes.EXAMPLE_SERIES: (alert(expr="up", examples=[{"fires": [], "input": [HOLE]}]), {}),
    shapes.SLO: (group(slos=[HOLE]), {}),
    shapes.SLI: (group(slos=[{**SLO, "sli": HOLE}]), {}),
    shapes.LATENCY: (group(slos=[{**SLO, "sli": {"latency": HOLE}}]), {}),
    shapes.ALERTING: (group(slos=[{**SLO, "alerting": HOLE}]), {}),
    shapes.TIER: (group(slos=[{**SLO, "alerting": {"page": HOLE}}]), {}),
    shapes.PROMETHEUS_RULE: (group(prometheus_rule=HOLE), {}),
    shapes.INHIBIT: (group(inhibits=[HOLE]), {}),
    shapes.ALERT_WINDOWS: ({"version": 1, "alert_windows": [HOLE]}, {}),
    shapes.WINDOW_PAIRS: ({"version": 1, "alert_windows": [{"period": "30d", "page": HOLE}]}, {}),
    shapes.BURN_WINDOW: ({"version": 1, "alert_windows": [{"period": "30d", "page": {"quick": HOLE}}]}, {}),
}
EVERY_SHAPE = [
    item
    for value in vars(shapes).values()
    for item in (value.values() if isinstance(value, dict) else [value])
    if isinstance(item, Shape)
]
EVERY_FIELD = {name for shape in EVERY_SHAPE for name in shape.fields}
UNKNOWN = re.compile(r'unknown (field|top-level key) "|field ".*" does not apply to kind ')


def fill(node: object, mapping: dict, path: tuple = ()) -> tuple[object, tuple | None]:
    """The file with `mapping` in the hole, and the hole's path."""
    if node == HOLE:
        return mapping, path
    if not isinstance(node, dict | list):
        return node, None
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    filled = {key: fill(node[key], mapping, (*path, key)) for key in keys}
    where = next((at for _, at in filled.values() if at is not None), None)
    values = {key: value for key, (value, _) in filled.items()}
    return (values if isinstance(node, dict) else list(values.values())), where


def reader_unknown(directory: Path, data: object) -> set[tuple]:
    """The keys the reader reports as unknown, or as not applying to the alert's kind."""
    directory.mkdir()
    (directory / "c.yaml").write_text(json.dumps(data))  # JSON is YAML
    try:
        load_catalog(directory)
    except CatalogError as exc:
        return {d.path for d in exc.diagnostics if d.at_key and UNKNOWN.match(d.message)}
    return set()


def schema_unknown(data: object) -> set[tuple]:
    """The keys the schema allows in no mapping where they are (properties neither listed nor `x-`)."""
    found = set()
    for error in schema_errors(data):
        if error.validator == "additionalProperties":
            listed, patterns = error.schema.get("properties", {}), error.schema.get("patternProperties", {})
            found |= {
                (*error.absolute_path, key)
                for key in error.instance
                if key not in listed and not any(re.search(p, key) for p in patterns)
            }
    return found


def test_every_shape_has_a_place_and_a_definition_of_its_own() -> None:
    assert set(PLACES) == set(EVERY_SHAPE)
    titles = [shape.title for shape in EVERY_SHAPE]
    assert len(set(titles)) == len(titles)
    defined = {d["title"] for d in SCHEMA["$defs"].values() if "title" in d}
    assert defined >= set(titles) - {shapes.FILE.title} and SCHEMA["title"] == shapes.FILE.title


@pytest.mark.parametrize("shape", EVERY_SHAPE, ids=[shape.title for shape in EVERY_SHAPE])
def test_the_schema_lists_exactly_the_fields_the_reader_accepts(tmp_path: Path, shape: Shape) -> None:
    """Every field of the shape is accepted by both; every other field name of the catalog, and a misspelt one,
    is reported by both, at the same place. (A record is told from an alert by having no `alert:`.)"""
    template, given = PLACES[shape]
    own = dict.fromkeys(shape.fields) | given
    data, where = fill(template, own)
    assert where is not None
    assert reader_unknown(tmp_path / "own", data) == set() == schema_unknown(data)
    others = dict.fromkeys(EVERY_FIELD - set(shape.fields) - ({"alert"} if shape is shapes.RECORD else set()))
    data, where = fill(template, own | others | {"bogus": None})
    expected = {(*where, name) for name in [*others, "bogus"]}
    assert reader_unknown(tmp_path / "more", data) == expected
    assert schema_unknown(data) == expected


# -- the command and the committed copy ------------------------------------------------------------------
def test_docs_catalog_schema_json_is_what_amcompanion_schema_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == SCHEMA
    assert DOCS_SCHEMA.read_text(encoding="utf-8") == printed, f"docs/catalog.schema.json is stale: run `{REFRESH}`"


def test_schema_o_writes_what_it_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "-o", str(tmp_path / "catalog.schema.json")]) == 0
    assert capsys.readouterr().out == ""
    assert main(["schema"]) == 0
    assert (tmp_path / "catalog.schema.json").read_text(encoding="utf-8") == capsys.readouterr().out
    assert main(["schema", "-o", str(tmp_path / "no-such-dir" / "s.json")]) == 1
    assert "no-such-dir/s.json: No such file or directory" in capsys.readouterr().err


def test_first_catalog_md_tells_how_to_refresh_the_schema() -> None:
    assert REFRESH in (ROOT / "docs" / "first-catalog.md").read_text()


def test_the_docs_field_tables_are_written_from_the_shapes() -> None:
    """docs/catalog-fields.md is what `amcompanion schema --markdown` writes, names every field of every shape the
    reader takes, and every link in it leads to a table of the page."""
    from amcompanion.catalog import reference

    text = reference.markdown()
    assert (ROOT / "docs" / "catalog-fields.md").read_text() == text, (
        "docs/catalog-fields.md is stale: amcompanion schema --markdown -o docs/catalog-fields.md"
    )
    for shape in reference.reachable():
        section = text.split(f"\n## {shape.title}\n", 1)[1].split("\n## ", 1)[0]
        assert [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")] == list(shape.fields)
    headings = {reference.anchor_of(line[3:]) for line in text.splitlines() if line.startswith("## ")}
    assert set(re.findall(r"\]\(#([^)]+)\)", text)) <= headings
