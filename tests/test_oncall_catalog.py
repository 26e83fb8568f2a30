"""Schedules, people and schedule steps in the catalog: read into the model, written to receiver.yaml and read
back by the receiver, and each mistake reported as `file:line:col: field: message`."""

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amcompanion.catalog import load_catalog
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.catalog.model import Layer, Override, Person, Restriction
from amcompanion.cli import main
from amcompanion.receiver.config import load_receiver_config, token_digest

PEOPLE = """
version: 1
contacts:
  alice: {email: alice@example.com, phone: "+8613800000001", role: admin, notify: [sms]}
  bob: {email: bob@example.com, phone: "+8613800000002", token_env: BOB_TOKEN, notify: [mail]}
  carol: {email: carol@example.com, role: viewer, token_sha256: %s}
channels:
  sms: {type: twilio_sms, account_sid: AC1, auth_token: "${TWILIO_TOKEN}", from: "+15550000000"}
  mail: {type: email, host: localhost, from: amcompanion@example.com}
  chat: {type: slack, url: "https://hooks.slack.com/services/${SLACK}"}
"""
SCHEDULES = """
version: 1
schedules:
  primary:
    time_zone: Europe/Berlin
    layers:
      - name: weekly
        rotation: [alice, bob]
        shift: 1w
        handoff: "2026-01-05 09:00"
      - name: office
        rotation: [bob]
        shift: 1d
        handoff: "2026-01-05 09:00"
        restrict: {weekdays: ["monday:friday"], start_time: "09:00", end_time: "17:00"}
    overrides:
      - {who: alice, from: "2026-12-24 18:00", to: "2026-12-27T09:00:00+01:00"}
escalations:
  page:
    steps:
      - notify: [chat, {oncall: primary}]
      - after: 10m
        notify: [{next_oncall: primary, channel: sms}, {everyone: primary, channel: mail}]
routes:
  - escalation: page
"""
CAROL_TOKEN = "carol-token-0123456789"


def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(textwrap.dedent(text).lstrip())


