"""The `amcompanion` command line: a thin layer over the catalog, compiler and emitter."""

import argparse
import gc
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from amcompanion import __version__
from amcompanion.drill import cli as drill_cli
from amcompanion.tune import cli as tune_cli
from amcompanion.wording import plural

if TYPE_CHECKING:
    from amcompanion.catalog.model import Catalog
    from amcompanion.lint import Finding
    from amcompanion.lint.server import PrometheusAPI

COMPILE_EXAMPLES = """\
examples:
  amcompanion compile                       # rulesets/ → generated/
  amcompanion compile teams/payments -o out # another catalog, another output directory
  amcompanion compile --check               # CI/GitOps gate: exit 1 with a diff when generated/ is stale

exit codes: 0 ok, 1 catalog errors or stale output, 2 usage errors
"""

LINT_EXAMPLES = """\
examples:
  amcompanion lint                          # lint rulesets/: file:line:col: check: message
  amcompanion lint teams/payments --json    # the findings as JSON, for scripts
  amcompanion compile --strict              # the same findings fail the compile (nothing written)
  amcompanion lint --prometheus http://prometheus:9090
                                            # also ask that server: does every selector have series
                                            # (last --window, default 1h), every label a matcher or
                                            # template reads?

checks: template-label, vector-matching, rate-window, regex, counter-without-rate,
no-comparison, absent-for, duplicate-rule; with --prometheus also series-missing,
label-missing (docs/lint.md). Exempt one alert, with a reason:
  lint: {disable: [no-comparison], reason: "a deadman switch: fires always"}

exit codes: 0 no findings, 1 findings or catalog errors, 2 usage errors or a server
that cannot be asked (unreachable, an HTTP error, not Prometheus's API)
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
  amcompanion serve --db postgresql://amcompanion@db.example.com/amcompanion    # PostgreSQL (or AMCOMPANION_DB)

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


QUALITY_EXAMPLES = """\
examples:
  amcompanion quality                                  # the last 30 days of history.db
  amcompanion quality rulesets/ --since 90d            # also the catalog's alerts that never fired
  amcompanion quality --time-zone Asia/Shanghai        # hours and weekdays as the on-call team lives them
  amcompanion quality --json | jq '.cascades'

Flapping: a series fired again within 15 min of resolving, 3 times or more. Periodic: 60% of an alert's episodes
start in one hour of the day (over 4 days or more) or on one weekday (over 4 weeks or more). Cascade: the second
alert started within 60 s of the first in 80% of the first's episodes (4 or more). Drills are left out. On
PostgreSQL, point --db at the copy `amcompanion history mirror` keeps.
"""

ALERTS_EXAMPLES = """\
examples:
  amcompanion alerts                          # the newest 20 alerts: id, state, age, step, who was paged
  amcompanion alerts --state firing           # what is firing now
  amcompanion alerts --failed                 # alerts with a page that failed, and why
  amcompanion alerts --json --limit 500 | jq '.[] | select(.escalation_level > 1)'
  amcompanion alerts --db postgresql://amcompanion@db.example.com/amcompanion   # receivers on PostgreSQL

It reads the receiver's history database (--db: a SQLite file or a PostgreSQL URL), also while
`amcompanion serve` runs; the ids are the ones `amcompanion ack ID --by NAME` takes.
"""

ONCALL_EXAMPLES = """\
examples:
  amcompanion oncall                                   # every schedule: who now, until when, the next 3 hand-offs
  amcompanion oncall infra-primary --next 10           # one schedule, ten hand-offs ahead
  amcompanion oncall --at 2026-12-24T20:00:00+01:00    # who is on call on Christmas Eve
  amcompanion oncall --json | jq -r '.schedules[] | "\\(.schedule): \\(.on_call | join(", "))"'

Times print in each schedule's own zone. iCal sources are read once (URLs too). A running receiver answers
the same at GET /api/v1/oncall and serves calendars to subscribe to at /schedules/NAME.ics.
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

HISTORY_SERVE_EXAMPLES = """\
examples:
  amcompanion history serve                        # history.db: http://127.0.0.1:8001/-/dashboards/weekly
  amcompanion history serve --db demo.db --port 8002
  amcompanion history serve --db /var/lib/amcompanion/history.db --host 0.0.0.0
  amcompanion history serve --time-zone Asia/Shanghai  # times as the on-call team lives them
  amcompanion history serve --catalog rulesets         # the quality page also lists what never fired

It opens the database read-only, so it can run beside `amcompanion serve`, which keeps writing it.
The pages and their definitions: docs/history.md.
"""

HISTORY_REPORT_EXAMPLES = """\
examples:
  amcompanion history report                       # the last 7 days of history.db
  amcompanion history report --since 30d --db /var/lib/amcompanion/history.db
  amcompanion history report --since 7d | mail -s "alerts this week" team@example.com

Counts by severity, MTTA and MTTR (median and p90), the noisiest alerts, deliveries and escalations:
the same canned queries as the pages, so the numbers are the pages' numbers.
"""

