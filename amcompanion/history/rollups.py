"""Counts the history pages read instead of every alert: kept up to date by SQLite triggers as rows are written.

A page over the whole history of a million alerts spent its time sorting them (SQLite sorts every row of a GROUP BY:
about a microsecond a row), so a page of 90 days took seconds. Each figure here is counted per day as the rows come,
by `(figure, grp, key, day)`: a group (a severity, a service, a channel), a key (a time to acknowledge, rounded to the
unit a page shows; a status) and the day the page's period is told by. The table's primary key is that order, so a
page adds up its figure's days from `since` on group by group, key by key, without sorting anything; a percentile
is read off the running count of its keys.

Every writer keeps the counts, since they are triggers: the receiver (SQLite), `history mirror` (a PostgreSQL
history's copy), `history seed`, `history prune` and any SQLite client. A row's change moves its count from the old
key to the new one (an acknowledgement counts its time to acknowledge, and moves the alert to "acknowledged" among
the noisiest), a delete takes it away, and counts that reach zero stay as zeros (the pages skip them). Each table
has one trigger a kind of write, and an alert is counted in as few figures as its pages need: about 60-100 us more
of the receiver's time per alert written (docs/benchmarks.md, "Over the whole history").

Times are counted to the unit the pages show them in (`words.duration_words`): whole seconds under a minute (rounded
down, as the pages always have), the nearest minute under a day, the nearest hour beyond; delivery latencies to
10 ms under 10 s, then to 100 ms and the durations' units. Rounding keeps the order of values, so a median of
rounded values is the median rounded: the figure a page shows is the one an exact count would give.

Series that flap are found the same way: `flap_counts` holds, for each real alert, how many episodes its series had
in the 4 hours up to its start (in the flapping page's own arithmetic), kept by triggers in both directions (an
episode written late counts in the later episodes' windows too). The page reads the episodes over its threshold,
and windows again only where a window reaches before its `since`.
"""

import re
import sqlite3
from dataclasses import dataclass

# The computed columns a figure's expressions may use, and the columns written that they are computed from
COMPUTED = {
    "service": ("labels",),
    "drill": ("labels",),
    "ack_seconds": ("acked_at", "first_notice_at"),
    "resolve_seconds": ("resolved_at", "starts_at"),
    "latency_seconds": ("sent_at", "queued_at"),
}


def rounded(value: str, steps: tuple[tuple[float, float, bool], ...], top: float) -> str:
    """SQL for `value` rounded by magnitude: below each limit to its step (nearest, or down when `down`), beyond the
    last to `top` (nearest)."""
    cases = "".join(
        f" WHEN {value} < {limit} THEN CAST({value} / {step}{'' if down else ' + 0.5'} AS INTEGER) * {step}"
        for limit, step, down in steps
    )
    return f"CASE{cases} ELSE CAST({value} / {top} + 0.5 AS INTEGER) * {top} END"


# seconds: whole under a minute (down: the pages' whole seconds), minutes under a day, hours beyond
DURATION_STEPS = ((60, 1, True), (86400, 60, False))
LATENCY_STEPS = ((10, 0.01, True), (60, 0.1, True), (86400, 60, False))


def duration_key(value: str) -> str:
    return rounded(value, DURATION_STEPS, 3600)


def latency_key(value: str) -> str:
    return rounded(value, LATENCY_STEPS, 3600)


@dataclass(frozen=True)
class Figure:
    """Counts of `table`'s rows that match `where`, by `grp` and `key` per `day` (SQL on one row; `total` adds up a
    number as well)."""

    name: str
    table: str
    day: str
    grp: str
    key: str
    where: str = "1"
    total: str = "0"

    def depends_on(self, columns: list[str]) -> list[str]:
        """The written columns of `columns` whose change can change this figure's count."""
        used = set(re.findall(r"[a-z_]+", " ".join((self.day, self.grp, self.key, self.where, self.total))))
        for column, sources in COMPUTED.items():
            if column in used:
                used.update(sources)
        return [column for column in columns if column in used]