def errors_of(root: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(root)
    return [str(d).split("\n")[0] for d in caught.value.diagnostics]


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    root = tmp_path / "rulesets"
    root.mkdir()
    write(root, "people.yaml", PEOPLE % token_digest(CAROL_TOKEN))
    return root


def test_schedules_people_and_schedule_steps_are_read_into_the_model(cat: Path) -> None:
    write(cat, "schedules.yaml", SCHEDULES)
    catalog = load_catalog(cat)
    primary = catalog.schedules["primary"]
    assert primary.time_zone == "Europe/Berlin"
    assert primary.layers == [
        Layer("weekly", ("alice", "bob"), 7 * 86_400_000, datetime(2026, 1, 5, 9, 0)),
        Layer(
            "office",
            ("bob",),
            86_400_000,
            datetime(2026, 1, 5, 9, 0),
            (Restriction((0, 1, 2, 3, 4), "09:00", "17:00"),),
        ),
    ]
    (override,) = primary.overrides
    assert override == Override("alice", override.start, override.end)
    assert (override.start.astimezone(UTC), override.end.astimezone(UTC)) == (
        datetime(2026, 12, 24, 17, 0, tzinfo=UTC),  # local time in the schedule's zone (CET, +01:00)
        datetime(2026, 12, 27, 8, 0, tzinfo=UTC),
    )
    assert catalog.people == {
        "alice": Person("admin", ("sms",)),
        "bob": Person("responder", ("mail",), token_env="BOB_TOKEN"),
        "carol": Person("viewer", (), token_sha256=token_digest(CAROL_TOKEN)),
    }
    assert "role" not in catalog.contacts["alice"] and "notify" not in catalog.contacts["alice"]  # not addresses
    first, second = catalog.policies["page"].steps
    assert [(t.channel, t.schedule, t.who) for t in first.notify] == [("chat", None, None), (None, "primary", "oncall")]
    assert [(t.channel, t.schedule, t.who) for t in second.notify] == [
        ("sms", "primary", "next_oncall"),
        ("mail", "primary", "everyone"),
    ]


def test_the_receiver_reads_back_what_compile_writes_and_hashes_tokens_from_the_environment(
    cat: Path, tmp_path: Path
) -> None:
    write(cat, "schedules.yaml", SCHEDULES)
    out = tmp_path / "generated"
    assert main(["compile", str(cat), "--out", str(out), "-q"]) == 0
    text = (out / "receiver/receiver.yaml").read_text()
    assert "BOB_TOKEN" in text and "bob-secret" not in text
    catalog = load_catalog(cat)
    config = load_receiver_config(
        out / "receiver/receiver.yaml", {"TWILIO_TOKEN": "t", "SLACK": "s", "BOB_TOKEN": "bob-secret-token"}
    )
    (read,), (original,) = config.schedules.values(), catalog.schedules.values()
    assert (read.time_zone, read.layers) == (original.time_zone, original.layers)
    assert [(o.who, o.start.timestamp(), o.end.timestamp()) for o in read.overrides] == [
        (o.who, o.start.timestamp(), o.end.timestamp()) for o in original.overrides
    ]
    assert config.people == catalog.people
    assert config.policies["page"].steps == catalog.policies["page"].steps
    assert config.token_owners == {token_digest("bob-secret-token"): "bob", token_digest(CAROL_TOKEN): "carol"}
    assert "bob-secret-token" in config.secrets  # never logged
    with pytest.raises(CatalogError) as caught:
        load_receiver_config(out / "receiver/receiver.yaml", {"TWILIO_TOKEN": "t", "SLACK": "s"})
    assert any(
        "contacts.bob.token_env: environment variable BOB_TOKEN is not set" in str(d) for d in caught.value.diagnostics
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            version: 1
            schedules:
              s:
                time_zone: Mars/Olympus
                layers: [{rotation: [alice], shift: 1d, handoff: "2026-01-05 09:00"}]
            """,
            ['rulesets/s.yaml:4:16: schedules.s.time_zone: unknown time zone "Mars/Olympus" (use an IANA name such as'
             " Europe/Berlin or Asia/Shanghai)"],
        ),
        (
            """
            version: 1
            schedules:
              s:
                time_zone: UTC
                layers: [{rotation: [alice, zed], shift: 1d, handoff: "2026-01-05 09:00"}]
            """,
            ['rulesets/s.yaml:5:33: schedules.s.layers[0].rotation[1]: undefined contact "zed"'],
        ),
        (
            """
            version: 1
            schedules:
              s:
                time_zone: UTC
                layers: [{rotation: [], shift: 1d, handoff: "2026-01-05 09:00"}]
            """,
            ["rulesets/s.yaml:5:25: schedules.s.layers[0].rotation: a rotation with nobody: name the contacts who take"
             " turns"],
        ),
        (
            """
            version: 1
            schedules:
              s:
                time_zone: UTC
                layers: [{rotation: [alice], shift: 90m, handoff: "2026-01-05 09:00"}]
            """,
            ["rulesets/s.yaml:5:41: schedules.s.layers[0].shift: a shift is a whole number of hours, days or weeks"
             " (12h, 1d, 1w), got '90m'"],
        ),
        (
            """
            version: 1
            schedules:
              s:
                time_zone: UTC
                layers: [{rotation: [alice], shift: 1d, handoff: "next monday"}]
            """,
            ['rulesets/s.yaml:5:54: schedules.s.layers[0].handoff: "next monday" is not a local date and time such as'
             ' "2026-01-05 09:00"'],
        ),
        (
            """
            version: 1
            schedules:
              s:
                time_zone: UTC
                layers: [{rotation: [alice], shift: 1d, handoff: "2026-01-05 09:00"}]
                overrides:
                  - {who: bob, from: "2026-12-24 00:00", to: "2026-12-26 00:00"}
                  - {who: alice, from: "2026-12-25T12:00:00Z", to: "2026-12-27T00:00:00Z"}
            """,
            ["rulesets/s.yaml:8:9: schedules.s.overrides[1]: overlaps the override of bob until"
             " 2026-12-26T00:00:00+00:00: who would be on call?"],
        ),
        (
            """
            version: 1
            schedules:
              s:
                time_zone: UTC
                layers: [{rotation: [alice], shift: 1d, handoff: "2026-01-05 09:00",
                          restrict: {weekdays: [mondy]}}]
            """,
            ['rulesets/s.yaml:6:37: schedules.s.layers[0].restrict.weekdays[0]: "mondy" is not a day or a range of days'
             ' such as monday:friday; did you mean "monday"?'],
        ),
        (
            """
            version: 1
            escalations:
              p:
                steps: [{notify: [{oncall: nobody-here}]}]
            """,
            ['rulesets/s.yaml:4:32: escalations.p.steps[0].notify[0].oncall: undefined schedule "nobody-here"'],
        ),
        (
            """
            version: 1
            schedules:
              s:
                time_zone: UTC
                layers: [{rotation: [alice, carol], shift: 1d, handoff: "2026-01-05 09:00"}]
            escalations:
              p:
                steps: [{notify: [{oncall: s}]}]
            """,
            ["rulesets/s.yaml:8:23: escalations.p.steps[0].notify[0]: schedule \"s\" may name carol, who has no"
             " `notify` channels: give the step a `channel` or the contact `notify: [channel, ...]`"],
        ),
        (
            """
            version: 1
            schedules:
              s:
                time_zone: UTC
                layers: [{rotation: [alice, carol], shift: 1d, handoff: "2026-01-05 09:00"}]
            escalations:
              p:
                steps: [{notify: [{oncall: s, channel: sms, to: [alice]}]}]
            """,
            ["rulesets/s.yaml:8:53: escalations.p.steps[0].notify[0].to: `to` does not go with `oncall`: the schedule"
             " says whom to reach"],
        ),
        (
            """
            version: 1
            schedules:
              s:
                time_zone: UTC
                layers: [{rotation: [alice, carol], shift: 1d, handoff: "2026-01-05 09:00"}]
            escalations:
              p:
                steps: [{notify: [{oncall: s, channel: sms}]}]
            """,
            ['rulesets/s.yaml:8:23: escalations.p.steps[0].notify[0]: schedule "s" may name carol, who has no phone,'
             " which channel sms (twilio_sms) needs"],
        ),
    ],
    ids=[
        "zone", "unknown-contact", "nobody", "shift", "handoff", "overlap", "weekday", "unknown-schedule",
        "no-notify", "to-with-oncall", "no-phone",
    ],
)  # fmt: skip
def test_each_mistake_in_a_schedule_is_located(cat: Path, text: str, expected: list[str]) -> None:
    write(cat, "s.yaml", text)
    assert errors_of(cat) == expected


def test_people_fields_are_checked(cat: Path) -> None:
    write(
        cat,
        "more.yaml",
        """
        version: 1
        contacts:
          dave: {role: boss, token_sha256: "not-a-hash", notify: [pager]}
        """,
    )
    assert errors_of(cat) == [
        'rulesets/more.yaml:3:16: contacts.dave.role: unknown role "boss"; expected one of: viewer, responder, admin',
        "rulesets/more.yaml:3:36: contacts.dave.token_sha256: expected 64 lower-case hex digits, the SHA-256 of the"
        " token (`amcompanion token` prints one)",
        'rulesets/more.yaml:3:59: contacts.dave.notify[0]: undefined channel "pager"',
    ]


def test_oncall_prints_who_is_on_call_and_the_next_handoffs(cat: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(cat, "schedules.yaml", SCHEDULES)
    # Thursday 2026-12-24 12:00 Berlin: alice's week (50 weeks after the first hand-off), but bob's office hours
    assert main(["oncall", "--catalog", str(cat), "--at", "2026-12-24T12:00:00+01:00", "--next", "2", "--json"]) == 0
    (found,) = json.loads(capsys.readouterr().out)["schedules"]
    assert (found["schedule"], found["on_call"], found["until"]) == ("primary", ["bob"], "2026-12-24T16:00:00+00:00")
    assert [(h["people"], h["from"], h["layer"]) for h in found["handoffs"]] == [
        (["alice"], "2026-12-24T16:00:00+00:00", "weekly"),  # after office hours, the weekly layer shows through
        (["alice"], "2026-12-24T17:00:00+00:00", "override"),  # the override from 18:00 Berlin
    ]
    assert main(["oncall", "primary", "--catalog", str(cat), "--at", "2026-12-24T12:00:00+01:00"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "primary (Europe/Berlin): bob until Thu 2026-12-24 17:00 CET",
        "  Thu 2026-12-24 17:00 CET → alice  (weekly)",
        "  Thu 2026-12-24 18:00 CET → alice  (override)",
        "  Sun 2026-12-27 09:00 CET → alice  (weekly)",
    ]
    assert main(["oncall", "--catalog", str(cat), "--at", "tomorrow"]) == 2
    assert "--at: " in capsys.readouterr().err
    assert main(["oncall", "secondary", "--catalog", str(cat)]) == 1
    assert 'unknown schedule "secondary" (the catalog has: primary)' in capsys.readouterr().err


def test_token_prints_a_fresh_token_and_the_hash_the_catalog_keeps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "alice", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["contact"] == "alice" and first["token_sha256"] == token_digest(first["token"])
    assert main(["token", "alice", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["token"] != first["token"]
    assert main(["token", "ops-bot"]) == 0
    assert "token_env: OPS_BOT_TOKEN" in capsys.readouterr().out


def test_oncall_reads_a_calendar_beside_the_catalog_and_warns_of_events_that_name_nobody(
    cat: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cat / "team.ics").write_bytes((Path(__file__).parent / "data" / "schedules" / "team.ics").read_bytes())
    write(
        cat,
        "calendar.yaml",
        """
        version: 1
        schedules:
          shared:
            time_zone: Europe/Berlin
            layers: [{name: team, ical: {file: team.ics}}]
        """,
    )
    assert main(["oncall", "shared", "--catalog", str(cat), "--at", "2026-03-02T13:30:00+01:00", "--json"]) == 0
    captured = capsys.readouterr()
    (found,) = json.loads(captured.out)["schedules"]
    assert found["on_call"] == ["bob"]  # the event of BOB@Example.com; "Alice Liddell" is no contact's name here
    assert "warning: calendar shared/team names no contact in: Alice Liddell, Team offsite" in captured.err


def test_a_date_alone_is_its_midnight_and_a_day_that_does_not_exist_is_an_error(cat: Path) -> None:
    write(
        cat,
        "s.yaml",
        """
        version: 1
        schedules:
          s:
            time_zone: Asia/Shanghai
            layers: [{rotation: [alice], shift: 1d, handoff: 2026-01-05}]
            overrides: [{who: bob, from: 2026-12-24, to: "2026-12-25"}]
        """,
    )
    schedule = load_catalog(cat).schedules["s"]
    assert schedule.layers[0].handoff == datetime(2026, 1, 5, 0, 0)
    (override,) = schedule.overrides
    assert override.start.astimezone(UTC) == datetime(2026, 12, 23, 16, 0, tzinfo=UTC)  # midnight in Shanghai
    write(
        cat,
        "s.yaml",
        """
        version: 1
        schedules:
          s:
            time_zone: UTC
            layers: [{rotation: [alice], shift: 1d, handoff: "2026-02-30 09:00"}]
        """,
    )
    (error,) = errors_of(cat)
    assert error.startswith('rulesets/s.yaml:5:54: schedules.s.layers[0].handoff: "2026-02-30 09:00" is not a date')
