"""Catalog errors that name `file:line:column: field: message`.

Validation works on plain data (fast to load) and records each problem with the key path to it; only
when there are problems are the files read again with ruamel, whose round-trip nodes know their line
and column, to turn each path into a position (ruamel is imported only then).

A YAML syntax error is worded for the person who made the slip, not in the parser's terms, and shows the
line with a caret under the column (`syntax_error`).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ruamel.yaml.error import MarkedYAMLError

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
    excerpt: tuple[str, ...] = ()  # lines printed under the message: the source line, a caret, a note

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        field_name = format_path(self.path)
        head = f"{where}: {field_name}: {self.message}" if field_name else f"{where}: {self.message}"
        return "\n".join((head, *self.excerpt))


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
        documents = list(YAML().load_all(path.read_text(encoding="utf-8")))
    except (MarkedYAMLError, OSError, UnicodeDecodeError):
        return None
    # several documents (`---`): a plain list, as the catalog reader sees the file
    return documents[0] if len(documents) == 1 else documents or None


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
        elif type(node) is list and isinstance(part, int) and 0 <= part < len(node):  # the file's documents
            pos, node = None, node[part]
        else:
            if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
                return node.lc.line + 1, node.lc.col + 1
            break
        if pos is not None:
            line, column = pos[0] + 1, pos[1] + 1
    return line, column


def syntax_error(text: str, file: str) -> Diagnostic:
    """A YAML syntax error as `file:line:column: YAML syntax error: <what to fix>`, then the line and a caret."""
    line, column, message = _explain(text)
    where = (line, column) if line else (1, 1)
    return Diagnostic(
        file, (), f"YAML syntax error: {message}", False, *where, excerpt=source_excerpt(text, line, column)
    )


def source_excerpt(text: str, line: int, column: int) -> tuple[str, ...]:
    """The source line and a caret under `column`; a tab is shown as → (one column, as the parser counts it)."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ()
    gutter = " " * len(str(line))
    return (f"  {line} | {lines[line - 1].replace(chr(9), '→')}", f"  {gutter} | {' ' * (column - 1)}^")


# -- YAML slips ------------------------------------------------------------------------------------------
# ruamel finds the error (yaml_rs, which reads the catalog, does not always say where); the words are ours,
# because ruamel's (`expected <block end>, but found '?'`) name the parser's state rather than the slip.
_KEY_NO_SPACE = re.compile(r"^(\s*(?:-\s+)?)[A-Za-z_][\w.-]*:(?=[^\s:/])")  # `name:node` is one word
_DASH_NO_SPACE = re.compile(r"^\s*-(?=[A-Za-z_\"'{\[])")  # `-name: a` is a key, not a list item
_KEY_VALUE = re.compile(r"^\s*(?:-\s+)?([^\s:#\"'{\[-][^:#]*?):\s+(.*?)\s*$")  # group 1 the key, 2 the value
_TEMPLATE_VALUE = re.compile(r"^\s*(?:-\s+)?([\w.-]+):\s+(\{\{)")
_OPENS_QUOTE = re.compile(r"^\s*(?:-\s+)?(?:[^\s:#\"'][^:#]*:\s+)?([\"'])")
_BUT_FOUND = re.compile(r"but (?:found|got) '(.*)'$")
_JARGON = {
    "<block end>": "the end of the block",
    "<block mapping start>": "a new key",
    "<block sequence start>": "a list",
    "<scalar>": "a value",
    "<stream end>": "the end of the file",
    "'?'": "a key",
    "'-'": 'a list item ("- ")',
}
_CLOSING = {"{": "}", "[": "]"}

Slip = tuple[int, int, str]  # 1-based line (0: unknown) and column, and what to do


