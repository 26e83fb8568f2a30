"""The history database's schema: the receiver's tables and what the history pages need, as forward migrations.

Migrations are sqlite-utils `Migrations`: each runs once, in a transaction with its record in the
`_sqlite_migrations` table (the schema's version table). A new version of amcompanion adds migrations at the
end and never edits one that has shipped; a database migrated by a newer amcompanion (a migration this one does
not know) is refused rather than written to.
"""

import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from sqlite_utils import Database, Migrations

from amcompanion.history import rollups

if TYPE_CHECKING:
    from psycopg import Connection as PostgresConnection

MIGRATIONS = Migrations("amcompanion")
NAMES: list[str] = []  # in order; sqlite-utils keeps its list private


def migration(fn: Callable[[Database], None]) -> Callable[[Database], None]:
    NAMES.append(fn.__name__)
    return MIGRATIONS(name=fn.__name__)(fn)


# The first release's tables, as it created them (`IF NOT EXISTS`: databases made before the migrations table
# existed already have them).
RECEIVER_TABLES = (
    """CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    severity TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL,                 -- JSON object
    annotations TEXT NOT NULL,            -- JSON object
    policy TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'acknowledged', 'resolved')),
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    acked_at TEXT,
    acked_by TEXT,
    resolved_at TEXT,
    escalation_level INTEGER NOT NULL DEFAULT 0,  -- steps taken: 0 before the first
    repeats INTEGER NOT NULL DEFAULT 0,           -- repetitions of the last step so far
    first_notice_at TEXT NOT NULL,                -- when the receiver first heard of it: steps count from here
    next_step_at TEXT,                            -- when the next step comes due; NULL when none will
    generator_url TEXT NOT NULL DEFAULT '',
    group_key TEXT NOT NULL DEFAULT '',
    alertmanager_url TEXT NOT NULL DEFAULT '',
    silence_id TEXT,
    UNIQUE (fingerprint, starts_at)
)""",
    "CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status, starts_at)",
    "CREATE INDEX IF NOT EXISTS alerts_due ON alerts (next_step_at) WHERE next_step_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS alerts_by_name ON alerts (alertname, starts_at)",
    "CREATE INDEX IF NOT EXISTS alerts_by_severity ON alerts (severity, starts_at)",
    """CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    status TEXT NOT NULL,
    received_at TEXT NOT NULL,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    policy TEXT NOT NULL,
    UNIQUE (alert_id, status)
)""",
    """CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    kind TEXT NOT NULL CHECK (kind IN ('firing', 'resolved')),
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,             -- a contact name; '' for the channel's own audience (a group robot)
    step INTEGER NOT NULL,               -- the escalation step (1-based); 0 for resolve notices
    round INTEGER NOT NULL DEFAULT 0,    -- which repetition of the step
    attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'cancelled')),
    error TEXT,
    queued_at TEXT NOT NULL,
    sent_at TEXT,
    next_attempt_at TEXT NOT NULL,
    give_up_at TEXT NOT NULL,
    digest_id INTEGER,                   -- set when the message went out inside a digest (the first row's id)
    UNIQUE (alert_id, kind, step, round, channel, recipient)
)""",
    "CREATE INDEX IF NOT EXISTS notifications_due ON notifications (channel, next_attempt_at) WHERE status = 'queued'",
    "CREATE INDEX IF NOT EXISTS notifications_by_alert ON notifications (alert_id)",
    "CREATE INDEX IF NOT EXISTS notifications_by_channel ON notifications (channel, status)",
    """CREATE TABLE IF NOT EXISTS escalations (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    step INTEGER NOT NULL,
    from_level INTEGER NOT NULL,
    to_level INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS escalations_by_alert ON escalations (alert_id)",
    """CREATE TABLE IF NOT EXISTS acks (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    by TEXT NOT NULL,
    via TEXT NOT NULL CHECK (via IN ('link', 'api', 'phone', 'cli')),
    comment TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS acks_by_alert ON acks (alert_id)",
)
# The columns the receiver writes; what it reads back (for escalating, for messages), not the computed history
# columns that later migrations add.
ALERT_COLUMNS = (
    "id", "fingerprint", "alertname", "severity", "labels", "annotations", "policy", "status", "starts_at", "ends_at",
    "acked_at", "acked_by", "resolved_at", "escalation_level", "repeats", "first_notice_at", "next_step_at",
    "generator_url", "group_key", "alertmanager_url", "silence_id", "resolved_by",
)  # fmt: skip
DEFAULT_SLA = {"critical": (300, 1800), "warning": (900, 7200)}  # severity: (ack, resolve) targets in seconds


@migration
def m0001_receiver_tables(db: Database) -> None:
    for statement in RECEIVER_TABLES:
        db.execute(statement)


@migration
def m0002_history(db: Database) -> None:
    """What the history pages read, as columns (computed, stored only in the covering index that makes the pages
    fast at a million alerts), the SLA targets, and the `alert_times` view the pages are written against.

    The first release's indexes by name, by severity and by channel go: nothing in the receiver reads through them,
    and with them in place SQLite's planner took them for the history pages (then read every row from the table)
    instead of the covering index, which made those pages five times slower.
    """
    for column, expression in (
        ("service", "json_extract(labels, '$.service')"),
        ("ack_seconds", "(julianday(acked_at) - julianday(first_notice_at)) * 86400.0"),
        ("resolve_seconds", "(julianday(resolved_at) - julianday(starts_at)) * 86400.0"),
        # how long the page waited for an answer: until the ack, or until it resolved when nobody acknowledged
        ("wait_seconds", "(julianday(COALESCE(acked_at, resolved_at)) - julianday(first_notice_at)) * 86400.0"),
    ):
        db.execute(f"ALTER TABLE alerts ADD COLUMN {column} GENERATED ALWAYS AS ({expression}) VIRTUAL")
    db.execute(
        "ALTER TABLE notifications ADD COLUMN latency_seconds"
        " GENERATED ALWAYS AS ((julianday(sent_at) - julianday(queued_at)) * 86400.0) VIRTUAL"
    )
    for index in ("alerts_by_name", "alerts_by_severity", "notifications_by_channel"):
        db.execute(f"DROP INDEX IF EXISTS {index}")
    db["sla_targets"].create(
        {"severity": str, "ack_seconds": int, "resolve_seconds": int},
        pk="severity",
        not_null={"ack_seconds", "resolve_seconds"},
    )
    set_sla_targets(db.conn, DEFAULT_SLA)
    columns = [
        "starts_at", "severity", "service", "alertname", "policy", "acked_by", "ack_seconds", "resolve_seconds",
        "wait_seconds", "escalation_level", "repeats", "fingerprint",
    ]  # fmt: skip
    db.execute(f"CREATE VIEW alert_times AS SELECT id, {', '.join(columns)} FROM alerts")
    db["alerts"].create_index(columns, index_name="alerts_history")
    db["notifications"].create_index(
        ["queued_at", "channel", "status", "attempts", "latency_seconds"], index_name="notifications_history"
    )


@migration
def m0003_delivery_problems(db: Database) -> None:
    """Why a message went out with the default template (its own failed to render), and the failed pages found
    at once (`amcompanion alerts --failed`, the alerts' `failed` counts) without reading every delivery."""
    db.execute("ALTER TABLE notifications ADD COLUMN template_error TEXT")
    db.execute("CREATE INDEX notifications_failed ON notifications (alert_id) WHERE status = 'failed'")


ACK_VIAS = ("link", "api", "phone", "cli", "console", "chat")  # how an acknowledgement can come


@migration
def m0004_people_and_events(db: Database) -> None:
    """Who did what, and what happened in order: acks may come from the console (and chat buttons), so `acks.via`
    takes those; a manual resolve and escalation record their person; an escalation step records whom its
    schedules named (`oncall`, JSON), so figures per person stay true when rotations move; `events` is the
    ordered log the console's event stream serves, and resumes from with Last-Event-ID."""
    db.execute(
        f"""CREATE TABLE acks_new (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    by TEXT NOT NULL,
    via TEXT NOT NULL CHECK (via IN ({", ".join(f"'{via}'" for via in ACK_VIAS)})),
    comment TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
)"""
    )
    db.execute("INSERT INTO acks_new SELECT id, alert_id, by, via, comment, at FROM acks")
    db.execute("DROP TABLE acks")
    db.execute("ALTER TABLE acks_new RENAME TO acks")
    db.execute("CREATE INDEX acks_by_alert ON acks (alert_id)")
    db.execute("ALTER TABLE alerts ADD COLUMN resolved_by TEXT")
    db.execute("ALTER TABLE escalations ADD COLUMN by TEXT")
    db.execute("ALTER TABLE escalations ADD COLUMN oncall TEXT")
    db.execute(
        """CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    alert_id INTEGER REFERENCES alerts (id),
    at TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
)"""
    )
    db.execute("CREATE INDEX events_by_alert ON events (alert_id)")


NOTIFICATION_KINDS = ("firing", "resolved", "acknowledged")  # acknowledged: told to channels that sync acks
SHARED_WORK = (
    "ALTER TABLE notifications ADD COLUMN claimed_by TEXT",  # the receiver that tried it last
    "ALTER TABLE notifications ADD COLUMN lease_until TEXT",  # set while a receiver is sending it
    "CREATE TABLE rate_buckets (channel TEXT PRIMARY KEY, level REAL NOT NULL, at TEXT NOT NULL)",
    "CREATE TABLE done_once (key TEXT PRIMARY KEY, at TEXT NOT NULL)",
)


@migration
def m0005_acknowledged_notices(db: Database) -> None:
    """A channel that keeps an incident of its own (PagerDuty) is told when the alert is acknowledged here, so
    `notifications.kind` takes `acknowledged`. SQLite cannot alter a CHECK: the table is made again from its own
    definition, with its rows, generated columns and indexes as they were."""
    conn = db.conn
    table_sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'notifications'"
    ).fetchone()[0]
    index_sql = [
        row[0]
        for row in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'notifications' AND sql IS NOT NULL"
        )
    ]
    old_check = "CHECK (kind IN ('firing', 'resolved'))"
    assert old_check in table_sql, "notifications.kind is not as m0001 made it"
    kinds = ", ".join(f"'{kind}'" for kind in NOTIFICATION_KINDS)
    new_sql = table_sql.replace(old_check, f"CHECK (kind IN ({kinds}))", 1)
    new_sql = new_sql.replace("notifications", "notifications_new", 1)
    stored = [
        row[1] for row in conn.execute("PRAGMA table_xinfo(notifications)") if row[6] == 0
    ]  # hidden 0: not a generated column
    columns = ", ".join(stored)
    db.execute(new_sql)
    db.execute(f"INSERT INTO notifications_new ({columns}) SELECT {columns} FROM notifications")
    db.execute("DROP TABLE notifications")
    db.execute("ALTER TABLE notifications_new RENAME TO notifications")
    for statement in index_sql:
        db.execute(statement)


