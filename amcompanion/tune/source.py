"""Edits to a catalog file as text, placed by ruamel's round-trip positions of its keys and items.

The file is never dumped again: ruamel's dump rewraps long lines, requotes scalars and respaces flow mappings, so
a diff of it would show lines nobody meant to change. Each edit is a replacement of a span of the original text (a
value, or nothing at a line start for an inserted line), so the diff has the edited lines and no others."""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

KeyPath = tuple[str | int, ...]
# A scalar value as it starts at its position: double- or single-quoted, or plain up to a comment or flow separator.
_TOKEN = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^\s,\]}#]+""")
_KEY = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^\s,\]}#:]+""")  # a key: plain up to its colon
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}  # plain, tools reading YAML 1.1 differ
MARKER = "amcompanion tune"


@dataclass(frozen=True)
class Edit:
    """Replace `start:end` of the file's original text with `text` (start == end: an insertion)."""

    start: int
    end: int
    text: str


def scalar(text: str) -> str:
    """`text` as a YAML scalar: plain when it reads back as the same string in YAML 1.1 and 1.2, else quoted."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML11_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def flow_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(scalar(item) for item in items) + "]"


def marker(today: date, what: str) -> str:
    """The comment an edit of a value leaves above it: when tune made it and why, which the next run reads back."""
    return f"# {MARKER} {today.isoformat()}: {what}"


def marked_on(comments: list[str], field: str) -> date | None:
    """The newest date of the markers for `field` (e.g. `for`) among comment lines."""
    found = re.compile(rf"#\s*{MARKER} (\d{{4}}-\d{{2}}-\d{{2}}): {re.escape(field)}\b")
    dates = [date.fromisoformat(m.group(1)) for m in (found.match(c.strip()) for c in comments) if m]
    return max(dates, default=None)


class Source:
    """One catalog file: its text and round-trip tree (None when ruamel cannot read it as one document)."""

    def __init__(self, text: str):
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"  # inserted lines end as the file's do
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        try:
            documents = list(YAML().load_all(text))
        except YAMLError:
            documents = []
        self.tree = documents[0] if len(documents) == 1 else None

    def node(self, path: KeyPath) -> object:
        node = self.tree
        for part in path:
            found = isinstance(node, CommentedMap) and part in node
            found = found or (isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node))
            if not found:
                return None
            node = node[part]  # type: ignore[index]
        return node

    def offset(self, line: int, column: int = 0) -> int:
        return self.starts[min(line, len(self.lines))] + column

    def _line(self, index: int) -> str:
        return self.lines[index] if index < len(self.lines) else ""

    def _comment_at(self, index: int, column: int) -> bool:
        """Whether line `index` is a comment indented `column` or less (deeper, it may be a block scalar's text)."""
        line = self._line(index)
        return line.lstrip().startswith("#") and len(line) - len(line.lstrip(" ")) <= column

    def comments_above(self, line: int, column: int) -> list[str]:
        """The comment lines right above `line` (up to a blank or other line), indented `column` or less."""
        first = line
        while first > 0 and self._comment_at(first - 1, column):
            first -= 1
        return self.lines[first:line]

    def _block_end(self, first: int, column: int, sequence: bool) -> int:
        """The line after a block node that starts on line `first`: a mapping with its keys at `column` or a
        sequence with its dashes there. Trailing blank lines and comments (no deeper than `column`) belong to what
        follows."""
        end = first + 1
        for index in range(first + 1, len(self.lines)):
            line = self.lines[index]
            if not line.strip() or self._comment_at(index, column):
                continue
            indent = len(line) - len(line.lstrip(" "))
            inside = indent > column or (
                indent == column and (not sequence or line[column:].startswith(("- ", "-\n", "-\r")))
            )
            if not inside:
                break
            end = index + 1
        return end

    def _insert_lines(self, line: int, text: str) -> Edit:
        at = self.offset(line)
        if at == len(self.text) and self.text and not self.text.endswith("\n"):
            text = "\n" + text
        text = text.replace("\n", self.newline)
        return Edit(at, at, text)

    def _comment_line(self, mapping: CommentedMap, key: str | None) -> tuple[int, int] | None:
        """Where a comment about `key` of `mapping` (None: about the mapping) goes: (line, indentation). Above the
        key's line when only spaces (or the item's dash) precede the key there, else above the mapping's line when
        only those precede the mapping (a flow mapping); None when neither (a flow mapping amid a line)."""
        places = [(mapping.lc.line, mapping.lc.col)]
        if key is not None and key in (mapping.lc.data or {}) and not mapping.fa.flow_style():
            places.insert(0, tuple(mapping.lc.key(key)))
        for line, column in places:
            before = self._line(line)[:column]
            if before.strip(" -") == "":
                dash = before.find("-")
                return line, dash if dash >= 0 else column
        return None

    def comments_about(self, mapping: CommentedMap, key: str | None) -> list[str]:
        place = self._comment_line(mapping, key)
        return self.comments_above(*place) if place else []

    def comment(self, mapping: CommentedMap, key: str | None, text: str) -> Edit | None:
        """A comment line above `key` of `mapping` (or above the mapping)."""
        place = self._comment_line(mapping, key)
        if place is None:
            return None
        line, indent = place
        return self._insert_lines(line, f"{' ' * indent}{text}\n")

    def set_value(self, mapping: CommentedMap, key: str, value: str, note: str, before: Iterable[str]) -> list[Edit]:
        """`key: value` in `mapping`, with the comment line `note` above it: the value replaced where the mapping
        has the key itself, else the key added (over one it merges from an anchor too) before the first of the keys
        `before` (not on the mapping's first line) or at the mapping's end. [] when the file cannot take it there."""
        own = mapping.lc.data or {}
        if key in own:
            line, column = own[key][2], own[key][3]
            token = _TOKEN.match(self._line(line), column)
            comment = self.comment(mapping, key, note)
            if token is None or comment is None:
                return []
            quote = token.group()[0] if token.group()[0] in "\"'" and value[0] not in "\"'" else ""
            start = self.offset(line, column)
            return [comment, Edit(start, start + len(token.group()), f"{quote}{value}{quote}")]
        if mapping.fa.flow_style():
            keys = list(own)
            comment = self.comment(mapping, None, note)
            if not keys or comment is None:
                return []
            line, column = own[keys[1] if len(keys) > 1 else keys[0]][:2]
            at = self.offset(line, column)
            return [comment, Edit(at, at, f"{key}: {value}, ")]
        wanted = [k for k in before if k in own and own[k][0] != mapping.lc.line]
        if wanted:
            line = min(own[k][0] for k in wanted)
            line -= len(self.comments_above(line, mapping.lc.col))  # a comment above that key stays with it
        else:
            line = self._block_end(mapping.lc.line, mapping.lc.col, sequence=False)
        indent = " " * mapping.lc.col
        return [self._insert_lines(line, f"{indent}{note}\n{indent}{key}: {value}\n")]

    def rename_keys(self, mapping: CommentedMap, key: str, names: dict[str, str], note: str) -> list[Edit]:
        """The keys of the mapping at `key` of `mapping` renamed (`names`: old → new, YAML already), with the comment
        line `note` above `key`. [] when the file cannot take it."""
        inner = mapping[key]
        comment = self.comment(mapping, key, note)
        if comment is None or not isinstance(inner, CommentedMap):
            return []
        edits = [comment]
        for old, (line, column, _, _) in (inner.lc.data or {}).items():
            token = _KEY.match(self._line(line), column)
            if old not in names or token is None:
                return []
            start = self.offset(line, column)
            edits.append(Edit(start, start + len(token.group()), names[old]))
        return edits

    def add_items(self, mapping: CommentedMap, key: str, items: list[dict[str, str]], like: str) -> Edit | None:
        """`items` (their values YAML already) appended to the list at `key` of `mapping`, the key added when
        missing, a new block list indented as the one at `like` is (else by two). None when the file cannot take
        them there."""
        flow = ", ".join("{" + ", ".join(f"{k}: {v}" for k, v in item.items()) + "}" for item in items)
        own = mapping.lc.data or {}
        if key in own:
            present = mapping[key]
            if not isinstance(present, CommentedSeq):
                return None
            if present.fa.flow_style() or not present:
                line, column = own[key][2], own[key][3]
                text = self._line(line)
                if not text[column:].startswith("["):
                    return None
                at = self.offset(line, column)
                if present:
                    return Edit(at + 1, at + 1, f"{flow}, ")
                closing = text.find("]", column)
                return None if closing < 0 else Edit(at, self.offset(line, closing + 1), f"[{flow}]")
            dash, inner = self._dash(present)
            end = self._block_end(present.lc.data[0][0], dash, sequence=True)
            return self._insert_lines(end, "".join(self._block_item(item, dash, inner) for item in items))
        if mapping.fa.flow_style():
            keys = list(own)
            if not keys:
                return None
            at = self.offset(*own[keys[-1]][:2])
            return Edit(at, at, f"{key}: [{flow}], ")
        column = mapping.lc.col
        dash, inner = column + 2, 2
        sample = mapping.get(like)
        if isinstance(sample, CommentedSeq) and sample and not sample.fa.flow_style():
            dash, inner = self._dash(sample)
        end = self._block_end(mapping.lc.line, column, sequence=False)
        body = "".join(self._block_item(item, dash, inner) for item in items)
        return self._insert_lines(end, f"{' ' * column}{key}:\n{body}")

    def _dash(self, items: CommentedSeq) -> tuple[int, int]:
        """The column of a block list's dashes, and how far past the dash its items' keys start."""
        line, column = items.lc.data[0]
        dash = self._line(line)[:column].rfind("-")
        return (dash, column - dash) if dash >= 0 else (column - 2, 2)

    @staticmethod
    def _block_item(item: dict[str, str], dash: int, inner: int) -> str:
        pad = " " * dash
        lines = [f"{k}: {v}" for k, v in item.items()]
        return "".join(f"{pad}{'-'.ljust(inner) if n == 0 else ' ' * inner}{line}\n" for n, line in enumerate(lines))
