"""The `amcompanion` command line: a thin layer over the catalog, compiler and emitter."""

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from amcompanion import __version__

COMPILE_EXAMPLES = """\
examples:
  amcompanion compile                       # rulesets/ → generated/
  amcompanion compile teams/payments -o out # another catalog, another output directory
  amcompanion compile --check               # CI/GitOps gate: exit 1 with a diff when generated/ is stale

exit codes: 0 ok, 1 catalog errors or stale output, 2 usage errors
"""

VALIDATE_EXAMPLES = """\
examples:
  amcompanion validate                      # check generated/ with promtool and amtool
  amcompanion compile && amcompanion validate

It runs: promtool check rules (every rule file), promtool test rules (every
generated unit test), amtool check-config, and amtool config routes test for
every alert and severity in alertmanager/routes.test.yml.
"""


SERVE_EXAMPLES = """\
examples:
  AMCOMPANION_TOKEN=s3cret amcompanion serve                  # generated/receiver/receiver.yaml, history.db
  amcompanion serve --config receiver.yaml --db /var/lib/amcompanion/history.db --listen 0.0.0.0:8080

The token Alertmanager sends comes from receiver.bearer_token_file (the catalog's receiver block)
or AMCOMPANION_TOKEN. Channel secrets (${VAR} in receiver.yaml) are read from the environment.
Signals: SIGHUP reloads the config; SIGTERM finishes requests and deliveries in flight, then exits 0.
"""

CHANNELS_TEST_EXAMPLES = """\
examples:
  amcompanion channels test ops-dingtalk                 # the robot's group gets a test message
  amcompanion channels test sms --to alice               # alice's phone gets a test SMS
  DINGTALK_SECRET=... amcompanion channels test ops-dingtalk --config receiver.yaml

It sends one message through the channel's own code and template, prints the API's answer as it came
(status, headers, body) and how the receiver classifies it: ok, retry or permanent. Secrets (${VAR} in
receiver.yaml) come from the environment, as for `serve`. Exit 0 when the message was accepted.
"""


ALERTS_EXAMPLES = """\
examples:
  amcompanion alerts                          # the newest 20 alerts: id, state, age, step, who was paged
  amcompanion alerts --state firing           # what is firing now
  amcompanion alerts --failed                 # alerts with a page that failed, and why
  amcompanion alerts --json --limit 500 | jq '.[] | select(.escalation_level > 1)'

It reads the receiver's history database (--db), also while `amcompanion serve` runs; the ids are the
ones `amcompanion ack ID --by NAME` takes.
"""

HISTORY_EXAMPLES = """\
examples:
  amcompanion history seed --alerts 5000 --db demo.db     # synthetic history to look at
  amcompanion history serve --db history.db --port 8001   # then open http://127.0.0.1:8001/-/dashboards/weekly
  amcompanion history report --since 7d                   # the week in the terminal
  amcompanion history prune --older-than 90d              # retention: drop resolved alerts older than 90 days

The pages: MTTA and MTTR by severity, service, week and person, SLA breaches, noisiest, flapping and
never-acknowledged alerts, escalations by policy and step, deliveries by channel, service health, alert
volume per hour, and a dashboard of them. Definitions: docs/history.md.
"""

