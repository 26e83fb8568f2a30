"""Synthetic alert history for the demo, the benchmark and the tests: shaped like a real team's, not uniform noise.

What it contains, so that every history page has something to show:
* a daily rhythm (more alerts in working hours, when deploys happen) over `days` days up to `now`;
* services with their own alerts; mostly warnings, some critical, some info;
* storms: now and then one service's alert fires on dozens of instances within minutes;
* flapping alerts: a few series that fire and resolve again and again within hours, rarely acknowledged;
* acknowledgements by four people who answer at different speeds, by link, API, phone or CLI, some of them
  late enough to break the SLA targets; a share of the alerts is never acknowledged;
* escalations for alerts nobody acknowledges in time (the last step repeating), and deliveries through
  several channels, a few of them retried and a few failed;
* a handful of alerts still firing at `now`.

The same arguments give the same database (one `random.Random(seed)`).
"""

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from amcompanion.history.schema import migrate
from amcompanion.receiver.timeutil import iso

SERVICES = {
    "checkout": ["HighErrorRate", "HighLatency", "PaymentGatewayTimeouts"],
    "payments": ["HighErrorRate", "SettlementLag", "FraudCheckSlow"],
    "search": ["HighLatency", "IndexStale", "ShardUnassigned"],
    "database": ["ReplicationLag", "DiskFull", "TooManyConnections", "SlowQueries"],
    "kubernetes": ["PodCrashLooping", "NodeNotReady", "PVCAlmostFull"],
    "auth": ["LoginFailures", "TokenIssuerDown"],
    "edge": ["CertificateExpiring", "TargetDown", "High5xxAtEdge"],
    "queue": ["QueueBacklog", "ConsumerLag"],
}
POLICIES = {
    "checkout": "payments-oncall",
    "payments": "payments-oncall",
    "database": "db-oncall",
}  # the rest: infra-oncall
CHANNELS = {  # per policy, the channels of each step
    "payments-oncall": [["ops-wecom"], ["sms", "sre-telegram"], ["voice", "ops-dingtalk"]],
    "db-oncall": [["ops-feishu"], ["sms", "mail"], ["voice"]],
    "infra-oncall": [["ops-dingtalk"], ["sms", "mail"], ["voice", "ops-feishu"]],
}
STEP_AFTER_S = [0, 600, 1200]  # when each escalation step falls due after the first notice
REPEAT_EVERY_S, REPEAT_TIMES = 1800, 2  # then the last step repeats, every 30 minutes, twice at most
PEOPLE = {"alice": 150.0, "bob": 300.0, "carol": 480.0, "dave": 900.0}  # median seconds to acknowledge
VIA = ["link", "link", "link", "api", "phone", "cli"]
SEVERITIES = [("warning", 0.6), ("critical", 0.22), ("info", 0.18)]
ACKED_SHARE = {"critical": 0.92, "warning": 0.7, "info": 0.15}
MEDIAN_RESOLVE_S = {"critical": 1500.0, "warning": 3600.0, "info": 7200.0}
HOUR_WEIGHTS = [0.35 + 0.65 * max(0.0, math.sin((h - 6) / 14 * math.pi)) for h in range(24)]  # peaks mid-afternoon
FAILURES = [
    "rate limited (errcode 130101), gave up after 6 tries",
    "no answer within 10 s",
    "HTTP 502 from the service, gave up after 7 tries",
    "contact has no phone",
]


@dataclass
class Rows:
    """One batch of rows, per table."""

    alerts: list[dict] = field(default_factory=list)
    alert_events: list[dict] = field(default_factory=list)
    notifications: list[dict] = field(default_factory=list)
    escalations: list[dict] = field(default_factory=list)
    acks: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.alerts)


@dataclass
class Episode:
    """One firing episode before it becomes rows: when it started, and how it ended."""

    service: str
    alertname: str
    severity: str
    instance: str
    starts: datetime
    resolve_s: float | None  # None: still firing
    ack_s: float | None = None  # after the first notice
    acked_by: str = ""
    flapping: bool = False