def _explain(text: str) -> Slip:
    """Where the slip is and what to do about it, in a person's words."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError

    lines = text.splitlines()
    try:
        list(YAML().load_all(text))
    except DuplicateKeyError as exc:
        return _duplicate_key(exc, lines)
    except MarkedYAMLError as exc:
        return _marked(exc, lines)
    except Exception as exc:  # a few carry no position (a tag on a value it cannot take: `!!int abc`)
        return 0, 0, str(exc)
    return 0, 0, "the YAML reader refused this file"  # yaml_rs refused what ruamel reads


def _duplicate_key(exc: "MarkedYAMLError", lines: list[str]) -> Slip:
    found = re.search(r'duplicate key "(.*?)" with value', exc.problem or "")
    key = found.group(1) if found else "?"
    mark, start = exc.problem_mark, exc.context_mark
    first = next(
        (
            i
            for i in range(start.line if start else 0, mark.line)
            if re.match(rf"[\"']?{re.escape(key)}[\"']?\s*:", lines[i][mark.column :])
        ),
        None,
    )
    where = f" (first set on line {first + 1})" if first is not None else ""
    return (
        mark.line + 1,
        mark.column + 1,
        f'duplicate key "{key}"{where}: a mapping may set each key once; keep one of them',
    )


def _marked(exc: "MarkedYAMLError", lines: list[str]) -> Slip:
    problem, context = exc.problem or "", exc.context or ""
    mark = exc.problem_mark
    if mark is None:  # the helpers below all start from where the parser stopped
        start = exc.context_mark
        return (start.line + 1, start.column + 1, _plain(context)) if start else (0, 0, _plain(context))
    at = mark.line, mark.column
    here = lines[at[0]] if at[0] < len(lines) else ""
    if "'\\t'" in problem:
        tab = here.find("\t")
        return (
            at[0] + 1,
            (tab if tab >= 0 else at[1]) + 1,
            "a tab character: YAML indents with spaces only; replace the tab with spaces",
        )
    template = _TEMPLATE_VALUE.match(here)
    if template:
        key, column = template.group(1), template.start(2)
        message = f'a value that starts with "{{{{" is read as a YAML mapping: quote it ({key}: "...")'
        return at[0] + 1, column + 1, message
    if "quoted scalar" in context and exc.context_mark is not None:
        if "escape" in problem:  # the mark is on the character after the backslash
            return (
                at[0] + 1,
                at[1],
                'a backslash in double quotes starts an escape (\\n, \\"): write \\\\ for a backslash, '
                "or put the value in single quotes",
            )
        opener = exc.context_mark
        quote = lines[opener.line][opener.column]
        return opener.line + 1, opener.column + 1, f"unclosed quote: add the closing {quote} of this value"
    if context.startswith("while parsing a flow"):
        return _flow(exc, lines) or (at[0] + 1, at[1] + 1, _plain(problem))
    for fix in (_colon_space, _second_colon, _over_indented, _dash_space, _unclosed_quote, _no_colon, _indentation):
        slip = fix(exc, lines)
        if slip:
            return slip
    if "cannot start any token" in problem:
        return at[0] + 1, at[1] + 1, f'a value that starts with "{here[at[1] : at[1] + 1]}" must be quoted'
    alias = re.search(r"undefined alias '(.*)'", problem)
    if alias:
        return at[0] + 1, at[1] + 1, f'"*{alias.group(1)}" names no anchor: define it above with "&{alias.group(1)}"'
    return at[0] + 1, at[1] + 1, _plain(problem)


def _plain(problem: str) -> str:
    for jargon, words in _JARGON.items():
        problem = problem.replace(jargon, words)
    return problem or "not valid YAML"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _previous(lines: list[str], index: int) -> int | None:
    """The last line before `index` with content (not blank, not only a comment)."""
    for i in range(min(index, len(lines)) - 1, -1, -1):
        if lines[i].strip() and not lines[i].lstrip().startswith("#"):
            return i
    return None


def _parses_past(lines: list[str], index: int, fixed: str, line: int) -> bool:
    """Whether the file with line `index` replaced by `fixed` reads without error up to past `line` (0-based)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    try:
        list(YAML().load_all("\n".join([*lines[:index], fixed, *lines[index + 1 :]])))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return mark is not None and mark.line > line
    except Exception:
        return True  # a later, unmarked problem: the syntax is fine
    return True


