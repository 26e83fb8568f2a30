"""The JSON Schema (draft 2020-12) of one catalog file, written from the shapes the reader validates with, for
editors (`amcompanion schema`; docs/catalog.schema.json). It says what a file may hold; the compiler still
checks what a schema cannot: PromQL, names used but never defined, severities of the catalog's own list."""

import re

from amcompanion.catalog import shapes
from amcompanion.catalog.model import COMPARISONS
from amcompanion.catalog.schema_url import SCHEMA_URL
from amcompanion.catalog.shapes import Shape, Value

DRAFT = "https://json-schema.org/draft/2020-12/schema"


class Definitions:
    """The schema's `$defs`: one object per shape met, named after its title, and each shared Value."""

    def __init__(self) -> None:
        self.defs: dict[str, dict] = {}

    def ref(self, shape: Shape, body: dict | None = None) -> dict:
        """A reference to the shape's definition, written the first time it is met (as `body`, if given)."""
        name = re.sub(r"[^a-z0-9]+", "_", shape.title.lower()).strip("_")
        if name not in self.defs:
            self.defs[name] = self.object(shape) if body is None else body
        return {"$ref": f"#/$defs/{name}"}

    def object(self, shape: Shape) -> dict:
        out = {
            "title": shape.title,
            "type": "object",
            "properties": {key: self.walk(schema) for key, schema in shape.fields.items()},
            "additionalProperties": False,
        }
        return {**out, "required": list(shape.required)} if shape.required else out

    def walk(self, node: object) -> object:
        """A field's schema as JSON: each `{"$ref": SHAPE}` or `{"$ref": VALUE}` a reference to its definition."""
        if isinstance(node, Shape):
            return self.ref(node)["$ref"]
        if isinstance(node, Value):
            if node.name not in self.defs:
                self.defs[node.name] = self.walk(node.schema)
            return f"#/$defs/{node.name}"
        if isinstance(node, dict):
            return {k: self.walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.walk(item) for item in node]
        return node


def when(key: str, value: str, then: dict) -> dict:
    """`then` applies to a mapping whose `key` is `value`."""
    return {"if": {"required": [key], "properties": {key: {"const": value}}}, "then": then}


def alert_item(defs: Definitions) -> dict:
    """An item of a group's `alerts`, told apart as the reader does: `record:` without `alert:` is a recording
    rule; else an alert of its `kind`, which is `threshold` when it gives a level and `expr` otherwise. With
    `variants`, the kind's required fields may come from the variants instead."""
    kinds = {}
    for kind, shape in shapes.ALERTS.items():
        own = shapes.KIND_REQUIRED[kind]
        body = {"required": ["alert"], "if": {"required": ["variants"]}, "else": {"required": list(own)}}
        kinds[kind] = defs.ref(shape, {**defs.object(shape), **body} if own else None)
    gives_a_level = {"anyOf": [{"required": [key]} for key in COMPARISONS]}
    by_default = {"if": gives_a_level, "then": kinds["threshold"], "else": kinds["expr"]}
    return {
        "title": "Alert or recording rule",
        "type": "object",
        "if": {"required": ["record"], "not": {"required": ["alert"]}},
        "then": defs.ref(shapes.RECORD),
        "else": {
            "properties": {"kind": shapes.ALERT_COMMON["kind"]},
            "allOf": [
                *(when("kind", kind, ref) for kind, ref in kinds.items()),
                {"if": {"not": {"required": ["kind"]}}, "then": by_default},
            ],
        },
    }


def channel(defs: Definitions) -> dict:
    """A channel: its `type` says which settings it takes and which of them are required."""
    return {
        "title": "Channel",
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(shapes.CHANNELS), "description": "the channel's type"}},
        "allOf": [when("type", ctype, defs.ref(shape)) for ctype, shape in shapes.CHANNELS.items()],
    }


def catalog_schema() -> dict:
    defs = Definitions()
    root = defs.object(shapes.FILE)
    root["patternProperties"] = {"^x-": {"description": "free scratch space, e.g. for YAML anchors; not read"}}
    defs.defs["alert"] = alert_item(defs)
    defs.defs["channel"] = channel(defs)
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_URL,
        "description": "One file of an amcompanion alert catalog, format v1 (docs/catalog.md).",
        **root,
        "$defs": defs.defs,
    }
