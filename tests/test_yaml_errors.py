"""YAML slips are reported so a person can act on them: the plain cause at `file:line:column`, the line itself
with a caret under the column, and no follow-on errors in other files caused by the file that did not parse."""

import textwrap
from pathlib import Path

import pytest

from amcompanion.catalog import load_catalog
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.cli import main

ALERT = """\
version: 1
groups:
  - name: web
    alerts:
      - alert: WebDown
        kind: threshold
        expr: up
        below: 1
        severity: critical
"""

SLIPS = {
    # name: (catalog text, line, column, message)
    "indentation": (
        ALERT.replace("        expr: up", "       expr: up"),
        7,
        8,
        "wrong indentation: this line is indented 7 spaces, which matches no line above it (0, 2, 4, 6 or 8 "
        "spaces); keys of one mapping must line up exactly",
    ),
    "indented deeper than a key with a value": (
        ALERT.replace("        expr: up", "          expr: up"),
        7,
        11,
        'wrong indentation: this line is indented 10 spaces, deeper than "kind" above it, which already has its '
        "value; indent it 8 spaces to add a key beside it",
    ),
    "a key among list items": (
        ALERT.replace("    alerts:", "  alerts:"),
        4,
        3,
        "a key among the items of a list: indent it like the keys of the item above to add it there, or start a "
        'new item with "- "',
    ),
    "tab": (
        ALERT.replace("        kind:", "\tkind:"),
        6,
        1,
        "a tab character: YAML indents with spaces only; replace the tab with spaces",
    ),
    "unclosed quote": (
        ALERT + '        summary: "{{ $labels.instance }} is down\n',
        10,
        18,
        'unclosed quote: add the closing " of this value',
    ),
    "unclosed quote, other quotes after it": (
        ALERT.replace("severity: critical", "severity: 'critical") + '        summary: "down"\n',
        9,
        19,
        "unclosed quote: add the closing ' of this value",
    ),
    "unclosed brace": (
        ALERT.replace("  - name: web", "  - name: web\n    labels: {team: web"),
        4,
        13,
        'unclosed "{": add the "}" after its last entry',
    ),
    "unclosed bracket at the end": (
        "version: 1\ndefaults:\n  group_by: [alertname, service\n",
        3,
        13,
        'unclosed "[": add the "]" after its last entry',
    ),
    "bracket closed by a brace": (
        "version: 1\ndefaults:\n  labels: {team: [a, b}\n",
        3,
        23,
        'this "}" closes the "[" at column 18: write "]"',
    ),
    "missing comma": (
        "version: 1\ndefaults:\n  labels: {team: web service: web}\n",
        3,
        22,
        "missing comma before this entry: separate the entries with commas, as in {team: web, service: web}",
    ),
    "missing space after a colon": (
        ALERT.replace("expr: up", "expr:up"),
        7,
        14,
        "missing space after the colon: `expr:up` is one word; write `expr: up`",
    ),
    "missing space after the first colon of the file": (
        ALERT.replace("version: 1", "version:1"),
        1,
        9,
        "missing space after the colon: `version:1` is one word; write `version: 1`",
    ),
    "missing colon": (
        ALERT.replace("expr: up", "expr up"),
        7,
        9,
        "missing colon: `expr up` is no `key: value`; write `expr: up`",
    ),
    "missing space after a dash": (
        ALERT.replace("      - alert: WebDown", "      -alert: WebDown"),
        5,
        8,
        'missing space after the dash: a list item starts with "- "',
    ),
    "duplicate key": (
        ALERT + "        expr: down\n",
        10,
        9,
        'duplicate key "expr" (first set on line 7): a mapping may set each key once; keep one of them',
    ),
    "a second colon in a value": (
        ALERT + "        summary: Web down: {{ $labels.instance }}\n",
        10,
        26,
        'a value holding ": " must be quoted: write summary: "Web down: {{ $labels.instance }}"',
    ),
    "a template at the start of a value": (
        ALERT + "        summary: {{ $labels.instance }} is down\n",
        10,
        18,
        'a value that starts with "{{" is read as a YAML mapping: quote it (summary: "...")',
    ),
    "a backslash in double quotes": (
        ALERT.replace("expr: up", 'expr: "rate(http_requests_total{code=~\\"5\\d\\d\\"}[5m])"'),
        7,
        50,
        'a backslash in double quotes starts an escape (\\n, \\"): write \\\\ for a backslash, or put the value '
        "in single quotes",
    ),
    "text after the closing quote": (
        ALERT.replace("- alert: WebDown", '- alert: "Web" Down'),
        5,
        22,
        "text after the closing quote: put the whole value inside the quotes",
    ),
    "a block scalar not indented": (
        ALERT + "        description: |\nThe instance is down.\n",
        11,
        1,
        'the text of a "|" or ">" block must be indented deeper than its key',
    ),
    "an undefined alias": (
        ALERT.replace("severity: critical", "severity: *level"),
        9,
        19,
        '"*level" names no anchor: define it above with "&level"',
    ),
    "a character that cannot start a value": (
        ALERT.replace("severity: critical", "severity: @critical"),
        9,
        19,
        'a value that starts with "@" must be quoted',
    ),
}