def _colon_space(exc: "MarkedYAMLError", lines: list[str]) -> Slip | None:
    """`name:node`: without the space it is one word, and the lines after it no longer fit."""
    if exc.problem not in ("mapping values are not allowed here", "could not find expected ':'"):
        return None
    line = exc.problem_mark.line
    candidates = {line, _previous(lines, line)} | ({exc.context_mark.line} if exc.context_mark else set())
    for i in sorted((c for c in candidates if c is not None and c < len(lines)), reverse=True):
        found = _KEY_NO_SPACE.match(lines[i])
        if found and _parses_past(lines, i, lines[i][: found.end()] + " " + lines[i][found.end() :], line):
            word = lines[i][found.end(1) :].split()[0]
            fixed = word.replace(":", ": ", 1)
            return i + 1, found.end() + 1, f"missing space after the colon: `{word}` is one word; write `{fixed}`"
    return None


def _second_colon(exc: "MarkedYAMLError", lines: list[str]) -> Slip | None:
    """`summary: Disk full: 90%`: a value holding ": " must be quoted."""
    mark = exc.problem_mark
    if exc.problem != "mapping values are not allowed here" or mark.line >= len(lines):
        return None
    found = _KEY_VALUE.match(lines[mark.line])
    if not found or found.end(1) >= mark.column:
        return None
    key, value = found.group(1), found.group(2)
    quoted = f'"{value}"' if '"' not in value else "'" + value.replace("'", "''") + "'"
    return mark.line + 1, mark.column + 1, f'a value holding ": " must be quoted: write {key}: {quoted}'


def _key_column(line: str) -> int:
    """Where the keys of a line's mapping start: after the dashes of list items (`- alert: A` → that of alert)."""
    dashes = re.match(r"\s*(?:-\s+)*", line)
    return dashes.end() if dashes else 0


def _over_indented(exc: "MarkedYAMLError", lines: list[str]) -> Slip | None:
    """A key indented deeper than the line above, whose key already has its value."""
    line = exc.problem_mark.line
    above = _previous(lines, line)
    if exc.problem != "mapping values are not allowed here" or above is None or line >= len(lines):
        return None
    found = _KEY_VALUE.match(lines[above])
    indent, column = _indent(lines[line]), _key_column(lines[above])
    if not found or indent <= column or found.group(2)[:1] in ("|", ">", "#", ""):
        return None
    return (
        line + 1,
        indent + 1,
        f'wrong indentation: this line is indented {indent} spaces, deeper than "{found.group(1)}" above it, '
        f"which already has its value; indent it {column} spaces to add a key beside it",
    )


def _dash_space(exc: "MarkedYAMLError", lines: list[str]) -> Slip | None:
    """`-name: a`: without the space the dash is part of a key."""
    line = exc.problem_mark.line
    for i in (line, _previous(lines, line)):
        if i is not None and i < len(lines) and _DASH_NO_SPACE.match(lines[i]):
            column = _indent(lines[i]) + 1
            return i + 1, column + 1, 'missing space after the dash: a list item starts with "- "'
    return None


def _unclosed_quote(exc: "MarkedYAMLError", lines: list[str]) -> Slip | None:
    """The nearest line above the error whose value opens a quote that its line does not close."""
    line = exc.problem_mark.line
    for i in range(min(line, len(lines) - 1), -1, -1):
        found = _OPENS_QUOTE.match(lines[i])
        if not found:
            continue
        quote, rest = found.group(1), lines[i][found.end() :]
        closes = re.search(r'(?<!\\)"', rest) if quote == '"' else re.search(r"'(?!')", rest.replace("''", ""))
        if closes:
            continue
        if _parses_past(lines, i, lines[i].rstrip() + quote, line):
            return i + 1, found.start(1) + 1, f"unclosed quote: add the closing {quote} of this value"
        return None
    return None


def _no_colon(exc: "MarkedYAMLError", lines: list[str]) -> Slip | None:
    """A line of a mapping that is no `key: value` (`expr up`), or the text of a `|` block not indented."""
    start = exc.context_mark
    if exc.problem != "could not find expected ':'" or start is None or start.line >= len(lines):
        return None
    text = lines[start.line].strip()
    above = _previous(lines, start.line)
    if above is not None and re.search(r":\s+[|>][-+0-9]*\s*(#.*)?$", lines[above]):
        return start.line + 1, start.column + 1, 'the text of a "|" or ">" block must be indented deeper than its key'
    word, _, rest = text.partition(" ")
    fixed = f"{word}: {rest}" if rest else f"{word}:"
    return start.line + 1, start.column + 1, f"missing colon: `{text}` is no `key: value`; write `{fixed}`"


