"""`amcompanion tune`: the quality findings of the history as catalog edits, a unified diff to review or --write.

Wired into amcompanion/cli.py with `add_parser(sub)` in `_parser()` and `"tune": tune_command` among its commands;
the heavy imports wait for the command to run, as the other commands' do."""

import argparse
import sys
from pathlib import Path

TUNE_EXAMPLES = """\
examples:
  amcompanion tune                                     # rulesets/ against the last 30 days of history.db
  amcompanion tune teams/payments --since 90d --db /var/lib/amcompanion/history.db
  amcompanion tune | patch -p1 -d rulesets             # the same as --write
  amcompanion tune --write && amcompanion compile      # edit the catalog, then generated/
  amcompanion tune --json | jq -r '.[].why'

Flapping: a longer `for` (the next step above `for` + the median firing time). Cascade: an inhibition in the
leader's group, `equal` on the labels every pair shared. Periodic and never acknowledged: the next lower
severity. Never fired: a comment to review or delete it. Each edit is kept only if the edited catalog loads,
compiles and passes promtool and amtool (when on PATH); a later run leaves a value tune set alone while the
history still reaches back to before that day.

exit codes: 0 done (proposals or none), 1 no history database or catalog errors, 2 usage errors
"""


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    t = sub.add_parser(
        "tune",
        help="the quality findings as catalog edits: a longer for, inhibitions, lower severities, reviews",
        description="Turn what the history says about each alert (amcompanion quality) into edits of the catalog,"
        " printed as a unified diff with the figures behind each; --write makes them.",
        epilog=TUNE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("catalog", nargs="?", default="rulesets", type=Path, help="catalog directory (default: rulesets)")
    t.add_argument("--since", default="30d", help="how far back, as a duration (default: 30d)")
    t.add_argument("--db", type=Path, default=Path("history.db"), help="the history, a SQLite file (history.db)")
    t.add_argument("--time-zone", default="UTC", help="for hours and weekdays, e.g. Asia/Shanghai (default: UTC)")
    t.add_argument("--write", action="store_true", help="make the edits in the catalog's files (once verified)")
    t.add_argument("--json", action="store_true", help="the proposals as JSON, for scripts")
    t.set_defaults(func=tune_command)
    return t


def tune_command(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime

    from amcompanion.quality.findings import Thresholds
    from amcompanion.quality.inputs import Refused, read
    from amcompanion.tune.apply import Verified, apply, diff, overlapping, read_texts, verify, write
    from amcompanion.tune.propose import propose

    now = datetime.now(UTC)
    limits = Thresholds()
    try:
        since, zone, catalog, quality = read(args.since, args.time_zone, args.db, args.catalog, limits, now)
    except Refused as exc:
        print(exc.say(), file=sys.stderr)
        return exc.status
    assert catalog is not None
    texts = read_texts(args.catalog)
    local_since = since.astimezone(zone)
    tuning = propose(catalog, texts, quality, limits, args.since, local_since.date(), now.astimezone(zone).date())
    kept, clashing = overlapping(tuning.proposals)
    verified = verify(args.catalog, texts, kept) if kept else Verified([])
    dropped = [(p, ["overlaps the edit of another proposal: run tune again once that one is made"]) for p in clashing]
    dropped += verified.dropped
    edited = apply(texts, verified.kept)
    written = write(args.catalog, edited) if args.write else []
    if args.json:
        report = [
            {
                "file": p.file,
                "kind": p.kind,
                "alert": p.alert,
                "why": p.why,
                "figures": p.figures,
                "diff": diff(texts, apply(texts, [p])),
            }
            for p in verified.kept
        ]
        print(json.dumps(report, indent=2, ensure_ascii=False))
        for proposal, problems in dropped:
            print(f"dropped: {proposal.file}: {proposal.why}: {'; '.join(problems)}", file=sys.stderr)
        for note in tuning.notes:
            print(f"note: {note}", file=sys.stderr)
        return 0
    lines = [f"Tuning {args.catalog}/ from {args.db} since {local_since:%Y-%m-%d %H:%M} ({args.since}), in {zone}", ""]
    if verified.kept:
        lines.append(f"Proposals (the edited catalog passes {', '.join(verified.checks)}):")
        lines += [f"  {p.file}: {p.why}" for p in verified.kept]
    else:
        lines.append("No proposals: nothing in the history calls for an edit of the catalog.")
    if dropped:
        lines.append("Dropped (the edited catalog failed with them):")
        for proposal, problems in dropped:
            lines += [f"  {proposal.file}: {proposal.why}", *(f"    {problem}" for problem in problems)]
    if tuning.notes:
        lines.append("Not edited:")
        lines += [f"  {note}" for note in tuning.notes]
    print("\n".join(lines))
    if edited:
        sys.stdout.write("\n" + diff(texts, edited))
    if written:
        print(f"\nwrote {', '.join(written)} in {args.catalog}/")
    return 0