class Generator:
    def __init__(self, now: datetime, days: int, seed: int):
        self.now = now
        self.days = days
        self.random = random.Random(seed)
        self.next_id = 1
        self.flappers = [  # (service, alertname, instance) series that flap
            (service, self.random.choice(names), f"{service}-{self.random.randrange(1, 40):02d}")
            for service, names in self.random.sample(sorted(SERVICES.items()), 3)
        ]

    # -- episodes ---------------------------------------------------------------------------------
    def start_time(self) -> datetime:
        day = self.random.randrange(self.days)
        hour = self.random.choices(range(24), HOUR_WEIGHTS)[0]
        moment = self.now - timedelta(days=day)
        moment = moment.replace(hour=hour, minute=0, second=0, microsecond=0)
        moment += timedelta(seconds=self.random.uniform(0, 3600))
        return min(moment, self.now - timedelta(seconds=self.random.uniform(60, 7200)))

    def severity(self) -> str:
        return self.random.choices([s for s, _ in SEVERITIES], [w for _, w in SEVERITIES])[0]

    def episodes(self, count: int) -> Iterator[Episode]:
        made = 0
        while made < count:
            roll = self.random.random()
            if roll < 0.0005:
                batch = self.storm(count - made)
            elif roll < 0.0035:
                batch = self.flaps(count - made)
            else:
                service = self.random.choice(list(SERVICES))
                batch = [self.episode(service, self.random.choice(SERVICES[service]), self.start_time())]
            made += len(batch)
            yield from batch

    def episode(self, service: str, alertname: str, starts: datetime, instance: str = "") -> Episode:
        severity = self.severity()
        resolve_s = self.random.lognormvariate(math.log(MEDIAN_RESOLVE_S[severity]), 0.9)
        if starts + timedelta(seconds=resolve_s) > self.now:
            resolve_s = None  # still firing
        episode = Episode(
            service, alertname, severity, instance or f"{service}-{self.random.randrange(1, 40):02d}", starts, resolve_s
        )
        if self.random.random() < ACKED_SHARE[severity]:
            person = self.random.choice(list(PEOPLE))
            ack_s = self.random.lognormvariate(math.log(PEOPLE[person] * (0.6 if severity == "critical" else 1)), 0.8)
            ends = resolve_s if resolve_s is not None else (self.now - starts).total_seconds()
            if ack_s < ends:
                episode.ack_s, episode.acked_by = ack_s, person
        return episode

    def storm(self, room: int) -> list[Episode]:
        """One alert on many instances of a service within minutes (a failed deploy, a network split)."""
        service = self.random.choice(list(SERVICES))
        alertname = self.random.choice(SERVICES[service])
        starts = self.start_time()
        size = min(room, self.random.randrange(40, 200))
        return [
            self.episode(
                service, alertname, starts + timedelta(seconds=self.random.uniform(0, 300)), f"{service}-{i:03d}"
            )
            for i in range(size)
        ]

    def flaps(self, room: int) -> list[Episode]:
        """A series that fires and resolves again and again within a few hours."""
        service, alertname, instance = self.random.choice(self.flappers)
        moment = self.start_time()
        out = []
        for _ in range(min(room, self.random.randrange(6, 16))):
            episode = self.episode(service, alertname, moment, instance)
            episode.flapping = True
            episode.resolve_s = self.random.uniform(60, 420)
            episode.ack_s = None if self.random.random() < 0.9 else episode.ack_s
            episode.acked_by = episode.acked_by if episode.ack_s is not None else ""
            if moment + timedelta(seconds=episode.resolve_s) > self.now:
                break
            out.append(episode)
            moment += timedelta(seconds=episode.resolve_s + self.random.uniform(120, 900))
        return out or [self.episode(service, alertname, self.start_time(), instance)]

    # -- rows --------------------------------------------------------------------------------------
    def rows(self, episode: Episode, out: Rows) -> None:
        alert_id = self.next_id
        self.next_id += 1
        r = self.random
        notice = episode.starts + timedelta(seconds=r.uniform(0, 30) if episode.severity != "critical" else 0)
        acked_at = notice + timedelta(seconds=episode.ack_s) if episode.ack_s is not None else None
        resolved_at = episode.starts + timedelta(seconds=episode.resolve_s) if episode.resolve_s is not None else None
        policy = POLICIES.get(episode.service, "infra-oncall")
        labels = {
            "alertname": episode.alertname,
            "severity": episode.severity,
            "service": episode.service,
            "instance": episode.instance,
            "cluster": "prod",
        }
        series = f"{episode.service}\0{episode.alertname}\0{episode.instance}".encode()
        fingerprint = hashlib.blake2b(series, digest_size=8).hexdigest()
        status = "resolved" if resolved_at else ("acknowledged" if acked_at else "firing")
        # steps taken: the first at once, later ones only while nobody has acknowledged or it resolved
        ended = min(t for t in (acked_at, resolved_at, self.now) if t is not None)
        steps = [s for s, after in enumerate(STEP_AFTER_S) if notice + timedelta(seconds=after) <= ended or s == 0]
        if episode.severity == "info":
            steps = []  # info alerts are recorded, not paged
        last_step_at = notice + timedelta(seconds=STEP_AFTER_S[-1])
        rounds = [
            k for k in range(1, REPEAT_TIMES + 1)
            if len(steps) == len(STEP_AFTER_S) and last_step_at + timedelta(seconds=k * REPEAT_EVERY_S) <= ended
        ]  # fmt: skip
        out.alerts.append(
            {
                "id": alert_id,
                "fingerprint": fingerprint,
                "alertname": episode.alertname,
                "severity": episode.severity,
                "labels": json.dumps(labels, sort_keys=True),
                "annotations": json.dumps({"summary": f"{episode.alertname} on {episode.instance}"}),
                "policy": policy,
                "status": status,
                "starts_at": iso(episode.starts),
                "ends_at": iso(resolved_at) if resolved_at else None,
                "acked_at": iso(acked_at) if acked_at else None,
                "acked_by": episode.acked_by or None,
                "resolved_at": iso(resolved_at) if resolved_at else None,
                "escalation_level": len(steps),
                "repeats": len(rounds),
                "first_notice_at": iso(notice),
                "group_key": f'{{}}:{{alertname="{episode.alertname}",service="{episode.service}"}}',
            }
        )
        out.alert_events.append(self.event(alert_id, "firing", notice, policy))
        if resolved_at:
            out.alert_events.append(self.event(alert_id, "resolved", resolved_at, policy))
        for step in steps:
            at = notice + timedelta(seconds=STEP_AFTER_S[step])
            out.escalations.append(
                {"alert_id": alert_id, "step": step + 1, "from_level": step, "to_level": step + 1, "reason": "deadline",
                 "at": iso(at)}
            )  # fmt: skip
            for channel in CHANNELS[policy][step]:
                out.notifications.append(self.notification(alert_id, "firing", step + 1, channel, at))
        for k in rounds:
            at = last_step_at + timedelta(seconds=k * REPEAT_EVERY_S)
            last = len(STEP_AFTER_S)
            out.escalations.append(
                {"alert_id": alert_id, "step": last, "from_level": last, "to_level": last, "reason": "repeat",
                 "at": iso(at)}
            )  # fmt: skip
            for channel in CHANNELS[policy][-1]:
                out.notifications.append(self.notification(alert_id, "firing", last, channel, at, k))
        if resolved_at and len(steps) > 1:  # on_resolve: those who were paged hear it is over
            out.notifications.append(self.notification(alert_id, "resolved", 0, CHANNELS[policy][0][0], resolved_at))
        if acked_at:
            out.acks.append(
                {"alert_id": alert_id, "by": episode.acked_by, "via": r.choice(VIA), "comment": "", "at": iso(acked_at)}
            )

    @staticmethod
    def event(alert_id: int, status: str, at: datetime, policy: str) -> dict:
        return {
            "alert_id": alert_id,
            "status": status,
            "received_at": iso(at),
            "group_key": "",
            "receiver": policy,
            "policy": policy,
        }

    def notification(
        self, alert_id: int, kind: str, step: int, channel: str, queued: datetime, round_: int = 0
    ) -> dict:
        r = self.random
        failed = r.random() < 0.025
        attempts = 1 if r.random() < 0.9 else r.randrange(2, 5)
        if failed:
            attempts = r.randrange(4, 8)
        latency = r.lognormvariate(math.log(0.4), 0.7) + (attempts - 1) * 2 ** (attempts - 1)
        recipient = "" if channel.startswith(("ops-", "sre-")) else r.choice(list(PEOPLE))
        return {
            "alert_id": alert_id,
            "kind": kind,
            "channel": channel,
            "recipient": recipient,
            "step": step,
            "round": round_,
            "attempts": attempts,
            "status": "failed" if failed else "sent",
            "error": r.choice(FAILURES) if failed else None,
            "queued_at": iso(queued),
            "sent_at": None if failed else iso(queued + timedelta(seconds=latency)),
            "next_attempt_at": iso(queued + timedelta(seconds=latency)),
            "give_up_at": iso(queued + timedelta(hours=1)),
        }


