"""Catalog errors that name `file:line:column: field: message`.

Validation works on plain data (fast to load) and records each problem with the key path to it; only
when there are problems are the files read again with ruamel, whose round-trip nodes know their line
and column, to turn each path into a position (ruamel is imported only then).
"""

from dataclasses import dataclass, field
from pathlib import Path

PathPart = str | int
KeyPath = tuple[PathPart, ...]


def format_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class Diagnostic:
    file: str
    path: KeyPath
    message: str
    at_key: bool = False  # point at the key itself (unknown or duplicate keys), not at its value
    line: int = 0
    column: int = 0
    related: tuple[str, KeyPath] | None = None  # another place the message refers to ("first defined at")

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        field_name = format_path(self.path)
        return f"{where}: {field_name}: {self.message}" if field_name else f"{where}: {self.message}"


@dataclass
class Diagnostics:
    """Every problem of a run, reported together."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(
        self,
        file: str,
        path: KeyPath,
        message: str,
        *,
        at_key: bool = False,
        related: tuple[str, KeyPath] | None = None,
    ) -> None:
        self.items.append(Diagnostic(file, path, message, at_key, related=related))


class CatalogError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


def locate(diagnostics: list[Diagnostic], root: Path, display_root: str) -> list[Diagnostic]:
    """Give each diagnostic the line and column of its path, reading each file once."""
    trees: dict[str, object] = {}

    def position(file: str, path: KeyPath, at_key: bool) -> tuple[int, int]:
        if file not in trees:
            trees[file] = _round_trip(root / Path(file).relative_to(display_root))
        return _position(trees[file], path, at_key)

    located = []
    for diag in diagnostics:
        if diag.line:
            located.append(diag)
            continue
        line, column = position(diag.file, diag.path, diag.at_key)
        message = diag.message
        if diag.related:
            other_file, other_path = diag.related
            other_line, _ = position(other_file, other_path, True)
            message += f" (first defined at {other_file}:{other_line})"
        located.append(Diagnostic(diag.file, diag.path, message, diag.at_key, line, column))
    return sorted(located, key=lambda d: (d.file, d.line, d.column, d.message))


def _round_trip(path: Path) -> object:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    try:
        return YAML().load(path.read_text(encoding="utf-8"))
    except (MarkedYAMLError, OSError, UnicodeDecodeError):
        return None


def _position(tree: object, path: KeyPath, at_key: bool) -> tuple[int, int]:
    """1-based line and column of the deepest node of `path` that the file has."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    node = tree
    line, column = 1, 1
    for index, part in enumerate(path):
        last = index == len(path) - 1
        if isinstance(node, CommentedMap) and part in node:
            try:
                pos = node.lc.key(part) if at_key and last else node.lc.value(part)
            except KeyError:  # a key merged in from an anchor (`<<: *base`) has no position of its own here
                pos = None
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            pos = node.lc.item(part)
            node = node[part]
        else:
            if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
                return node.lc.line + 1, node.lc.col + 1
            break
        if pos is not None:
            line, column = pos[0] + 1, pos[1] + 1
    return line, column


def syntax_error(text: str, file: str) -> Diagnostic:
    """A YAML syntax error as `file:line:column: message`, as ruamel describes it."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    try:
        YAML().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return Diagnostic(file, (), f"YAML syntax error: {problem}{context}", False, line, column)
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. on duplicate anchors)
        return Diagnostic(file, (), f"YAML syntax error: {exc}", False, 1, 1)
    return Diagnostic(file, (), "YAML syntax error", False, 1, 1)