KIND = "CASE WHEN drill THEN 'drill' ELSE severity END"  # a drill is counted apart from the severities
WEEK = "CAST(julianday(starts_at) + 0.5 AS INTEGER) / 7 * 7"  # the Julian day number of the week's Monday
STARTED = "substr(starts_at, 1, 10)"
QUEUED = "substr(queued_at, 1, 10)"
NAME_AND_SERVICE = "json_array(alertname, service)"
REAL = "drill = 0"  # drills say nothing of how an alert serves
# the MTTA and MTTR pages' groups, in the order `alerts` holds them; a person's alerts are the ones they acknowledged
GROUPS = {"severity": "severity", "service": "COALESCE(service, '(none)')", "week": WEEK}
PEOPLE = {"person": "acked_by"}
FIGURES = (
    # the alerts per severity, service and week (one count an alert, a few thousand groups: a page adds them up by
    # the part it shows), and their times to acknowledge and to resolve, counted once they have them
    Figure("alerts", "alerts", STARTED, f"json_array({', '.join(GROUPS.values())})", "0", REAL),
    *(
        Figure(
            f"{side}_by_{name}",
            "alerts",
            STARTED,
            grp,
            duration_key(value),
            f"{REAL} AND {value} IS NOT NULL" + (f" AND {grp} IS NOT NULL" if name in PEOPLE else ""),
        )
        for name, grp in {**GROUPS, **PEOPLE}.items()
        for side, value in (("ack", "ack_seconds"), ("resolve", "resolve_seconds"))
    ),
    # the noisiest alerts: fired, acknowledged (key bit 2), resolved (bit 1) and their firing time; their series
    Figure(
        "fired",
        "alerts",
        STARTED,
        NAME_AND_SERVICE,
        "(ack_seconds IS NOT NULL) * 2 + (resolve_seconds IS NOT NULL)",
        REAL,
        "COALESCE(resolve_seconds, 0)",
    ),
    Figure("series", "alerts", STARTED, NAME_AND_SERVICE, "fingerprint", REAL),
    # each series' firings and how many were acknowledged (the flapping page's, for the series it shows)
    Figure("by_series", "alerts", STARTED, "fingerprint", "ack_seconds IS NOT NULL", REAL),
    # pages nobody acknowledged, by alert: still firing or not, and how far they escalated (the severities that page,
    # those with SLA targets, are picked by the page: the targets may change)
    Figure(
        "unacknowledged",
        "alerts",
        STARTED,
        "json_array(alertname, service, severity)",
        "json_array(resolve_seconds IS NULL, escalation_level)",
        f"{REAL} AND ack_seconds IS NULL",
    ),
    # escalations: how far each paged alert went, and whether someone answered
    Figure(
        "paged",
        "alerts",
        STARTED,
        "policy",
        "json_array(escalation_level, repeats, ack_seconds IS NOT NULL)",
        f"{REAL} AND escalation_level > 0",
    ),
    # volume: by the hour an alert started in, and the hour it arrived in (drills too, as drills)
    Figure("started", "alerts", STARTED, "substr(starts_at, 1, 13)", KIND),
    Figure("arrived", "alerts", "substr(first_notice_at, 1, 10)", "substr(first_notice_at, 1, 13)", KIND),
    # deliveries per channel: latency, status, tries
    Figure(
        "latency", "notifications", QUEUED, "channel", latency_key("latency_seconds"), "latency_seconds IS NOT NULL"
    ),
    Figure("status", "notifications", QUEUED, "channel", "status"),
    Figure("tries", "notifications", QUEUED, "channel", "attempts"),
)

TABLE = """CREATE TABLE rollups (
    figure TEXT NOT NULL,
    grp NOT NULL,
    key NOT NULL,
    day TEXT NOT NULL,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    PRIMARY KEY (figure, grp, key, day)
) WITHOUT ROWID"""
UPSERT = (
    " WHERE true ON CONFLICT (figure, grp, key, day) DO UPDATE SET n = n + excluded.n, total = total + excluded.total"
)