DEMO_EXAMPLES = """\
examples:
  amcompanion demo                      # the whole loop in about a minute, then Ctrl-C to stop
  amcompanion demo --speed 20           # slower: a catalog minute lasts 3 s
  amcompanion demo --once --workdir d   # exit when the script is done; keep the files and logs in d/

It compiles rulesets/ with every waiting time divided by --speed and every address on 127.0.0.1, then
starts Debian's Prometheus and Alertmanager, the receiver, a stand-in server for each channel (printing
each message as its reader would see it), a tiny exporter, and Datasette on the history. The exporter's
memory gauge climbs past HighMemory's warning level: the alert fires, pages level 1, escalates to
level 2, is acknowledged through the link in the SMS, and resolves when the gauge drops. Nothing
leaves this machine.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amcompanion",
        description="Describe alerts once in a catalog; get Prometheus rules, Alertmanager config and tests.",
        epilog="Run `amcompanion COMMAND --help` for examples.",
    )
    parser.add_argument("--version", action="version", version=f"amcompanion {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "compile",
        help="compile a catalog (rulesets/) into generated/",
        description="Compile the alert catalog into Prometheus rules, promtool tests, an "
        "Alertmanager config with route tests, PrometheusRule objects and the receiver config.",
        epilog=COMPILE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("rulesets", nargs="?", default="rulesets", type=Path, help="catalog directory (default: rulesets)")
    p.add_argument("-o", "--out", default="generated", type=Path, help="output directory (default: generated)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 with a unified diff if OUT is stale")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes compiling groups at once (default: the number of CPUs)",
    )

    v = sub.add_parser(
        "validate",
        help="run promtool and amtool over generated/",
        description="Validate compiled output with the real tools.",
        epilog=VALIDATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("out", nargs="?", default="generated", type=Path, help="output directory (default: generated)")
    v.add_argument("-j", "--jobs", type=int, default=4, help="checks run at once (default: 4)")

    s = sub.add_parser(
        "serve",
        help="run the webhook receiver Alertmanager posts to",
        description="Record every alert in SQLite, escalate the ones nobody acknowledges, deliver to channels.",
        epilog=SERVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--config", type=Path, default=Path("generated/receiver/receiver.yaml"), help="receiver.yaml")
    s.add_argument("--db", default="history.db", help="the history database (created if missing)")
    s.add_argument("--listen", default="0.0.0.0:8080", help="HOST:PORT to listen on (default: 0.0.0.0:8080)")
    s.add_argument("--insecure-no-auth", action="store_true", help="accept requests without the token")
    s.add_argument("--alertmanager-url", help="Alertmanager for silences on ack (default: the alert's externalURL)")
    s.add_argument(
        "--give-up-after", default="1h", help="mark a notification failed if undelivered this long (default: 1h)"
    )
    s.add_argument("--max-body", type=int, default=4 * 1024 * 1024, help="largest webhook body in bytes (4 MiB)")
    s.add_argument(
        "--log-format",
        choices=("auto", "text", "json"),
        default="auto",
        help="one readable line per event (text), or one JSON object per line (json); auto: text on a terminal",
    )

    al = sub.add_parser(
        "alerts",
        help="list the alerts the receiver recorded: ids, state, age, step, who was paged",
        description="List alerts from the receiver's history database, newest first.",
        epilog=ALERTS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    al.add_argument("--state", choices=("firing", "acknowledged", "resolved"), help="only alerts in this state")
    al.add_argument("--failed", action="store_true", help="only alerts with a page that failed (with the reason)")
    al.add_argument("--limit", type=int, default=20, help="how many, newest first (default: 20)")
    al.add_argument("--json", action="store_true", help="JSON, for scripts")
    al.add_argument("--db", default="history.db", help="the history database (default: history.db)")

    a = sub.add_parser(
        "ack",
        help="acknowledge an alert from the command line",
        description="Acknowledge an alert in the history database: its escalation stops at once.",
        epilog="examples:\n  amcompanion ack 42 --by alice\n  amcompanion ack 42 --by alice --comment 'rolling back'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("id", type=int, help="the alert id (from the API, the messages or Datasette)")
    a.add_argument("--by", required=True, help="who acknowledges")
    a.add_argument("--comment", default="", help="why, or what happens next")
    a.add_argument("--db", default="history.db", help="the history database (default: history.db)")

    c = sub.add_parser(
        "channels",
        help="list the receiver's channels or send a test message through one",
        description="Check the receiver's delivery channels.",
        epilog="examples:\n  amcompanion channels list\n  amcompanion channels test ops-dingtalk --to alice",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    channel_commands = c.add_subparsers(dest="channels_command", required=True, metavar="ACTION")
    listing = channel_commands.add_parser("list", help="the configured channels, their types and rate limits")
    test = channel_commands.add_parser(
        "test",
        help="send a test message and print what the API answered",
        description="Send one test message through a configured channel.",
        epilog=CHANNELS_TEST_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument("name", help="the channel's name in receiver.yaml")
    test.add_argument("--to", help="a contact to address (needed by SMS, voice and email channels)")
    test.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the answer (default 15)")
    for command in (listing, test):
        command.add_argument(
            "--config", type=Path, default=Path("generated/receiver/receiver.yaml"), help="receiver.yaml"
        )

    d = sub.add_parser(
        "demo",
        help="run the whole loop on this machine: Prometheus → Alertmanager → receiver → channels",
        description="Watch an alert fire, escalate, be acknowledged and resolve, on loopback.",
        epilog=DEMO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("rulesets", nargs="?", default="rulesets", type=Path, help="the bundled catalog (default: rulesets)")
    d.add_argument("--speed", type=int, default=60, help="how many times faster time passes (1-600, default: 60)")
    d.add_argument("--once", action="store_true", help="stop everything when the script is done")
    d.add_argument("--workdir", type=Path, help="keep the compiled files, database and logs here (a new directory)")

    h = sub.add_parser(
        "history",
        help="browse, summarise, seed or prune the alert history",
        description="The alert history the receiver records, as pages, a report, or synthetic data.",
        epilog=HISTORY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    history = h.add_subparsers(dest="history_command", required=True, metavar="ACTION")
    hs = history.add_parser("serve", help="Datasette with the history pages and the dashboard")
    hs.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    hs.add_argument("--port", type=int, default=8001, help="port (default: 8001)")
    hr = history.add_parser("report", help="counts, MTTA, MTTR and the noisiest alerts, as text")
    hr.add_argument("--since", default="7d", help="how far back, as a duration (default: 7d)")
    hp = history.add_parser("prune", help="delete resolved alerts older than a duration, with their rows")
    hp.add_argument("--older-than", required=True, help="a duration: resolved before now minus this (e.g. 90d)")
    hd = history.add_parser("seed", help="fill a database with realistic synthetic history")
    hd.add_argument("--alerts", type=int, default=5000, help="alerts to add (default: 5000)")
    hd.add_argument("--days", type=int, default=90, help="spread over this many days up to now (default: 90)")
    hd.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same history")
    for command in (hs, hr, hp, hd):
        command.add_argument("--db", type=Path, default=Path("history.db"), help="the history database")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {
        "compile": compile_command,
        "validate": validate_command,
        "serve": serve_command,
        "ack": ack_command,
        "alerts": alerts_command,
        "channels": channels_command,
        "history": history_command,
        "demo": demo_command,
    }
    return commands[args.command](args)


def run() -> NoReturn:
    """The console script. It exits without tearing the interpreter down: after a large compile, freeing
    the heap object by object takes longer than the OS takes to drop it (mypy exits the same way)."""
    try:
        code = main()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away (`| head`): as the Python docs advise, exit 1 quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    os._exit(code)


def compile_command(args: argparse.Namespace) -> int:
    # A compile builds a large, acyclic heap: the cycle collector would only rescan it (a fifth of the
    # run), and in forked workers its bookkeeping writes would copy shared pages.
    gc.disable()
    try:
        return _compile(args)
    finally:
        gc.enable()


def _compile(args: argparse.Namespace) -> int:
    from amcompanion.catalog import load_catalog
    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.emit.files import render_catalog, stale_diff, write_catalog

    started = time.perf_counter()
    try:
        catalog = load_catalog(args.rulesets)
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(f"error: {diag}" if not diag.line else str(diag), file=sys.stderr)
        count = len(exc.diagnostics)
        print(f"{count} error{'s' if count != 1 else ''}; nothing written", file=sys.stderr)
        return 1
    jobs = max(1, args.jobs)
    if args.check:
        files, output = render_catalog(catalog, jobs)
    else:
        try:
            written, output = write_catalog(catalog, args.out, jobs)
        except FileExistsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if output.unrouted and not args.quiet:
        print(
            f"warning: {len(output.unrouted)} alert(s) reach no escalation policy, only the empty receiver "
            f'"unrouted" (set defaults.escalation, a group escalation or a route): {", ".join(output.unrouted)}',
            file=sys.stderr,
        )
    if args.check:
        diff = stale_diff(args.out, files, args.out.name)
        if diff:
            sys.stdout.write(diff)
            print(f"{args.out}/ is stale: run `amcompanion compile` and commit the result", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"{args.out}/ is up to date ({len(files)} files)")
        return 0
    if not args.quiet:
        elapsed = time.perf_counter() - started
        print(
            f"compiled {output.groups} groups, {output.alerts} alerts, {output.rules} rules, {output.slos} SLOs, "
            f"{output.routes} route tests → {len(written)} files in {args.out}/ in {elapsed:.2f}s"
        )
    return 0


def validate_command(args: argparse.Namespace) -> int:
    from amcompanion.validate import ToolMissing, run_checks

    if not (args.out / "prometheus").is_dir():
        print(f"error: {args.out}/ holds no compiled output; run `amcompanion compile` first", file=sys.stderr)
        return 1
    started = time.perf_counter()
    failures = []

    def progress(result) -> None:  # type: ignore[no-untyped-def]
        if not result.ok:
            failures.append(result)
            print(f"FAIL {result.name}\n{_indent(result.detail)}", file=sys.stderr)

    try:
        results = run_checks(args.out, progress, workers=max(1, args.jobs))
    except ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(
        f"{len(results) - len(failures)} passed, {len(failures)} failed "
        f"(promtool and amtool checks of {args.out}/ in {elapsed:.1f}s)"
    )
    return 1 if failures else 0


def serve_command(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import timedelta

    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.catalog.durations import parse_duration
    from amcompanion.history.schema import NewerDatabase
    from amcompanion.receiver.serve import StartupError, serve
    from amcompanion.receiver.service import Settings

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"error: --listen: expected HOST:PORT, got {args.listen!r}", file=sys.stderr)
        return 2
    give_up_ms = parse_duration(args.give_up_after)
    if not give_up_ms:
        print(f"error: --give-up-after: expected a duration such as 1h, got {args.give_up_after!r}", file=sys.stderr)
        return 2
    settings = Settings(
        db_path=args.db,
        token=None,
        max_body_bytes=args.max_body,
        give_up_after=timedelta(milliseconds=give_up_ms),
        alertmanager_url=args.alertmanager_url,
    )
    try:
        asyncio.run(serve(args.config, settings, host.strip("[]"), int(port), args.insecure_no_auth, args.log_format))
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        return 1
    except (StartupError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except NewerDatabase as exc:
        print(f"error: {args.db}: {exc}", file=sys.stderr)
        return 1
    return 0


def ack_command(args: argparse.Namespace) -> int:
    import sqlite3
    from datetime import UTC, datetime

    from amcompanion.receiver.db import connect
    from amcompanion.receiver.store import Conflict, NotFound, Store

    if not Path(args.db).exists():
        print(f"error: no history database at {args.db}", file=sys.stderr)
        return 1
    conn = connect(args.db)
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            alert = Store.ack(conn, args.id, args.by, "cli", args.comment, datetime.now(UTC))
    except (NotFound, Conflict) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"error: {args.db}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    already = "was already " if alert["already_acknowledged"] else ""
    who = f"{alert['acked_by']} at {alert['acked_at']}"
    print(f"alert {alert['id']} ({alert['alertname']}) {already}acknowledged by {who}")
    return 0


def alerts_command(args: argparse.Namespace) -> int:
    import json
    import sqlite3
    from datetime import UTC, datetime

    from amcompanion.receiver.store import Store
    from amcompanion.receiver.timeutil import parse_iso

    if not 1 <= args.limit <= 100_000:
        print(f"error: --limit: expected 1 to 100000, got {args.limit}", file=sys.stderr)
        return 2
    if not Path(args.db).is_file():
        print(f"error: no history database at {args.db} (the receiver's --db)", file=sys.stderr)
        return 1
    try:
        conn = sqlite3.connect(Path(args.db).absolute().as_uri() + "?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            alerts = Store.alerts(conn, args.state, args.limit, args.failed)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        print(f"error: {args.db}: {exc}", file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    for alert in alerts:
        alert["age_seconds"] = round((now - parse_iso(alert["starts_at"])).total_seconds())
    if args.json:
        print(json.dumps(alerts, indent=2, ensure_ascii=False))
        return 0
    if not alerts:
        print("no alerts" + (f" {args.state}" if args.state else "") + (" with a failed page" if args.failed else ""))
        return 0
    print(f"{'ID':>6}  {'STATE':<22} {'AGE':>6}  STEP  {'ALERT':<32} PAGED")
    for alert in alerts:
        state = alert["status"] + (f" by {alert['acked_by']}" if alert["status"] == "acknowledged" else "")
        name = alert["alertname"] + (f" ({alert['severity']})" if alert["severity"] else "")
        paged = ", ".join(_target(t) for t in alert["paged"]) or (
            "nobody yet" if alert["status"] == "firing" else "nobody"
        )
        print(
            f"{alert['id']:>6}  {state[:22]:<22} {_age(alert['age_seconds']):>6}  {alert['escalation_level']:>4}  "
            f"{name[:32]:<32} {paged}"
        )
        for failure in alert["failed"]:
            print(f"{'':>8}FAILED {_target(failure)}: {failure['error']}")
    return 0


def _target(target: dict) -> str:
    return f"{target['channel']} → {target['recipient']}" if target["recipient"] else target["channel"]


def _age(seconds: float) -> str:
    """4m, 2h13m, 3d: how long ago, as a person reads it."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"