HISTORY_MIRROR_EXAMPLES = """\
examples:
  amcompanion history mirror --from postgresql://amcompanion@db/amcompanion --to history.db   # every 30s
  amcompanion history mirror --from "$AMCOMPANION_DB" --to /var/lib/amcompanion/history.db --once
  amcompanion history serve --db history.db                            # the pages, on the copy

Copies only what changed since the last pass (new rows; alerts and notifications that may still change).
"""

HISTORY_PRUNE_EXAMPLES = """\
examples:
  amcompanion history prune --older-than 90d       # keep 90 days of resolved alerts in history.db
  amcompanion history prune --older-than 1y --db /var/lib/amcompanion/history.db

Firing and acknowledged alerts stay whatever their age; a resolved alert goes with its events,
escalations, deliveries and acks. It deletes in batches, so a running receiver waits at most one batch.
"""

HISTORY_SEED_EXAMPLES = """\
examples:
  amcompanion history seed --db demo.db            # 5000 alerts over the last 90 days
  amcompanion history seed --alerts 20000 --days 30 --db demo.db && amcompanion history serve --db demo.db
  amcompanion history seed --seed 7 --db other.db  # another history; the same seed gives the same one

A team's history, not noise: a daily rhythm, storms, flapping alerts, people who acknowledge at different
speeds (some too late for the SLA), escalations and a few failed deliveries. It adds to the database,
creating it if missing: seed a database of its own, not the receiver's.
"""

DEMO_EXAMPLES = """\
examples:
  amcompanion demo                        # the bundled catalog in about half a minute, then Ctrl-C to stop
  amcompanion demo teams/payments         # your catalog: the first alert the demo can drive
  amcompanion demo --alert HighMemory     # that alert
  amcompanion demo --speed 20             # slower: a catalog minute lasts 3 s
  amcompanion demo --once --workdir d     # exit when the script is done; keep the files and logs in d/

It compiles the catalog with every waiting time divided by --speed (Alertmanager's defaults too) and
every address on 127.0.0.1, then starts Debian's Prometheus and Alertmanager, the receiver, a stand-in
server for each channel (printing each message as its reader would see it), a tiny exporter, and
Datasette on the history. The exporter serves the gauges the alert reads: past its level, the alert
fires, pages level 1, escalates to level 2, is acknowledged through a link in a message, and resolves
when the gauges are back. An alert the demo can drive reads only gauges (plain selectors with
arithmetic, comparisons, and/unless, sum/avg/min/max/count; no rate() or other ranges, not up) and
reaches an escalation policy; it says which alerts it cannot drive, and why. Nothing leaves this machine.
"""

INIT_EXAMPLES = """\
examples:
  amcompanion init                          # a starter catalog in rulesets/
  amcompanion init teams/web                # in another directory (created if missing)
  amcompanion init --force                  # overwrite the starter's files if they exist

It writes a commented catalog for one team: two thresholds with warning and critical levels, an
availability SLO, a DingTalk robot, SMS to the on-call as the second escalation step, quiet hours
for warnings and a root-cause inhibition. It compiles and validates as written. Each file starts with
a `# yaml-language-server: $schema=...` line, so VS Code's YAML extension completes and checks it.
Walk-through: docs/first-catalog.md. Exit 1 when a file exists (nothing is written without --force).
"""

IMPORT_EXAMPLES = """\
examples:
  amcompanion import node-exporter.yml                 # → rulesets/imported/node-exporter.yaml
  amcompanion import kube-prometheus/manifests/ -o rulesets/kube   # every *.yaml under a directory
  amcompanion import slos/*.yml --json | jq '.files[].not_carried'

It reads Prometheus rule files, PrometheusRule objects (one or several per file, or a List), Sloth
prometheus/v1 specs and PrometheusServiceLevel objects, OpenSLO and Pyrra ServiceLevelObjectives, and
writes one catalog file per source file. Each rule becomes the most specific kind that means exactly the
same (`EXPR > 80` a threshold, `absent(up{...})` an absent, anything else an expr, recording rules
records), keeping its name, labels, annotations, `for` and `keep_firing_for`; no `alert_kind` label is
added, so alerts keep their identity while you switch. Anything it cannot carry is listed with the
reason, never dropped silently. Then run `amcompanion compile` as usual.
Exit 0 when everything was carried, 1 when something was not or a file could not be read or written.
"""

