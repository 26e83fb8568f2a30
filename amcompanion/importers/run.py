"""`amcompanion import`: source files → one catalog file each, with a comment naming every rule's source, then
a check that the catalog reader takes what was written."""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml_rs

from amcompanion.catalog.schema_url import SCHEMA_URL
from amcompanion.emit.yamlout import dump_lines
from amcompanion.importers import DEFAULT_SEVERITIES, Conversion, NotCarried, recognise
from amcompanion.wording import plural

MARK = "# Imported by `amcompanion import`"  # a file whose second line starts so may be written over by the next import


@dataclass
class ImportedFile:
    source: str
    target: str
    format: str
    kinds: dict[str, int] = field(default_factory=dict)  # what each rule became: threshold, expr, record, slo...
    not_carried: list[NotCarried] = field(default_factory=list)


@dataclass
class ImportReport:
    files: list[ImportedFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # sources that could not be read, targets not written
    passed_over: list[str] = field(default_factory=list)  # files under a directory that are none of the formats

    def totals(self) -> Counter:
        total: Counter = Counter()
        for item in self.files:
            total.update(item.kinds)
        return total


def source_files(sources: list[Path]) -> list[tuple[Path, bool]]:
    """(file, named): the files named, and the YAML files under the directories named (a manifests directory holds
    Deployments too, which are passed over, while a file named that is none of the formats is an error)."""
    out = []
    for source in sources:
        if source.is_dir():
            out += [(p, False) for p in sorted(source.rglob("*")) if p.suffix in (".yml", ".yaml") and p.is_file()]
        else:
            out.append((source, True))
    return out


def import_sources(
    sources: list[Path], out_dir: Path, force: bool = False, severities: tuple[str, ...] = DEFAULT_SEVERITIES
) -> ImportReport:
    report = ImportReport()
    targets: set[Path] = set()
    for path, named in source_files(sources):
        try:
            loaded = yaml_rs.loads(path.read_text(encoding="utf-8"), parse_datetime=False)
        except FileNotFoundError:
            report.problems.append(f"{path}: no such file or directory")
            continue
        except (OSError, UnicodeDecodeError, ValueError, yaml_rs.YAMLDecodeError) as exc:
            report.problems.append(f"{path}: cannot be read: {str(exc).splitlines()[0]}")
            continue
        documents = [d for d in (loaded if isinstance(loaded, list) else [loaded]) if d is not None]
        found = next((f for d in documents if (f := recognise(d, severities))), None)
        if found is None and not named:
            report.passed_over.append(str(path))
            continue
        if found is None:
            report.problems.append(
                f"{path}: not a format amcompanion imports (Prometheus rule files, PrometheusRule objects, Sloth, "
                "OpenSLO and Pyrra specs)"
            )
            continue
        conversion = found.convert([d for d in documents if found.recognises(d)])
        skipped = len(documents) - sum(1 for d in documents if found.recognises(d))
        if skipped:
            report.passed_over.append(f"{path} ({plural(skipped, 'other YAML document')} of the file)")
        target = _target(out_dir, path, targets)
        if target.exists() and not force and not _imported(target):
            report.problems.append(f"{target}: exists and was not written by amcompanion import (--force replaces it)")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(catalog_text(conversion, path.name, found.name), encoding="utf-8")
        item = ImportedFile(str(path), str(target), found.name, dict(Counter(c.how for c in conversion.carried)))
        item.not_carried = conversion.not_carried
        report.files.append(item)
    return report


def _imported(path: Path) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines()
    return len(lines) > 1 and lines[1].startswith(MARK)


def _target(out_dir: Path, source: Path, taken: set[Path]) -> Path:
    """`<stem>.yaml`, or with its parent directory's name too when two sources share a stem."""
    target = out_dir / f"{source.stem}.yaml"
    if target in taken:
        target = out_dir / f"{source.parent.name}-{source.stem}.yaml"
    n = 1
    while target in taken:
        n += 1
        target = out_dir / f"{source.stem}-{n}.yaml"
    taken.add(target)
    return target


def catalog_text(conversion: Conversion, source: str, format_name: str) -> str:
    """The catalog file, with each carried rule under a comment naming where it came from."""
    comments = {c.path: c.source for c in conversion.carried}
    lines = [  # the modeline first, where editors look for it
        f"# yaml-language-server: $schema={SCHEMA_URL}",
        f"{MARK} from {source} ({format_name}); edit freely, or import again with --force.",
    ]
    for problem in conversion.not_carried:
        lines.append(f"# not carried: {problem.source + ': ' if problem.source else ''}{problem.reason}")
    data = conversion.data
    head = {k: v for k, v in data.items() if k != "groups"}
    lines += dump_lines(head)
    groups = data.get("groups") or []
    if not groups:
        lines.append("groups: []")
    else:
        lines.append("groups:")
    for g, group in enumerate(groups):
        fields = {k: v for k, v in group.items() if k not in ("alerts", "slos")}
        body = dump_lines(fields)
        lines += [("  - " if i == 0 else "    ") + line for i, line in enumerate(body)]
        for key in ("alerts", "slos"):
            if key not in group:
                continue
            items = group[key]
            lines.append(f"    {key}:" + ("" if items else " []"))
            for i, item in enumerate(items):
                where = comments.get(("groups", g, key, i))
                if where:
                    lines.append(f"      # {source}: {where}")
                lines += ["      " + line if line else "" for line in dump_lines([item])]
    return "\n".join(lines) + "\n"
