"""The emitter's output reads back identically under YAML 1.1 (PyYAML, as Go's yaml.v2) and 1.2 (ruamel)."""

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from amcompanion.emit.yamlout import dump, dump_lines

TRICKY = [
    "yes",
    "on",
    "Off",
    "22:00",
    "0o17",
    "1e3",
    "~",
    "- x",
    "a: b",
    "#x",
    " x",
    "x ",
    "1_000",
    "0x1F",
    "2024-01-01",
    ".5",
    "<<",
    "=",
    "y",
    "N",
    "True",
    "null",
    "line\n",
    "a\nb",
    "a\n\nb\n",
    "a\n b",
    "\ta",
    "5m",
    "1h30m",
    "'q'",
    '"d"',
    "{{ $value }}",
    'x{a="b"}',
    "@x",
    "%x",
    "!x",
    "*x",
    "&x",
    "|x",
    ">x",
    "\u2028",
    "\x7f",
    "é",
    "",
]
scalars = st.one_of(
    st.text(), st.sampled_from(TRICKY), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(min_size=1), children, max_size=4)
    ),
    max_leaves=20,
)
yaml12 = YAML(typ="safe", pure=True)


@settings(max_examples=1500, deadline=None)
@given(trees)
@example({"noncharacters": ["\ufffe", "a\uffffb"]})  # not printable in YAML: PyYAML refused them unescaped
def test_round_trip_under_yaml_1_1_and_1_2(tree: object) -> None:
    document = {"root": tree}
    text = dump(document, "header line\nsecond")
    assert yaml.safe_load(text) == document
    assert yaml12.load(text) == document


def test_strings_go_would_misread_are_quoted() -> None:
    text = dump({"a": "on", "b": "yes", "c": "22:00", "d": "1e3", "e": "5m", "f": "null"})
    assert text == "a: 'on'\nb: 'yes'\nc: '22:00'\nd: '1e3'\ne: 5m\nf: 'null'\n"


def test_nested_document_is_reused_with_its_indentation() -> None:
    inner = {"groups": [{"name": "g", "rules": [{"expr": "a\nb", "labels": {"x": "1"}}]}]}
    lines = dump_lines(inner)
    text = dump({"kind": "PrometheusRule", "spec": inner}, reuse={id(inner): lines})
    assert text == dump({"kind": "PrometheusRule", "spec": inner})
    assert yaml.safe_load(text)["spec"] == inner
