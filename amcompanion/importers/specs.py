"""What the SLO spec importers (Sloth, OpenSLO, Pyrra) share: reading a source file's fields while building the
catalog data, remembering where each catalog field came from, and what could not be carried, and why."""

from collections.abc import Iterable

from amcompanion.catalog.diagnostics import KeyPath, format_path
from amcompanion.importers import Carried, Conversion, NotCarried
from amcompanion.wording import did_you_mean


class SpecReader:
    """One source file being converted. Paths into the source start with the document's index when the file
    has several documents (as the catalog reader sees such a file: a list)."""

    def __init__(self, documents: list[dict]):
        self.documents = documents
        self.conversion = Conversion({"version": 1})

    def at(self, index: int, *path: str | int) -> KeyPath:
        """The source path of `path` in document `index`."""
        return (index, *path) if len(self.documents) > 1 else tuple(path)

    def fields(self, value: object, at: KeyPath, allowed: Iterable[str]) -> dict:
        """The mapping at `at` ({} if it is not one); each key it should not have is not carried."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.skip(at, f"expected a mapping, got {type(value).__name__}")
            return {}
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed) or f"; expected one of: {', '.join(allowed)}"
                self.skip((*at, key), f'unknown field "{key}"{hint}')
        return value

    def items(self, value: object, at: KeyPath) -> list:
        """A list from the source; anything else is skipped with the reason (never iterated as if it were one)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.skip(at, f"expected a list, got {type(value).__name__}")
            return []
        return value

    def origin(self, path: KeyPath, at: KeyPath) -> None:
        """Catalog path `path` came from `at`: errors about it name `at`."""
        self.conversion.origins[path] = at

    def put(self, target: dict, path: KeyPath, key: str, value: object, at: KeyPath) -> None:
        """target[key] = value, where `target` sits at catalog path `path` and the value came from `at`."""
        target[key] = value
        self.origin((*path, key), at)

    def skip(self, at: KeyPath, reason: str, what: str = "") -> None:
        source = format_path(at) + (f" ({what})" if what else "")
        self.conversion.not_carried.append(NotCarried(source, reason, at))

    def carried(self, path: KeyPath, at: KeyPath, what: str, how: str) -> None:
        self.conversion.carried.append(Carried(path, f"{format_path(at)} ({what})", how))