def channels_command(args: argparse.Namespace) -> int:
    import asyncio

    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.receiver.channels import CHANNEL_TYPES
    from amcompanion.receiver.config import load_receiver_config, mask
    from amcompanion.receiver.probe import ProbeError, probe

    try:
        config = load_receiver_config(args.config)
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        return 1
    if args.channels_command == "list":
        for name, settings in sorted(config.channels.items()):
            kind = str(settings["type"])
            note = "" if kind in CHANNEL_TYPES else "  (no sender in this amcompanion)"
            print(f"{name:<24} {kind:<14} rate limit {settings.get('rate_limit') or 'none'}{note}")
        return 0

    def masked(text: str) -> str:
        return mask(text, config.secrets)

    try:
        result = asyncio.run(probe(config, args.name, args.to, args.timeout))
    except ProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.response is None:
        print(masked(f"no answer: {result.outcome.reason}"))
    else:
        response = result.response
        print(f"HTTP {response.status}" if response.status >= 100 else f"status {response.status}")
        for key, value in response.headers.items():
            print(masked(f"{key}: {value}"))
        print()
        print(masked(response.body.decode("utf-8", "replace")))
    wait = f" (asked to wait {result.outcome.retry_after:g} s)" if result.outcome.retry_after is not None else ""
    reason = f": {masked(result.outcome.reason)}" if result.outcome.reason else ""
    print(f"\n=> {result.outcome.result}{reason}{wait}")
    return 0 if result.outcome.result == "ok" else 1


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def history_command(args: argparse.Namespace) -> int:
    from amcompanion.history.schema import NewerDatabase

    try:
        return _history(args)
    except NewerDatabase as exc:
        print(f"error: {args.db}: {exc}", file=sys.stderr)
        return 1