@migration
def m0006_shared_work(db: Database) -> None:
    """What several receivers on one database share: the message a receiver is sending is leased to it
    (`claimed_by`, `lease_until`: another takes it over once the lease runs out, as when its receiver died); a
    channel's rate limit is one bucket for all of them (`rate_buckets`); and what happens at a moment rather than
    for an alert (a schedule's hand-off) is done by one of them (`done_once`)."""
    for statement in SHARED_WORK:
        db.execute(statement)


# The covering index's columns as m0002 made them (m0002 keeps its own list: a shipped migration does not change).
HISTORY_INDEX = [
    "starts_at", "severity", "service", "alertname", "policy", "acked_by", "ack_seconds", "resolve_seconds",
    "wait_seconds", "escalation_level", "repeats", "fingerprint",
]  # fmt: skip


@migration
def m0007_drills_and_arrivals(db: Database) -> None:
    """Drills (`drill="true"`) marked on their row, so that the figures leave them out at index speed: `alerts.drill`
    (computed), held in the covering index, and `alert_times` made again as the real alerts only (drills test the
    paging, they say nothing of how an alert serves). And alerts counted by when they arrived (`first_notice_at`,
    when the receiver first heard of them) as well as by `startsAt`: an index on the arrival, for the volume page
    and the latest alerts (a notice about an alert that started last week arrives today)."""
    db.execute(
        "ALTER TABLE alerts ADD COLUMN drill"
        " GENERATED ALWAYS AS (COALESCE(json_extract(labels, '$.drill') = 'true', 0)) VIRTUAL"
    )
    db.execute("DROP VIEW alert_times")
    db.execute("DROP INDEX alerts_history")
    db.execute(f"CREATE VIEW alert_times AS SELECT id, {', '.join(HISTORY_INDEX)} FROM alerts WHERE drill = 0")
    db["alerts"].create_index([*HISTORY_INDEX, "drill"], index_name="alerts_history")
    db["alerts"].create_index(["first_notice_at", "severity", "drill"], index_name="alerts_by_arrival")