def catalog(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def errors_of(root: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(root)
    return [str(d) for d in caught.value.diagnostics]


@pytest.mark.parametrize("slip", sorted(SLIPS))
def test_a_slip_is_named_in_plain_words_with_its_line_and_a_caret(tmp_path: Path, slip: str) -> None:
    text, line, column, message = SLIPS[slip]
    root = catalog(tmp_path / "rulesets", {"a.yaml": text})
    (error,) = errors_of(root)
    head, source, caret = error.splitlines()
    assert head == f"rulesets/a.yaml:{line}:{column}: YAML syntax error: {message}"
    assert source == f"  {line} | {text.splitlines()[line - 1].replace(chr(9), '→')}"
    prefix = f"  {' ' * len(str(line))} | "
    assert caret == prefix + " " * (column - 1) + "^"


def test_no_parser_jargon_reaches_the_reader(tmp_path: Path) -> None:
    for i, (text, *_) in enumerate(SLIPS.values()):
        (error,) = errors_of(catalog(tmp_path / str(i), {"a.yaml": text}))
        for jargon in ("<block", "<stream", "<scalar>", "while parsing", "while scanning", "expected '"):
            assert jargon not in error, error


def test_compile_prints_the_line_and_caret_under_the_message(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    text, *_, message = SLIPS["tab"]
    root = catalog(tmp_path / "rulesets", {"a.yaml": text})
    assert main(["compile", str(root), "-o", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        f"rulesets/a.yaml:6:1: YAML syntax error: {message}\n  6 | →kind: threshold\n    | ^\n"
        "1 error; nothing written\n"
    )
    assert not (tmp_path / "out").exists()


PEOPLE = """\
version: 1
contacts:
  alice: {phone: "+15550100001"}
channels:
  sms: {type: twilio_sms, account_sid: "${SID}", auth_token: "${TOKEN}", from: "+15550000000"}
escalations:
  web-oncall:
    steps:
      - notify: [{channel: sms, to: [alice]}]
   repeat: {every: 30m, times: 3}
"""
DEFAULTS = "version: 1\ndefaults:\n  escalation: web-oncall\n"
GROUPS = """\
version: 1
groups:
  - name: web
    escalation: web-oncall
    alerts:
      - {alert: WebDown, expr: up, below: 1, severity: critical}
"""


def test_a_file_that_does_not_parse_is_the_only_error_not_the_names_it_would_define(tmp_path: Path) -> None:
    root = catalog(tmp_path / "rulesets", {"00-defaults.yaml": DEFAULTS, "people.yaml": PEOPLE, "web.yaml": GROUPS})
    assert errors_of(root) == [
        "rulesets/people.yaml:10:4: YAML syntax error: wrong indentation: this line is indented 3 spaces, which "
        "matches no line above it (0, 2, 4, 6 or 8 spaces); keys of one mapping must line up exactly\n"
        "  10 |    repeat: {every: 30m, times: 3}\n"
        "     |    ^\n"
        "  note: names defined in this file are not checked until it parses (used elsewhere: escalation policy "
        '"web-oncall")'
    ]


def test_a_name_the_unparsed_file_does_not_mention_is_still_reported(tmp_path: Path) -> None:
    groups = GROUPS.replace("escalation: web-oncall", "escalation: db-oncall")
    root = catalog(tmp_path / "rulesets", {"00-defaults.yaml": DEFAULTS, "people.yaml": PEOPLE, "web.yaml": groups})
    syntax, undefined = errors_of(root)
    assert syntax.startswith("rulesets/people.yaml:10:4: YAML syntax error: wrong indentation")
    assert undefined == 'rulesets/web.yaml:4:17: groups[0].escalation: undefined escalation policy "db-oncall"'