def _open_indents(lines: list[str], before: int) -> list[int]:
    """The indentations of the blocks still open at line `before`: where a line there may start."""
    stack: list[int] = []
    for line in lines[:before]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = _indent(line)
        while stack and stack[-1] > indent:
            stack.pop()
        for level in (indent, _key_column(line)):
            if not stack or stack[-1] < level:
                stack.append(level)
    return stack


def _indentation(exc: "MarkedYAMLError", lines: list[str]) -> Slip | None:
    """A line that lines up with no block above it, or a key among list items (or the reverse)."""
    mark = exc.problem_mark
    if "block" not in (exc.context or "") or mark.line >= len(lines):
        return None
    found = _BUT_FOUND.search(exc.problem or "")
    token = found.group(1) if found else ""
    here = lines[mark.line]
    indent = _indent(here)
    before = here[: mark.column].rstrip()
    if before.endswith(('"', "'")) and before.strip() not in ('"', "'"):
        return mark.line + 1, mark.column + 1, "text after the closing quote: put the whole value inside the quotes"
    levels = _open_indents(lines, mark.line)
    if levels and indent not in levels:
        *most, last = (str(level) for level in levels)
        shown = f"{', '.join(most)} or {last}" if most else last
        return (
            mark.line + 1,
            indent + 1,
            f"wrong indentation: this line is indented {indent} spaces, which matches no line above it "
            f"({shown} spaces); keys of one mapping must line up exactly",
        )
    if token == "-":
        return (
            mark.line + 1,
            mark.column + 1,
            'a list item ("- ") among the keys of a mapping: line it up with the other items of its list, '
            'or drop the "- "',
        )
    if token in ("?", "<block mapping start>"):
        return (
            mark.line + 1,
            indent + 1,
            "a key among the items of a list: indent it like the keys of the item above to add it there, or start "
            'a new item with "- "',
        )
    return None


def _flow(exc: "MarkedYAMLError", lines: list[str]) -> Slip | None:
    """A `{...}` or `[...]`: unclosed, closed by the other bracket, or missing a comma between entries."""
    mark = exc.problem_mark
    found = _BUT_FOUND.search(exc.problem or "")
    token = found.group(1) if found else ""
    start = exc.context_mark
    if exc.context == "while parsing a flow node" or start is None:
        start = _unclosed_bracket(lines, mark.line, mark.column)
        if start is None:
            return None
        opener, line, column = start
    else:
        line, column = start.line, start.column
        opener = lines[line][column] if line < len(lines) and column < len(lines[line]) else "{"
    closing = _CLOSING.get(opener, "}")
    if token in ("}", "]") and token != closing:
        message = f'this "{token}" closes the "{opener}" at column {column + 1}: write "{closing}"'
        return mark.line + 1, mark.column + 1, message
    if token == "<stream end>" or mark.line > line:
        return line + 1, column + 1, f'unclosed "{opener}": add the "{closing}" after its last entry'
    entry = mark.column
    while entry > 0 and lines[mark.line][entry - 1] not in " ,{[":
        entry -= 1
    example = "{team: web, service: web}" if opener == "{" else "[alertname, service]"
    return (
        mark.line + 1,
        entry + 1,
        f"missing comma before this entry: separate the entries with commas, as in {example}",
    )


def _unclosed_bracket(lines: list[str], line: int, column: int) -> tuple[str, int, int] | None:
    """The innermost `{` or `[` open at (line, column), skipping quoted text and comments."""
    stack: list[tuple[str, int, int]] = []
    for i, text in enumerate(lines[: line + 1]):
        quote = ""
        for j, char in enumerate(text if i < line else text[:column]):
            if quote:
                quote = "" if char == quote else quote
            elif char in "\"'" and (j == 0 or text[j - 1] in " ,[{:"):
                quote = char
            elif char == "#" and (j == 0 or text[j - 1] == " "):
                break
            elif char in "{[":
                stack.append((char, i, j))
            elif char in "}]" and stack:
                stack.pop()
    return stack[-1] if stack else None