def _known(expression: str) -> str:
    """A group or key that is never NULL: a time SQLite cannot read (the year 9999's last moment, a day later) counts
    under '', rather than making the receiver's write fail."""
    return f"COALESCE({expression}, '')"


def _row(figure: Figure, alias: str, columns: set[str], when: str = "1") -> str:
    """`figure`'s columns for one row in a trigger: NEW (counted in) or OLD (taken out), when `when` holds. The
    expressions' words that are `columns` of the table become the row's (NEW.severity), but in quotes and function
    names."""

    def of(expression: str) -> str:
        return re.sub(
            r"'[^']*'|\b([a-z_]+)\b(?!\s*\()",
            lambda m: f"{alias}.{m.group(1)}" if m.group(1) in columns else m.group(0),
            expression,
        )

    sign = -1 if alias == "OLD" else 1
    return (
        f"SELECT '{figure.name}', {_known(of(figure.grp))}, {_known(of(figure.key))}, {of(figure.day)}, {sign},"
        f" {sign} * COALESCE({of(figure.total)}, 0) WHERE ({when}) AND {of(figure.where)}"
    )


def install(conn: sqlite3.Connection) -> None:
    """Make the counts and their triggers, counting the rows already there (one GROUP BY a figure)."""
    conn.execute(TABLE)
    for table in ("alerts", "notifications"):
        _install_triggers(conn, table)
        for figure in FIGURES:
            if figure.table == table:
                conn.execute(f"INSERT INTO rollups {from_rows(figure)}")
    _install_flap_counts(conn)


def _changed(names: list[str]) -> str:
    return " OR ".join(f"OLD.{name} IS NOT NEW.{name}" for name in names)


def _install_triggers(conn: sqlite3.Connection, table: str) -> None:
    """One trigger a kind of write (insert, update, delete) for all of `table`'s figures: one statement per write,
    not one per figure. An update moves only the figures whose columns changed."""
    figures = [figure for figure in FIGURES if figure.table == table]
    info = conn.execute(f"PRAGMA table_xinfo({table})").fetchall()
    columns = {row[1] for row in info}
    written = [row[1] for row in info if row[6] == 0]  # hidden 0: not computed
    depends = {figure.name: figure.depends_on(written) for figure in figures}

    def rows(alias: str, moved: bool = False) -> str:
        return " UNION ALL ".join(
            _row(figure, alias, columns, _changed(depends[figure.name]) if moved else "1") for figure in figures
        )

    read = [name for name in written if any(name in names for names in depends.values())]
    conn.execute(
        f"CREATE TRIGGER rollups_{table}_insert AFTER INSERT ON {table} BEGIN"
        f" INSERT INTO rollups SELECT * FROM ({rows('NEW')}){UPSERT}; END"
    )
    conn.execute(
        f"CREATE TRIGGER rollups_{table}_delete AFTER DELETE ON {table} BEGIN"
        f" INSERT INTO rollups SELECT * FROM ({rows('OLD')}){UPSERT}; END"
    )
    conn.execute(
        f"CREATE TRIGGER rollups_{table}_update AFTER UPDATE OF {', '.join(read)} ON {table} WHEN {_changed(read)}"
        f" BEGIN INSERT INTO rollups SELECT * FROM ({rows('OLD', True)} UNION ALL {rows('NEW', True)}){UPSERT}; END"
    )


def from_rows(figure: Figure) -> str:
    """SQL: `figure`'s counts as the rows there are now give them (what the triggers keep)."""
    return (
        f"SELECT '{figure.name}' AS figure, {_known(figure.grp)} AS grp, {_known(figure.key)} AS key,"
        f" {figure.day} AS day, COUNT(*) AS n, TOTAL({figure.total}) AS total FROM {figure.table}"
        f" WHERE {figure.where} GROUP BY 2, 3, 4"
    )


