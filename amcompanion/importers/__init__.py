"""Bringing what teams already have: each source format is a module that turns parsed YAML documents into
catalog data.

The same conversion serves `amcompanion import`, which writes it out as catalog files with comments naming
each rule's source, and the catalog reader, which compiles the formats marked `drop_in` (SLO specs) when
they are found in the catalog directory as they are.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from amcompanion.catalog.diagnostics import KeyPath
from amcompanion.catalog.model import Defaults

DEFAULT_SEVERITIES = tuple(Defaults().severities)


@dataclass(frozen=True)
class Carried:
    """One rule or SLO the conversion expressed, and where it now sits in the catalog data."""

    path: KeyPath  # e.g. ("groups", 0, "alerts", 3)
    source: str  # what it was: 'groups[0].rules[3] (alert HostOutOfMemory)'
    how: str  # what it became: a kind (threshold, expr, record, ...) or "slo"


@dataclass(frozen=True)
class NotCarried:
    """Something of the source the catalog cannot say (yet), with the reason: never dropped silently."""

    source: str
    reason: str
    at: KeyPath = ()  # where it is in the source file, when known (drop-in errors point there)


@dataclass
class Conversion:
    """One source file as one catalog file."""

    data: dict  # the catalog file's top-level mapping: {"version": 1, "groups": [...]}
    carried: list[Carried] = field(default_factory=list)
    not_carried: list[NotCarried] = field(default_factory=list)
    origins: dict[KeyPath, KeyPath] = field(default_factory=dict)  # catalog path → source path, for errors


@dataclass(frozen=True)
class Format:
    """A source format: how to recognise one of its documents, and how to convert a file of them."""

    name: str  # as people call it: "Prometheus rule file", "Sloth prometheus/v1 spec"
    recognises: Callable[[dict], bool]
    convert: Callable[[list[dict]], Conversion]  # every document of one file, each one this format recognises
    drop_in: bool = False  # compiled as it is when found in the catalog directory


def formats(severities: tuple[str, ...] = DEFAULT_SEVERITIES) -> list[Format]:
    """Every format, most specific first: the first that recognises a document owns it. `severities` are those
    of the catalog the rules go into: a rule's severity label becomes the catalog's `severity:` only if listed."""
    from amcompanion.importers import openslo, prometheus, pyrra, sloth

    return [*prometheus.formats(severities), *sloth.FORMATS, *openslo.FORMATS, *pyrra.FORMATS]


def recognise(document: object, severities: tuple[str, ...] = DEFAULT_SEVERITIES) -> Format | None:
    if not isinstance(document, dict):
        return None
    return next((f for f in formats(severities) if f.recognises(document)), None)