def _history(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from amcompanion.catalog.durations import parse_duration

    action = args.history_command
    if action == "seed":
        from amcompanion.history.seed import seed

        started = time.perf_counter()

        def progress(done: int) -> None:
            print(f"\rseeding {args.db}: {done}/{args.alerts} alerts", end="", file=sys.stderr, flush=True)

        written = seed(args.db, args.alerts, days=args.days, seed_value=args.seed, progress=progress)
        print(file=sys.stderr)
        print(f"seeded {written} alerts over {args.days} days into {args.db} in {time.perf_counter() - started:.1f}s")
        return 0
    if not args.db.is_file():
        print(
            f"amcompanion history: {args.db}: no such database (the receiver's --db, or `history seed`)",
            file=sys.stderr,
        )
        return 2
    if action == "serve":
        from amcompanion.history.serve import serve

        print(f"history pages of {args.db}: http://{args.host}:{args.port}/-/dashboards/weekly", file=sys.stderr)
        return serve(args.db, args.host, args.port)
    duration = args.since if action == "report" else args.older_than
    ms = parse_duration(duration)
    if not ms:
        print(f"amcompanion history: {duration!r} is not a duration (e.g. 7d, 12h, 90d)", file=sys.stderr)
        return 2
    cutoff = datetime.now(UTC) - timedelta(milliseconds=ms)
    if action == "report":
        from amcompanion.history.report import report

        print(report(args.db, cutoff), end="")
        return 0
    from amcompanion.history.prune import prune

    pruned = prune(args.db, cutoff)
    counts = ", ".join(f"{count} {table}" for table, count in pruned.items())
    print(f"pruned alerts resolved before {cutoff:%Y-%m-%d %H:%M} UTC from {args.db}: {counts}")
    return 0


def demo_command(args: argparse.Namespace) -> int:
    import asyncio
    import shutil
    import tempfile

    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.demo.daemons import DaemonError
    from amcompanion.demo.run import DemoError, run
    from amcompanion.demo.stand_ins import Unsupported
    from amcompanion.validate import ToolMissing

    if not 1 <= args.speed <= 600:
        print(f"error: --speed: expected 1 to 600, got {args.speed}", file=sys.stderr)
        return 2
    if not args.rulesets.is_dir():
        print(
            f"error: {args.rulesets}/: no such catalog directory; the demo plays the bundled catalog: run it in a "
            "clone of the amcompanion repository (where rulesets/ is), or name the directory",
            file=sys.stderr,
        )
        return 2
    if args.workdir is not None:
        if args.workdir.exists() and any(args.workdir.iterdir()):
            print(f"error: --workdir: {args.workdir} is not empty; name a new directory", file=sys.stderr)
            return 2
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="amcompanion-demo-"))
    try:
        asyncio.run(run(args.rulesets, workdir.resolve(), args.speed, args.once, sys.stdout))
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        return 1
    except (DemoError, DaemonError, Unsupported, ToolMissing, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