def flap_counts_from_rows() -> str:
    """SQL: `flap_counts` as the rows there are now give it (what the triggers keep)."""
    earlier = f"(SELECT COUNT(*) {_around('a', True)} AND {in_flap_window('s.starts_at', 'a.starts_at')})"
    return f"SELECT a.id, a.fingerprint, a.starts_at, {earlier} FROM alerts a WHERE a.drill = 0"


# The flapping page's window (4 hours by default) as it is written there: the start in units of the window, so that a
# row's window is the rows up to one unit earlier (RANGE 1 PRECEDING). The same float arithmetic, so the same rows.
FLAP_HOURS = 4
FLAP_WINDOW_S = FLAP_HOURS * 3600 + 1  # and a second: the text range the index narrows the rows to first


def flap_units(start: str, hours: str = f"{FLAP_HOURS}.0") -> str:
    return f"julianday({start}) * 24.0 / {hours}"


def _around(row: str, earlier: bool) -> str:
    """The same series' other real episodes that start up to the window before `row` (`earlier`: those in its window)
    or after it (those whose windows it is in), found by the text of their start a second wider than the window."""
    bound = "strftime('%Y-%m-%dT%H:%M:%fZ', {row}.starts_at, '{seconds} seconds')"
    back, ahead = (-FLAP_WINDOW_S, 1) if earlier else (-1, FLAP_WINDOW_S)
    low, high = (bound.format(row=row, seconds=f"{seconds:+d}") for seconds in (back, ahead))
    series = f"s.fingerprint = {row}.fingerprint AND s.drill = 0"
    return f"FROM alerts s WHERE {series} AND s.starts_at BETWEEN {low} AND {high}"


def in_flap_window(earlier: str, later: str) -> str:
    """SQL: the episode starting at `earlier` is in the window of the one starting at `later`."""
    return f"{flap_units(earlier)} >= {flap_units(later)} - 1 AND {flap_units(earlier)} <= {flap_units(later)}"


def _flap_statements(row: str) -> str:
    """A trigger's statements that count the episode `row` (NEW) into its series' windows, or take it out (OLD)."""
    step = "+" if row == "NEW" else "-"
    others = (
        f"UPDATE flap_counts SET firings = firings {step} 1 WHERE {row}.drill = 0 AND alert_id IN (SELECT s.id"
        f" {_around(row, False)} AND s.id <> {row}.id AND {in_flap_window(f'{row}.starts_at', 's.starts_at')});"
    )
    if row == "OLD":
        return f"DELETE FROM flap_counts WHERE alert_id = OLD.id; {others}"
    own = (
        "INSERT INTO flap_counts SELECT NEW.id, NEW.fingerprint, NEW.starts_at, (SELECT COUNT(*)"
        f" {_around(row, True)} AND {in_flap_window('s.starts_at', 'NEW.starts_at')}) WHERE NEW.drill = 0;"
    )
    return f"{own} {others}"


def _install_flap_counts(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE flap_counts (alert_id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, starts_at TEXT NOT NULL,"
        " firings INTEGER NOT NULL)"
    )
    conn.execute(f"INSERT INTO flap_counts {flap_counts_from_rows()}")
    conn.execute("CREATE INDEX flap_counts_by_firings ON flap_counts (firings, starts_at, fingerprint)")
    conn.execute(f"CREATE TRIGGER flap_counts_insert AFTER INSERT ON alerts BEGIN {_flap_statements('NEW')} END")
    conn.execute(f"CREATE TRIGGER flap_counts_delete AFTER DELETE ON alerts BEGIN {_flap_statements('OLD')} END")
    # an episode's series, start and drill label never change in what the receiver writes; if they do, it moves
    conn.execute(
        "CREATE TRIGGER flap_counts_update AFTER UPDATE OF fingerprint, starts_at, labels ON alerts WHEN"
        " OLD.fingerprint IS NOT NEW.fingerprint OR OLD.starts_at IS NOT NEW.starts_at OR OLD.drill IS NOT NEW.drill"
        f" BEGIN {_flap_statements('OLD')} {_flap_statements('NEW')} END"
    )