def seed(
    path: Path,
    alerts: int,
    days: int = 90,
    now: datetime | None = None,
    seed_value: int = 1,
    batch: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Append `alerts` synthetic alerts (with their events, escalations, deliveries and acks) to the database at
    `path`, creating it if needed; return the number written."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    db = Database(path)
    db.conn.execute("PRAGMA journal_mode = WAL")
    db.conn.execute("PRAGMA synchronous = NORMAL")  # a seed is rebuilt, not recovered
    db.conn.execute("PRAGMA temp_store = MEMORY")  # the counts' triggers' statement journals (receiver.db.connect)
    migrate(db.conn)
    generator = Generator(now, days, seed_value)
    (last_id,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM alerts").fetchone()
    generator.next_id = last_id + 1
    written = 0
    rows = Rows()
    for episode in generator.episodes(alerts):
        generator.rows(episode, rows)
        if len(rows) >= batch:
            written += _write(db, rows)
            rows = Rows()
            if progress:
                progress(written)
    written += _write(db, rows)
    if progress:
        progress(written)
    db.conn.execute("ANALYZE")  # the planner's statistics: the pages' covering indexes are then its choice
    db.close()
    return written


def _write(db: Database, rows: Rows) -> int:
    with db.atomic():
        for table in ("alerts", "alert_events", "notifications", "escalations", "acks"):
            records = getattr(rows, table)
            if records:
                db[table].insert_all(records, batch_size=1000)
    return len(rows)
