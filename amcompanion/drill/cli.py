"""`amcompanion drill`: its arguments, and the report on a terminal or as JSON (the work is in plan and run)."""

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from amcompanion.drill.run import Endpoints, Outcome

EXAMPLES = """\
examples:
  amcompanion drill                                     # every policy of rulesets/, through localhost:9093
  amcompanion drill db-oncall --alertmanager http://alertmanager:9093 --receiver http://amcompanion:8080
  amcompanion drill --wait-ack --ack-timeout 10m        # and wait until someone acknowledges each
  amcompanion drill --json | jq '.[] | select(.status != "passed")'

For each policy, a synthetic alert (drill="true", alertname AmcompanionDrill) with labels that the catalog's
routes send to that policy goes to Alertmanager; the drill then follows it in the receiver's API: recorded, each
page of the policy's first step delivered (with the channel's answer), acknowledged with --wait-ack. Then it
resolves the alert. Messages say "DRILL — no action needed", a drill takes only the first step, and the history
leaves drills out of MTTA, MTTR and alert quality. A policy whose every route is in its quiet hours now is skipped,
unless --loud (then the drill goes to the receiver directly: Alertmanager would mute it). Exit status: 0 when
every drill passed or was skipped, 1 when one failed, 2 on bad arguments.

The receiver's API token: $AMCOMPANION_TOKEN, --token-file, or the catalog's receiver.bearer_token_file.
"""


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    d = sub.add_parser(
        "drill",
        help="prove the path: a drill alert per policy through Alertmanager to the receiver and its channels",
        description="Send a drill alert for each escalation policy through the real Alertmanager and follow it to"
        " every first-step channel; print each hop's latency and a pass or fail per policy.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("policies", nargs="*", metavar="POLICY", help="escalation policies to drill (default: all)")
    d.add_argument("--catalog", type=Path, default=Path("rulesets"), help="the catalog (default: rulesets)")
    d.add_argument(
        "--alertmanager", default="http://localhost:9093", help="Alertmanager's URL (default: http://localhost:9093)"
    )
    d.add_argument("--receiver", help="the receiver's URL (default: the catalog's receiver.url)")
    d.add_argument("--token-file", type=Path, help="a file holding the receiver's API token")
    d.add_argument("--wait-ack", action="store_true", help="also wait until someone acknowledges each drill")
    d.add_argument(
        "--timeout",
        default="2m",
        help="for every first-step page to be answered, beyond what Alertmanager may hold the alert (the route's"
        " group_wait or group_interval) (default: 2m)",
    )
    d.add_argument("--ack-timeout", default="15m", help="with --wait-ack: for the acknowledgement (default: 15m)")
    d.add_argument("--loud", action="store_true", help="drill also a policy whose routes are in quiet hours now")
    d.add_argument("--json", action="store_true", help="JSON, for scripts")


def _token(args: argparse.Namespace, catalog_token_file: str | None) -> str | None:
    if os.environ.get("AMCOMPANION_TOKEN"):
        return os.environ["AMCOMPANION_TOKEN"].strip()
    path = args.token_file or (Path(catalog_token_file) if catalog_token_file else None)
    if path is None or (args.token_file is None and not path.is_file()):
        return None
    return path.read_text().strip()


def command(args: argparse.Namespace) -> int:
    import asyncio

    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.catalog.durations import parse_duration
    from amcompanion.catalog.reader import load_catalog
    from amcompanion.compiler.build import compile_catalog
    from amcompanion.drill.plan import choose
    from amcompanion.drill.run import Endpoints, Outcome, Waits, run_drills

    waits = {}
    for name, text in (("timeout", args.timeout), ("ack-timeout", args.ack_timeout)):
        ms = parse_duration(text)
        if not ms:
            print(f"error: --{name}: expected a duration such as 2m, got {text!r}", file=sys.stderr)
            return 2
        waits[name] = ms / 1000
    for name, url in (("alertmanager", args.alertmanager), ("receiver", args.receiver)):
        if url is not None and not url.startswith(("http://", "https://")):
            print(f"error: --{name}: expected an http:// or https:// URL, got {url!r}", file=sys.stderr)
            return 2
    try:
        catalog = load_catalog(args.catalog)
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        return 1
    unknown = [p for p in args.policies if p not in catalog.policies]
    if unknown:
        known = ", ".join(catalog.policies) or "none"
        print(f"error: no escalation policy {', '.join(unknown)} in {args.catalog} (it has: {known})", file=sys.stderr)
        return 2
    try:
        token = _token(args, catalog.receiver.bearer_token_file)
    except OSError as exc:
        print(f"error: --token-file: {exc}", file=sys.stderr)
        return 2
    config = compile_catalog(catalog).documents["alertmanager/alertmanager.yml"].data
    now = datetime.now(UTC)
    outcomes: list[Outcome] = []
    chosen = []
    for policy in args.policies or list(catalog.policies):
        routes = choose(config, policy, catalog.defaults.severities, now)  # type: ignore[arg-type]
        if not routes:
            outcomes.append(Outcome(policy, "failed", "no route of the catalog sends alerts to this policy"))
        elif routes[0].muted is not None and not args.loud:
            why = f"every route to it is in quiet hours now ({routes[0].muted}): --loud drills anyway"
            outcomes.append(Outcome(policy, "skipped", why, routes[0].labels, routes[0].route))
        else:
            chosen.append(routes[0])
    endpoints = Endpoints(args.alertmanager.rstrip("/"), (args.receiver or catalog.receiver.url).rstrip("/"), token)
    outcomes += asyncio.run(run_drills(endpoints, chosen, args.wait_ack, Waits(waits["timeout"], waits["ack-timeout"])))
    order = {policy: i for i, policy in enumerate(args.policies or catalog.policies)}
    outcomes.sort(key=lambda o: order[o.policy])
    if args.json:
        print(json.dumps([o.as_json() for o in outcomes], indent=2, ensure_ascii=False))
    else:
        print(render(outcomes, endpoints), end="")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def render(outcomes: "list[Outcome]", endpoints: "Endpoints") -> str:
    """A block per policy: its verdict and labels, then a line per hop with its time since the post."""
    lines = [
        f"Drill of {len(outcomes)} escalation polic{'y' if len(outcomes) == 1 else 'ies'}: Alertmanager"
        f" {endpoints.alertmanager}, receiver {endpoints.receiver}",
        "",
    ]
    width = max((len(hop.what) for o in outcomes for hop in o.hops), default=0)
    for o in outcomes:
        labels = ", ".join(
            f'{k}="{v}"' for k, v in o.labels.items() if k in ("alertname", "severity") or "drill" not in k
        )
        lines.append(f"{o.policy}: {o.status.upper()} — {o.why}")
        if labels:
            lines.append(f"  labels {labels}; route {o.route}")
        for hop in o.hops:
            after = f"{hop.after_s:7.2f} s" if hop.after_s is not None else " " * 9
            lines.append(f"  {after}  {'ok  ' if hop.ok else 'FAIL'}  {hop.what:<{width}}  {hop.detail}")
        lines.append("")
    counts = {status: sum(o.status == status for o in outcomes) for status in ("passed", "failed", "skipped")}
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items()) + ".")
    return "\n".join(lines) + "\n"