SCHEMA_EXAMPLES = """\
examples:
  amcompanion schema                               # the catalog's JSON Schema, on stdout
  amcompanion schema -o docs/catalog.schema.json   # refresh the copy editors fetch
  amcompanion schema --markdown -o docs/catalog-fields.md   # the field tables of the docs

It is written from the declarations the compiler validates with, so it takes the same fields. Editors that
read the `# yaml-language-server: $schema=...` line atop each catalog file (VS Code's YAML extension,
JetBrains IDEs) complete field names, show what each means and underline unknown keys and wrong types with
it. The compiler still checks what a schema cannot: PromQL, names used but never defined, severities.
Setup: docs/first-catalog.md.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amcompanion",
        description="Describe alerts once in a catalog; get Prometheus rules, Alertmanager config and tests.",
        epilog="Run `amcompanion COMMAND --help` for examples.",
    )
    parser.add_argument("--version", action="version", version=f"amcompanion {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    i = sub.add_parser(
        "init",
        help="write a commented starter catalog to begin with",
        description="Write a starter catalog for one team that compiles and validates as written.",
        epilog=INIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("dir", nargs="?", default="rulesets", type=Path, help="where to write it (default: rulesets)")
    i.add_argument("--force", action="store_true", help="overwrite the starter's files where they exist")

    im = sub.add_parser(
        "import",
        help="bring in Prometheus rules, PrometheusRule objects, Sloth, OpenSLO and Pyrra specs",
        description="Write the rules and SLO specs you have as catalog files that compile to the same alerts.",
        epilog=IMPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    im.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="files, or directories of *.yml/*.yaml")
    im.add_argument(
        "-o", "--out", type=Path, default=Path("rulesets/imported"), help="where to write (default: rulesets/imported)"
    )
    im.add_argument(
        "--catalog",
        type=Path,
        help="the catalog the files join: its severities are used, and it is checked after the import "
        "(default: rulesets when -o is inside it, else the -o directory)",
    )
    im.add_argument("--force", action="store_true", help="replace files that amcompanion import did not write")
    im.add_argument("--json", action="store_true", help="the summary as JSON, for scripts")

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
    p.add_argument("--strict", action="store_true", help="lint findings are errors: exit 1 and write nothing")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes compiling groups at once (default: the number of CPUs)",
    )

    li = sub.add_parser(
        "lint",
        help="find alerts that cannot work as meant (dropped template labels, short rate windows...)",
        description="Check a catalog's alerts for mistakes that can be known without a Prometheus server; with "
        "--prometheus, also for selectors and labels that a running one has no series of.",
        epilog=LINT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    li.add_argument("rulesets", nargs="?", default="rulesets", type=Path, help="catalog directory (default: rulesets)")
    li.add_argument("--json", action="store_true", help="the findings as a JSON list, for scripts")
    li.add_argument(
        "--prometheus",
        metavar="URL",
        help="also check the alerts' selectors and labels against this Prometheus's HTTP API "
        "(its address, as http://prometheus:9090)",
    )
    li.add_argument(
        "--window",
        default="1h",
        type=_lint_window,
        metavar="DURATION",
        help="with --prometheus: series seen within this long count (default: 1h)",
    )
    li.add_argument(
        "--timeout",
        default=10.0,
        type=_lint_timeout,
        metavar="SECONDS",
        help="with --prometheus: how long to wait for each answer (default: 10)",
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

    sc = sub.add_parser(
        "schema",
        help="print the catalog's JSON Schema, for editors",
        description="Print the JSON Schema (draft 2020-12) of a catalog file.",
        epilog=SCHEMA_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sc.add_argument("-o", "--out", type=Path, metavar="FILE", help="write it to FILE instead of stdout")
    sc.add_argument("--markdown", action="store_true", help="every mapping's field table, for the docs, instead")

    s = sub.add_parser(
        "serve",
        help="run the webhook receiver Alertmanager posts to",
        description="Record every alert in the history (SQLite, or PostgreSQL for several receivers), escalate the"
        " ones nobody acknowledges, deliver to channels.",
        epilog=SERVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--config", type=Path, default=Path("generated/receiver/receiver.yaml"), help="receiver.yaml")
    s.add_argument(
        "--db",
        default=os.environ.get("AMCOMPANION_DB", "history.db"),
        help="the history: a SQLite file (created if missing) or a postgresql:// URL (default: $AMCOMPANION_DB,"
        " else history.db)",
    )
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

    q = sub.add_parser(
        "quality",
        help="how well each alert serves: fired, acknowledged, MTTA, MTTR, flapping, periodic, cascades",
        description="What each alert did over a period, from the history, and the patterns that say it could page"
        " better: flapping, periodic, never acknowledged, never fired (with a catalog), cascades.",
        epilog=QUALITY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("catalog", nargs="?", type=Path, help="the catalog: also report its alerts that never fired")
    q.add_argument("--since", default="30d", help="how far back, as a duration (default: 30d)")
    q.add_argument("--db", type=Path, default=Path("history.db"), help="the history, a SQLite file (history.db)")
    q.add_argument("--time-zone", default="UTC", help="for hours and weekdays, e.g. Asia/Shanghai (default: UTC)")
    q.add_argument("--json", action="store_true", help="JSON, for scripts")

    tune_cli.add_parser(sub)
    drill_cli.add_parser(sub)

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
    al.add_argument("--db", default="history.db", help="the history: a SQLite file or a PostgreSQL URL (history.db)")

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
    a.add_argument("--db", default="history.db", help="the history: a SQLite file or a PostgreSQL URL (history.db)")

    o = sub.add_parser(
        "oncall",
        help="who is on call now (or at a time), and the next hand-offs",
        description="Show who each schedule names and when it hands off, from the catalog or a receiver config.",
        epilog=ONCALL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    o.add_argument("schedule", nargs="?", help="one schedule (default: all)")
    o.add_argument("--at", metavar="TIME", help="RFC 3339, e.g. 2026-12-24T09:00:00+01:00 (default: now)")
    o.add_argument("--next", type=int, default=3, metavar="N", help="hand-offs to list after the current shift (3)")
    o.add_argument("--json", action="store_true", help="JSON, for scripts")
    o.add_argument(
        "--catalog", type=Path, default=Path("rulesets"), help="the catalog with the schedules (default: rulesets)"
    )

    tk = sub.add_parser(
        "token",
        help="make a personal API and console token for a contact",
        description="Print a new random token and the catalog line that lets its owner in (only the hash is kept).",
        epilog="examples:\n  amcompanion token alice\n  amcompanion token alice --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tk.add_argument("contact", help="the contact the token is for")
    tk.add_argument("--json", action="store_true", help="JSON, for scripts")

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
    d.add_argument("rulesets", nargs="?", default="rulesets", type=Path, help="the catalog (default: rulesets)")
    d.add_argument("--alert", metavar="NAME", help="the alert to drive (default: the first the demo can drive)")
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

    def history_action(name: str, summary: str, description: str, examples: str) -> argparse.ArgumentParser:
        action = history.add_parser(
            name,
            help=summary,
            description=description,
            epilog=examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        action.add_argument(
            "--db", type=Path, default=Path("history.db"), help="the history database (default: history.db)"
        )
        return action

    hs = history_action(
        "serve",
        "Datasette with the history pages and the dashboard",
        "Serve the history pages (MTTA, MTTR, SLA breaches, noisy and flapping alerts...) and the dashboard.",
        HISTORY_SERVE_EXAMPLES,
    )
    hs.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    hs.add_argument("--port", type=int, default=8001, help="port (default: 8001)")
    hs.add_argument("--time-zone", default="UTC", help="show times in this zone, e.g. Asia/Shanghai (default: UTC)")
    hs.add_argument("--catalog", type=Path, help="the catalog: the quality page also lists its alerts that never fired")
    hr = history_action(
        "report",
        "counts, MTTA, MTTR and the noisiest alerts, as text",
        "Print the history's main figures since a time, for a terminal or a weekly mail.",
        HISTORY_REPORT_EXAMPLES,
    )
    hr.add_argument(
        "--since", default="7d", help="how far back, as a duration, from the start of that day (UTC; default: 7d)"
    )
    hp = history_action(
        "prune",
        "delete resolved alerts older than a duration, with their rows",
        "Retention: delete the alerts resolved before now minus a duration, and every row about them.",
        HISTORY_PRUNE_EXAMPLES,
    )
    hp.add_argument("--older-than", required=True, help="a duration: resolved before now minus this (e.g. 90d)")
    hm = history.add_parser(
        "mirror",
        help="keep a SQLite copy of a PostgreSQL history, for the history pages",
        description="Copy what changed in the receivers' PostgreSQL history into a SQLite file, every --every (the "
        "history pages read SQLite): the chart's history sidecar on PostgreSQL deployments.",
        epilog=HISTORY_MIRROR_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hm.add_argument("--from", dest="source", required=True, help="the history: postgresql://user@host/database")
    hm.add_argument("--to", type=Path, default=Path("history.db"), help="the SQLite copy (default: history.db)")
    hm.add_argument("--every", default="30s", help="how often to copy what changed (default: 30s)")
    hm.add_argument("--once", action="store_true", help="copy once and stop")
    hd = history_action(
        "seed",
        "fill a database with realistic synthetic history",
        "Add synthetic alerts with their events, escalations, deliveries and acks, to look at the pages.",
        HISTORY_SEED_EXAMPLES,
    )
    hd.add_argument("--alerts", type=int, default=5000, help="alerts to add (default: 5000)")
    hd.add_argument("--days", type=int, default=90, help="spread over this many days up to now (default: 90)")
    hd.add_argument(
        "--seed", type=int, default=1, help="random seed: the same seed gives the same history (default: 1)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    if not (sys.argv[1:] if argv is None else argv):  # as git does: the whole help, and 1 (no command ran)
        parser.print_help()
        return 1
    args = parser.parse_args(argv)
    commands = {
        "init": init_command,
        "import": import_command,
        "compile": compile_command,
        "lint": lint_command,
        "validate": validate_command,
        "schema": schema_command,
        "serve": serve_command,
        "ack": ack_command,
        "oncall": oncall_command,
        "token": token_command,
        "alerts": alerts_command,
        "quality": quality_command,
        "tune": tune_cli.tune_command,
        "drill": drill_cli.command,
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


def import_command(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from amcompanion.catalog import load_catalog
    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.importers import DEFAULT_SEVERITIES
    from amcompanion.importers.run import import_sources

    root = args.catalog or (Path("rulesets") if args.out.is_relative_to("rulesets") else args.out)
    try:
        severities = tuple(load_catalog(root).defaults.severities)
    except CatalogError:  # no catalog there yet, or one with errors: the default severities
        severities = DEFAULT_SEVERITIES
    report = import_sources(args.sources, args.out, args.force, severities)
    if report.files:
        try:  # what was written must be a catalog the reader takes, with the files it joins
            load_catalog(root)
        except CatalogError as exc:
            report.problems += [f"written, but the catalog refuses it: {d}" for d in exc.diagnostics]
    totals = report.totals()
    not_carried = sum(len(f.not_carried) for f in report.files)
    if args.json:
        files = [asdict(f) for f in report.files]
        summary = {
            "files": files,
            "totals": dict(totals),
            "problems": report.problems,
            "passed_over": report.passed_over,
        }
        print(json.dumps(summary, indent=2))
    else:
        for item in report.files:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(item.kinds.items()))
            print(f"{item.source} ({item.format}) → {item.target}: {kinds or 'nothing'}")
            for problem in item.not_carried:
                print(f"  not carried: {problem.source + ': ' if problem.source else ''}{problem.reason}")
        for problem in report.problems:
            print(f"error: {problem}", file=sys.stderr)
        if report.passed_over:
            print(
                f"passed over {plural(len(report.passed_over), 'file')}, in part or whole, that are none of the "
                "formats (--json lists them)"
            )
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(totals.items()))
        print(
            f"imported {plural(len(report.files), 'file')}: {summary or 'no rules'}; "
            f"{plural(not_carried, 'item')} not carried"
            + (f"\nnext: amcompanion compile {root}" if report.files and not report.problems else "")
        )
    return 1 if report.problems or not_carried or not report.files else 0


def init_command(args: argparse.Namespace) -> int:
    from amcompanion.catalog.reader import catalog_files
    from amcompanion.starter import write_starter

    others = catalog_files(args.dir) if args.dir.is_dir() else []
    try:
        written = write_starter(args.dir, args.force)
    except FileExistsError as exc:
        print(f"error: {exc}; nothing written (--force overwrites)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {args.dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote a starter catalog: {', '.join(str(path) for path in written)}")
    others = [path for path in others if path not in written]
    if others:
        print(
            f"note: {args.dir}/ also holds {plural(len(others), 'other catalog file')}; compile reads them all together"
        )
    compile_it, validate_it = f"amcompanion compile {args.dir} -o generated", "amcompanion validate generated"
    width = max(len(compile_it), len(validate_it))
    print(
        f"next:\n  {compile_it:<{width}}  # Prometheus rules, Alertmanager config and their tests\n"
        f"  {validate_it:<{width}}  # promtool and amtool check them\n"
        "then rename the service, and set your metrics, people and channels: docs/first-catalog.md"
    )
    return 0


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
        print(f"{plural(len(exc.diagnostics), 'error')}; nothing written", file=sys.stderr)
        return 1
    findings = _lint(catalog, args.rulesets)
    for finding in findings if args.strict or not args.quiet else ():
        print(f"{'error' if args.strict else 'warning'}: {finding}", file=sys.stderr)
    if findings and args.strict:
        print(f"{plural(len(findings), 'lint finding')} (--strict); nothing written", file=sys.stderr)
        return 1
    jobs, regenerate = max(1, args.jobs), _regenerate(args)
    if args.check:
        files, output = render_catalog(catalog, jobs, regenerate)
    else:
        try:
            written, output = write_catalog(catalog, args.out, jobs, regenerate)
        except FileExistsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if output.unrouted and not args.quiet:
        print(
            f"warning: {plural(len(output.unrouted), 'alert')} with no escalation policy, only the empty receiver "
            f'"unrouted" (set defaults.escalation, a group escalation or a route): {", ".join(output.unrouted)}',
            file=sys.stderr,
        )
    if output.undrilled and not args.quiet:
        print(
            "warning: the weekly drill leaves out " + "; ".join(output.undrilled) + " (see drills: in docs/catalog.md)",
            file=sys.stderr,
        )
    if output.unproven and not args.quiet:
        print(
            f"warning: {plural(len(output.unproven), 'alert')} tested without going through "
            f"{'its' if len(output.unproven) == 1 else 'their'} query "
            "(give it `examples:`, see docs/catalog.md):\n" + "\n".join(f"  {line}" for line in output.unproven),
            file=sys.stderr,
        )
    if args.check:
        diff = stale_diff(args.out, files, args.out.name)
        if diff:
            sys.stdout.write(diff)
            print(f"{args.out}/ is stale: run `{regenerate}` and commit the result", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"{args.out}/ is up to date ({plural(len(files), 'file')})")
        return 0
    if not args.quiet:
        elapsed = time.perf_counter() - started
        print(
            f"compiled {plural(output.groups, 'group')}, {plural(output.alerts, 'alert')}, "
            f"{plural(output.rules, 'rule')}, {plural(output.slos, 'SLO')}, {plural(output.routes, 'route test')} → "
            f"{plural(len(written), 'file')} in {args.out}/ in {elapsed:.2f}s"
        )
    return 0


def _lint(
    catalog: "Catalog", root: Path, prometheus: "PrometheusAPI | None" = None, window_ms: int = 3600 * 1000
) -> "list[Finding]":
    """The lint findings, located; with `prometheus`, also those of its series (raises ServerError)."""
    from amcompanion.lint import lint, locate_findings

    found = lint(catalog)
    if prometheus is not None:
        from amcompanion.lint.server import check_server

        found += check_server(catalog, prometheus, window_ms)
    return locate_findings(list(dict.fromkeys(found)), root, catalog.root_name)


def _lint_window(text: str) -> int:
    from amcompanion.catalog.durations import parse_duration

    ms = parse_duration(text)
    if not ms:
        raise argparse.ArgumentTypeError(f"not a Prometheus duration over 0, as 1h or 30m: {text!r}")
    return ms


def _lint_timeout(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds over 0: {text!r}")
    return seconds


def lint_command(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from amcompanion.catalog import load_catalog
    from amcompanion.catalog.diagnostics import CatalogError

    try:
        catalog = load_catalog(args.rulesets)
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(f"error: {diag}" if not diag.line else str(diag), file=sys.stderr)
        print(f"{plural(len(exc.diagnostics), 'error')}; fix them to lint", file=sys.stderr)
        return 1
    from amcompanion.lint.server import PrometheusAPI, ServerError

    try:
        server = PrometheusAPI(args.prometheus, args.timeout) if args.prometheus is not None else None
        findings = _lint(catalog, args.rulesets, server, args.window)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        fields = ("check", "file", "line", "column", "message")
        print(json.dumps([{k: v for k, v in asdict(f).items() if k in fields} for f in findings], indent=2))
    else:
        for finding in findings:
            print(finding)
        asked = f", with the series of Prometheus at {server.url}" if server is not None else ""
        print(f"{plural(len(findings), 'finding')} in {plural(len(catalog.alerts()), 'alert')}{asked}", file=sys.stderr)
    return 1 if findings else 0


def _regenerate(args: argparse.Namespace) -> str:
    """The compile command that writes OUT again from RULESETS, as the generated files' headers and --check
    name it: the paths as given, the defaults left out (so `amcompanion compile` on rulesets/ stays that)."""
    import shlex

    words = ["amcompanion", "compile"]
    if args.rulesets != Path("rulesets"):
        words.append(str(args.rulesets))
    if args.out != Path("generated"):
        words += ["-o", str(args.out)]
    return shlex.join(words)


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


def schema_command(args: argparse.Namespace) -> int:
    import json

    from amcompanion.catalog.reference import markdown
    from amcompanion.catalog.schema import catalog_schema

    if args.markdown:
        text = markdown()
    else:
        text = json.dumps(catalog_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def serve_command(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import timedelta

    import psycopg

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
        print(f"error: {without_password(args.db)}: {exc}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as exc:  # PostgreSQL not reachable, or refusing us, at start
        print(f"error: cannot open the history at {without_password(args.db)}: {_first_line(exc)}", file=sys.stderr)
        return 1
    return 0


def _first_line(exc: BaseException) -> str:
    """An error's first line (PostgreSQL's come with DETAIL and HINT lines), or its type when it says nothing."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def without_password(url: str) -> str:
    """A database URL as it may be printed: postgresql://user:***@host/db."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def oncall_command(args: argparse.Namespace) -> int:
    from amcompanion.catalog import load_catalog
    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.schedules import show

    try:
        at = show.parse_moment(args.at)
    except ValueError as exc:
        print(f"error: --at: {exc} (expected RFC 3339, e.g. 2026-12-24T09:00:00+01:00)", file=sys.stderr)
        return 2
    if not 0 <= args.next <= 100:
        print(f"error: --next: expected 0 to 100, got {args.next}", file=sys.stderr)
        return 2
    try:
        catalog = load_catalog(args.catalog)
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        return 1
    if not catalog.schedules:
        print(f"error: {args.catalog} has no schedules (docs/catalog.md, “Schedules”)", file=sys.stderr)
        return 1
    if args.schedule is not None and args.schedule not in catalog.schedules:
        known = ", ".join(sorted(catalog.schedules))
        print(f'error: unknown schedule "{args.schedule}" (the catalog has: {known})', file=sys.stderr)
        return 1
    names = [args.schedule] if args.schedule else sorted(catalog.schedules)
    found, unread, strangers = show.plan(catalog.schedules, catalog.contacts, names, at, args.next, args.catalog)
    for source, why in unread.items():
        print(f"warning: calendar {source} could not be read: {why}", file=sys.stderr)
    for source, summaries in strangers.items():
        print(f"warning: calendar {source} names no contact in: {', '.join(summaries)}", file=sys.stderr)
    text = show.text(found, catalog.schedules, catalog.contacts)
    print(show.as_json(found, unread, strangers) if args.json else text)
    return 0


def token_command(args: argparse.Namespace) -> int:
    import json
    import secrets

    from amcompanion.receiver.config import token_digest

    token = secrets.token_urlsafe(24)
    digest = token_digest(token)
    if args.json:
        print(json.dumps({"contact": args.contact, "token": token, "token_sha256": digest}))
        return 0
    print(f"token for {args.contact} (give it to them; it is not stored anywhere):\n  {token}\n")
    print(f"in the catalog, under contacts.{args.contact}:\n  token_sha256: {digest}\n")
    variable = re.sub(r"\W", "_", args.contact.upper()) + "_TOKEN"
    print(f"or keep the token in a Secret and name its environment variable instead:\n  token_env: {variable}")
    return 0


def ack_command(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from amcompanion.receiver import db
    from amcompanion.receiver.store import Conflict, NotFound, Store

    try:
        with db.transaction(args.db) as conn:
            alert = Store.ack(conn, args.id, args.by, "cli", args.comment, datetime.now(UTC))
    except (NotFound, Conflict, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except db.ERRORS as exc:
        print(f"error: {without_password(args.db)}: {_first_line(exc)}", file=sys.stderr)
        return 1
    already = "was already " if alert["already_acknowledged"] else ""
    who = f"{alert['acked_by']} at {alert['acked_at']}"
    print(f"alert {alert['id']} ({alert['alertname']}) {already}acknowledged by {who}")
    return 0


def quality_command(args: argparse.Namespace) -> int:
    import json

    from amcompanion.quality.findings import Thresholds
    from amcompanion.quality.inputs import Refused, read
    from amcompanion.quality.text import as_json, render

    limits = Thresholds()
    try:
        since, zone, _, quality = read(args.since, args.time_zone, args.db, args.catalog, limits)
    except Refused as exc:
        print(exc.say(), file=sys.stderr)
        return exc.status
    if args.json:
        print(json.dumps(as_json(quality), indent=2, ensure_ascii=False))
        return 0
    heading = f"Alert quality of {args.db} since {since.astimezone(zone):%Y-%m-%d %H:%M} ({args.since}), in {zone}"
    print(render(quality, heading, limits), end="")
    return 0


def alerts_command(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime

    from amcompanion.receiver import db
    from amcompanion.receiver.store import Store
    from amcompanion.receiver.timeutil import parse_iso

    if not 1 <= args.limit <= 100_000:
        print(f"error: --limit: expected 1 to 100000, got {args.limit}", file=sys.stderr)
        return 2
    try:
        with db.transaction(args.db, read_only=True) as conn:
            alerts = Store.alerts(conn, args.state, args.limit, args.failed)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except db.ERRORS as exc:
        print(f"error: {without_password(args.db)}: {_first_line(exc)}", file=sys.stderr)
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
    from amcompanion.receiver.channels.base import NOT_SENT
    from amcompanion.receiver.config import LenientEnvironment, load_receiver_config, mask
    from amcompanion.receiver.probe import ProbeError, probe

    environment = LenientEnvironment()  # listing needs no secret, testing a channel only its own
    try:
        config = load_receiver_config(args.config, environment)
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        return 1
    if args.channels_command == "list":
        for name, settings in sorted(config.channels.items()):
            kind = str(settings["type"])
            note = "" if kind in CHANNEL_TYPES else "  (no sender in this amcompanion)"
            print(f"{name:<24} {kind:<14} rate limit {settings.get('rate_limit') or 'none'}{note}")
        if environment.unset:
            print(
                f"\nnot set in this environment: {', '.join(environment.unset)}"
                " (`amcompanion serve` and `channels test` need them)"
            )
        return 0

    def masked(text: str) -> str:
        return mask(text, config.secrets)

    missing = environment.unset_in(config.channels.get(args.name, {}))
    if missing:
        print(
            f"error: nothing was sent: channel {args.name} needs {', '.join(missing)} set in the environment",
            file=sys.stderr,
        )
        return 1

    try:
        result = asyncio.run(probe(config, args.name, args.to, args.timeout))
    except ProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.response is None:
        print(masked(f"no answer: {result.outcome.reason}"))
    elif result.response.headers.get(NOT_SENT):  # decided before any request: there is no vendor answer to show
        print(f"nothing was sent: {masked(result.outcome.reason.removeprefix('not sent: '))}")
        return 1
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
        print(f"error: {args.to if args.history_command == 'mirror' else args.db}: {exc}", file=sys.stderr)
        return 1


def _history(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from amcompanion.catalog.durations import parse_duration

    action = args.history_command
    if action == "mirror":
        return _mirror(args)
    if action == "seed":
        from amcompanion.history.seed import seed

        started = time.perf_counter()

        def progress(done: int) -> None:
            print(f"\rseeding {args.db}: {done}/{plural(args.alerts, 'alert')}", end="", file=sys.stderr, flush=True)

        written = seed(args.db, args.alerts, days=args.days, seed_value=args.seed, progress=progress)
        print(file=sys.stderr)
        elapsed = time.perf_counter() - started
        print(f"seeded {plural(written, 'alert')} over {plural(args.days, 'day')} into {args.db} in {elapsed:.1f}s")
        return 0
    if not args.db.is_file():
        print(
            f"amcompanion history: {args.db}: no such database (the receiver's --db, or `history seed`)",
            file=sys.stderr,
        )
        return 2
    if action == "serve":
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from amcompanion.history.serve import bring_up_to_date, serve

        try:
            ZoneInfo(args.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            print(f"amcompanion history: --time-zone: no time zone {args.time_zone!r} (e.g. UTC)", file=sys.stderr)
            return 2
        catalog_for_s = None
        if args.catalog is not None:
            from amcompanion.catalog.diagnostics import CatalogError
            from amcompanion.catalog.reader import load_catalog
            from amcompanion.quality.inputs import catalog_fors

            try:
                catalog_for_s = catalog_fors(load_catalog(args.catalog))
            except CatalogError as exc:
                for diag in exc.diagnostics:
                    print(diag, file=sys.stderr)
                return 1
        from amcompanion.history.schema import NewerDatabase

        try:
            bring_up_to_date(args.db, lambda line: print(line, file=sys.stderr))
        except NewerDatabase as exc:
            print(f"amcompanion history: {args.db}: {exc}", file=sys.stderr)
            return 1
        print(f"history pages of {args.db}: http://{args.host}:{args.port}/-/dashboards/weekly", file=sys.stderr)
        return serve(args.db, args.host, args.port, args.time_zone, catalog_for_s)
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
    counts = ", ".join(plural(count, table.removesuffix("s").replace("_", " ")) for table, count in pruned.items())
    print(f"pruned alerts resolved before {cutoff:%Y-%m-%d %H:%M} UTC from {args.db}: {counts}")
    return 0


def _mirror(args: argparse.Namespace) -> int:
    """Pass after pass until Ctrl-C (or once): a line for each pass that copied something; a source that cannot be
    read is said and tried again at the next pass, the copy as it was."""
    from datetime import datetime

    import psycopg

    from amcompanion.catalog.durations import parse_duration
    from amcompanion.history.mirror import mirror

    every_ms = parse_duration(args.every)
    if not every_ms:
        print(f"error: --every: expected a duration such as 30s, got {args.every!r}", file=sys.stderr)
        return 2
    source = without_password(args.source)
    print(f"mirroring {source} into {args.to}" + ("" if args.once else f" every {args.every}"), file=sys.stderr)
    try:
        while True:
            try:
                done = mirror(args.source, str(args.to))
            except psycopg.Error as exc:
                print(f"error: cannot read {source}: {_first_line(exc)}", file=sys.stderr)
                if args.once:
                    return 1
            else:
                if done.total or args.once:
                    tables = ", ".join(f"{table} {count}" for table, count in done.copied.items() if count)
                    print(
                        f"{datetime.now():%H:%M:%S} copied {plural(done.total, 'row')}"
                        + (f" ({tables})" if tables else "")
                    )
            if args.once:
                return 0
            time.sleep(every_ms / 1000)
    except KeyboardInterrupt:
        return 0


def demo_command(args: argparse.Namespace) -> int:
    import asyncio
    import shutil
    import tempfile

    from amcompanion.catalog.diagnostics import CatalogError
    from amcompanion.demo.daemons import DaemonError
    from amcompanion.demo.drive import Undrivable
    from amcompanion.demo.run import DemoError, run
    from amcompanion.demo.stand_ins import Unsupported
    from amcompanion.validate import ToolMissing

    if not 1 <= args.speed <= 600:
        print(f"error: --speed: expected 1 to 600, got {args.speed}", file=sys.stderr)
        return 2
    if not args.rulesets.is_dir():
        print(
            f"error: {args.rulesets}/: no such catalog directory: name yours (amcompanion demo teams/payments), or "
            "run it in a clone of the amcompanion repository, where the bundled rulesets/ is",
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
        asyncio.run(run(args.rulesets, workdir.resolve(), args.speed, args.once, args.alert, sys.stdout))
    except CatalogError as exc:
        for diag in exc.diagnostics:
            print(diag, file=sys.stderr)
        return 1
    except (DemoError, DaemonError, Undrivable, Unsupported, ToolMissing, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
