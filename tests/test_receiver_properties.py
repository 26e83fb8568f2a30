"""Property-based tests (hypothesis): the payload parser and the escalation state machine."""

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from amcompanion.catalog.model import NotifyTarget, Origin, Policy, Step
from amcompanion.receiver.config import ReceiverConfig
from amcompanion.receiver.db import migrate
from amcompanion.receiver.escalation import next_due
from amcompanion.receiver.payload import PayloadError, parse_notification
from amcompanion.receiver.store import Store
from amcompanion.receiver.timeutil import iso
from tests.receiver_support import payload

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = ["version", "status", "receiver", "groupKey", "alerts", "externalURL", "truncatedAlerts"]
ALERT_FIELDS = ["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint", "generatorURL"]


@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_is_parsed_or_refused_with_a_4xx(body: bytes) -> None:
    try:
        parse_notification(body)
    except PayloadError as exc:
        assert exc.status in (400, 422) and exc.message


@given(st.sampled_from(FIELDS), json_values, st.sampled_from(ALERT_FIELDS), json_values)
def test_a_real_payload_with_any_field_replaced_is_parsed_or_refused_naming_the_field(
    field: str, value: object, alert_field: str, alert_value: object
) -> None:
    for body, path in (
        ({**payload("firing"), field: value}, field),
        (
            {**payload("firing"), "alerts": [{**payload("firing")["alerts"][0], alert_field: alert_value}]},
            f"alerts[0].{alert_field}",
        ),
    ):
        try:
            note = parse_notification(json.dumps(body).encode())
        except PayloadError as exc:
            assert exc.status == 422
            if path == "version":
                assert exc.message.startswith("unsupported payload version")
            else:  # the message starts with the path of the field that was replaced
                assert exc.message.startswith(path), (path, exc.message)
        else:
            assert note.alerts and all(a.fingerprint and a.starts_at for a in note.alerts)


@given(
    st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(max_size=20), max_size=5),
)
def test_valid_alerts_keep_their_identity_labels_and_time(fingerprint: str, starts: datetime, labels: dict) -> None:
    body = payload("firing")
    body["alerts"][0].update(
        fingerprint=fingerprint,
        startsAt=starts.isoformat().replace("+00:00", "Z"),
        labels={**labels, "alertname": "X"},
    )
    (alert,) = parse_notification(json.dumps(body).encode()).alerts
    assert alert.fingerprint == fingerprint and alert.labels == {**labels, "alertname": "X"}
    assert alert.starts_at == iso(starts) and alert.ends_at is None


# -- the escalation state machine ------------------------------------------------------------------------
policies = st.builds(
    lambda afters, every, times: Policy(
        "p",
        Origin("f", ()),
        [Step(ms, [NotifyTarget("ops", [])]) for ms in sorted(afters)],
        every,
        times if every else 0,
        "notify_previous",
    ),
    st.lists(st.integers(0, 3600).map(lambda s: s * 1000), min_size=1, max_size=4),
    st.none() | st.integers(1, 3600).map(lambda s: s * 1000),
    st.integers(0, 3),
)


def _deadlines(policy: Policy, start: datetime) -> list[tuple[int, int, datetime]]:
    out, level, repeats = [], 0, 0
    while (due := next_due(policy, start, level, repeats)) is not None:
        out.append((due.step, due.round, due.at))
        level, repeats = due.step, due.round
    return out


@settings(max_examples=150, deadline=None)
@given(policies, st.lists(st.integers(0, 4 * 3600), min_size=1, max_size=8), st.booleans())
def test_each_step_fires_once_at_its_deadline_and_an_ack_stops_everything(
    policy: Policy, checks: list[int], ack_midway: bool
) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    config = ReceiverConfig("https://x", None, ["critical"], {}, {"ops": {"type": "webhook"}}, {"p": policy})
    store = Store(config)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    body = payload("firing")
    store.ingest(conn, "p", parse_notification(json.dumps(body).encode()), start)
    deadlines = _deadlines(policy, start)
    acked_at = None
    for i, seconds in enumerate(sorted(checks)):
        now = start + timedelta(seconds=seconds)
        store.escalate_due(conn, now)
        if ack_midway and i == len(checks) // 2:  # right after this check's steps: nothing later fires
            Store.ack(conn, 1, "alice", "api", "", now)
            acked_at = now
        taken = [(r["step"], r["reason"]) for r in conn.execute("SELECT step, reason FROM escalations ORDER BY id")]
        limit = acked_at or now
        expected_steps = [(s, r) for s, r, at in deadlines if at <= limit]
        first_pass = [s for s, r in expected_steps if r == 0]
        assert [s for s, reason in taken if reason != "repeat"] == first_pass  # every step, once, in order
        repeats_taken = sum(1 for _, reason in taken if reason == "repeat")
        repeats_due = sum(1 for _, r in expected_steps if r > 0)
        assert repeats_taken <= repeats_due and (repeats_taken > 0) == (repeats_due > 0)
        (row,) = conn.execute("SELECT status, next_step_at FROM alerts")
        if acked_at is not None:
            assert row["status"] == "acknowledged" and row["next_step_at"] is None
        else:
            later = [at for _, _, at in deadlines if at > now]
            assert row["next_step_at"] == (iso(later[0]) if later else None)
    notifications = conn.execute("SELECT COUNT(*) FROM notifications").fetchone()[0]
    assert notifications == len(taken)  # one row per step taken (one channel, no recipients)