@migration
def m0008_rollups(db: Database) -> None:
    """The counts the history pages read (`rollups`: per figure, group, key and day) and the flapping page's counts
    (`flap_counts`), kept by triggers as rows are written, and counted here from the rows already there. A page over
    90 days of a million alerts then reads thousands of counts in order instead of sorting every alert (seconds).
    The deliveries' covering index goes: the deliveries page was its only reader (at a million alerts it is 177 MB,
    more than the counts and the flap counts together, and one index less for each delivery to keep up to date)."""
    rollups.install(db.conn)
    db.execute("DROP INDEX IF EXISTS notifications_history")


# PostgreSQL (several receivers on one database): the same tables, columns and constraints as the SQLite history has
# after the migrations above, without the computed columns and the view, which only the history pages read (they
# read a SQLite copy: `amcompanion history mirror`). Each step here follows its SQLite migration of the same name;
# a new migration adds to both lists.
POSTGRES_MIGRATIONS: dict[str, tuple[str, ...]] = {
    "m0001_receiver_tables": tuple(
        statement.replace("INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
        for statement in RECEIVER_TABLES
    ),
    "m0002_history": (
        "DROP INDEX IF EXISTS alerts_by_name",
        "DROP INDEX IF EXISTS alerts_by_severity",
        "DROP INDEX IF EXISTS notifications_by_channel",
        "CREATE TABLE sla_targets (severity TEXT PRIMARY KEY, ack_seconds INTEGER NOT NULL,"
        " resolve_seconds INTEGER NOT NULL)",
    ),
    "m0003_delivery_problems": (
        "ALTER TABLE notifications ADD COLUMN template_error TEXT",
        "CREATE INDEX notifications_failed ON notifications (alert_id) WHERE status = 'failed'",
    ),
    "m0004_people_and_events": (
        "ALTER TABLE acks DROP CONSTRAINT acks_via_check",
        f"ALTER TABLE acks ADD CONSTRAINT acks_via_check CHECK (via IN ({', '.join(repr(v) for v in ACK_VIAS)}))",
        "ALTER TABLE alerts ADD COLUMN resolved_by TEXT",
        "ALTER TABLE escalations ADD COLUMN by TEXT",
        "ALTER TABLE escalations ADD COLUMN oncall TEXT",
        "CREATE TABLE events (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, type TEXT NOT NULL,"
        " alert_id BIGINT REFERENCES alerts (id), at TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}')",
        "CREATE INDEX events_by_alert ON events (alert_id)",
    ),
    "m0005_acknowledged_notices": (
        "ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check",
        "ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check"
        f" CHECK (kind IN ({', '.join(repr(k) for k in NOTIFICATION_KINDS)}))",
    ),
    "m0006_shared_work": (
        *(statement.replace(" REAL ", " DOUBLE PRECISION ") for statement in SHARED_WORK),
        # Indexes that keep the claims cheap whatever the planner's statistics say (a storm fills the tables faster
        # than autovacuum analyzes them, and a claim planned for an empty table reads every queued row per row): the
        # due rows in the order they are claimed, the rows that wait for an earlier one, the alerts to step.
        "DROP INDEX notifications_due",
        "CREATE INDEX notifications_due ON notifications (channel, next_attempt_at, id) WHERE status = 'queued'",
        "CREATE INDEX notifications_queued_by_alert ON notifications (alert_id, channel, recipient, id)"
        " WHERE status = 'queued'",
        "CREATE INDEX alerts_firing_due ON alerts (next_step_at) WHERE next_step_at IS NOT NULL AND status = 'firing'",
        # every receiver listening hears of each commit that logged events: its event stream, deadlines and outbox
        "CREATE FUNCTION amcompanion_changed() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN PERFORM pg_notify('amcompanion', ''); RETURN NULL; END$$",
        "CREATE TRIGGER events_changed AFTER INSERT ON events FOR EACH STATEMENT"
        " EXECUTE FUNCTION amcompanion_changed()",
    ),
    "m0007_drills_and_arrivals": (),  # computed columns, the view and their indexes: SQLite's (the pages') only
    "m0008_rollups": (),  # the pages' counts: kept by the SQLite copy's triggers (`history mirror`)
}
assert list(POSTGRES_MIGRATIONS) == NAMES, "every migration has its PostgreSQL step"


def migrate_postgres(conn: "PostgresConnection") -> None:
    """Bring a PostgreSQL history to this version's schema, each step once, in a transaction; an advisory lock keeps
    two receivers starting together from migrating at once. A database migrated by a newer release is refused."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('amcompanion migrations'))")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS amcompanion_migrations (name TEXT PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        applied = [row[0] for row in conn.execute("SELECT name FROM amcompanion_migrations ORDER BY name")]
        unknown = [name for name in applied if name not in POSTGRES_MIGRATIONS]
        if unknown:
            raise NewerDatabase(
                f"the database was migrated by a newer amcompanion ({', '.join(unknown)}); this one cannot write to it"
            )
        for name, statements in POSTGRES_MIGRATIONS.items():
            if name in applied:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO amcompanion_migrations (name) VALUES (%s)", (name,))


def set_sla_targets(conn: sqlite3.Connection, targets: Mapping[str, tuple[int, int]]) -> None:
    """Make `sla_targets` hold exactly `targets` (severity: ack and resolve seconds), as the receiver's config
    (the catalog's `defaults.sla`) says."""
    kept = f" WHERE severity NOT IN ({', '.join('?' * len(targets))})" if targets else ""
    conn.execute(f"DELETE FROM sla_targets{kept}", list(targets))
    conn.executemany(  # an upsert: receivers starting together each write the same rows
        "INSERT INTO sla_targets (severity, ack_seconds, resolve_seconds) VALUES (?, ?, ?) ON CONFLICT (severity)"
        " DO UPDATE SET ack_seconds = excluded.ack_seconds, resolve_seconds = excluded.resolve_seconds",
        [(severity, ack, resolve) for severity, (ack, resolve) in targets.items()],
    )


class NewerDatabase(Exception):
    """Migrations this release does not know: a newer amcompanion wrote the file (go back via a backup)."""


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to this version's schema."""
    db = Database(conn)
    unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in NAMES]
    if unknown:
        raise NewerDatabase(
            f"the database was migrated by a newer amcompanion ({', '.join(unknown)}); this one cannot write to it"
        )
    MIGRATIONS.apply(db)
