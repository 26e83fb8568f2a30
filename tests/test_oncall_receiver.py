"""The receiver with schedules and people: steps page whoever is on call when they fire (and the history says
whom), people act under their own verified name with their role's rights, and the event stream tells every
change in order, resuming where a client left off. Time is virtual (ManualClock)."""

import asyncio
import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config, token_digest
from amcompanion.receiver.identity import CSRF_HEADER, SESSION_COOKIE
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.receiver.timeutil import ManualClock
from tests.receiver_support import AUTH, TOKEN, FakeChannel, alert_payload, eventually, rows

# Friday 2026-03-27 10:00 UTC (11:00 in Berlin): week 12 of a rotation handed off Mondays at 09:00 Berlin time
# from 2026-01-05, so bob's week (odd); Berlin moves to summer time on Sunday 2026-03-29.
START = datetime(2026, 3, 27, 10, 0, tzinfo=UTC)
PEOPLE = {"alice": ("admin", "alice-token-0001"), "bob": ("responder", "bob-token-0002"), "vic": ("viewer", "vic-0003")}


@dataclass
class Harness:
    client: TestClient
    receiver: Receiver
    clock: ManualClock
    pager: FakeChannel
    db: Path

    async def fire(self, fingerprint: str, name: str = "DiskFull") -> dict:
        response = await self.client.post(
            "/webhook/oncall", data=json.dumps(alert_payload("firing", fingerprint, name)), headers=AUTH
        )
        assert response.status == 200, await response.text()
        (row,) = rows(self.db, "SELECT id FROM alerts WHERE fingerprint = ?", fingerprint)
        return {"id": row["id"]}

    def pages(self, alert_id: int) -> list[tuple[str, str]]:
        return [
            (r["channel"], r["recipient"])
            for r in rows(
                self.db, "SELECT channel, recipient FROM notifications WHERE alert_id = ? ORDER BY id", alert_id
            )
        ]


def config_file(
    directory: Path, url: str, steps: list[dict], layers: list[dict] | None = None, more_contacts: dict | None = None
) -> Path:
    config = {
        "version": 1,
        "receiver": {"url": "http://127.0.0.1:1", "external_url": "https://alerts.example.com",
                     "trusted_proxies": ["127.0.0.1/32"]},
        "contacts": {
            name: {"email": f"{name}@example.com", "name": name.title(), "role": role,
                   "token_sha256": token_digest(token), "notify": ["pager"]}
            for name, (role, token) in PEOPLE.items()
        } | (more_contacts or {}),
        "channels": {"pager": {"type": "webhook", "url": url}},
        "schedules": {
            "primary": {
                "time_zone": "Europe/Berlin",
                "layers": layers
                or [{"name": "weekly", "rotation": ["alice", "bob"], "shift": "1w", "handoff": "2026-01-05 09:00"}],
            }
        },
        "escalations": {"oncall": {"steps": steps, "on_resolve": "none"}},
    }  # fmt: skip
    path = directory / "receiver.yaml"
    path.write_text(json.dumps(config))
    return path


async def start(
    tmp_path: Path, aiohttp_server, aiohttp_client, steps: list[dict], db: Path | str | None = None, **kw
) -> Harness:  # type: ignore[no-untyped-def]
    pager = FakeChannel()
    fake = web.Application()
    fake.router.add_post("/pager", pager.handle)
    server = await aiohttp_server(fake)
    config = load_receiver_config(config_file(tmp_path, str(server.make_url("/pager")), steps, **kw))
    clock = ManualClock(START)
    db = tmp_path / "h.db" if db is None else db
    receiver = Receiver(config, Settings(str(db), TOKEN), clock)
    client = await aiohttp_client(make_app(receiver))
    return Harness(client, receiver, clock, pager, db)


ONCALL_STEPS = [
    {"after": "0s", "notify": [{"oncall": "primary"}]},
    {"after": "10m", "notify": [{"next_oncall": "primary", "channel": "pager"}]},
    {"after": "20m", "notify": [{"everyone": "primary"}]},
]


@pytest.fixture
async def harness(tmp_path: Path, history_db: Path | str, aiohttp_server, aiohttp_client) -> Harness:  # type: ignore[no-untyped-def]
    return await start(tmp_path, aiohttp_server, aiohttp_client, ONCALL_STEPS, db=history_db)


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {PEOPLE[name][1]}"}


# -- paging the schedule ------------------------------------------------------------------------------
async def test_steps_page_who_the_schedule_names_when_each_step_fires_and_the_history_records_it(
    harness: Harness,
) -> None:
    alert = await harness.fire("f1")
    assert harness.pages(alert["id"]) == [("pager", "bob")]  # bob's week
    await harness.client.post(f"/api/v1/alerts/{alert['id']}/escalate", headers=AUTH)
    await harness.client.post(f"/api/v1/alerts/{alert['id']}/escalate", headers=AUTH)
    assert harness.pages(alert["id"]) == [("pager", "bob"), ("pager", "alice"), ("pager", "alice"), ("pager", "bob")]
    recorded = [json.loads(r["oncall"]) for r in rows(harness.db, "SELECT oncall FROM escalations ORDER BY id")]
    assert recorded == [
        [{"schedule": "primary", "who": "oncall", "people": ["bob"]}],
        [{"schedule": "primary", "who": "next_oncall", "people": ["alice"]}],
        [{"schedule": "primary", "who": "everyone", "people": ["alice", "bob"]}],
    ]
    await eventually(lambda: len(harness.pager.received) == 4, what="four pages delivered")
    # after the hand-off on Monday 09:00 Berlin (07:00 UTC, summer time since Sunday) alice is on call
    await harness.clock.advance((datetime(2026, 3, 30, 7, 0, tzinfo=UTC) - START).total_seconds())
    later = await harness.fire("f2")
    assert harness.pages(later["id"]) == [("pager", "alice")]


async def test_a_gap_in_the_rotation_pages_everyone_on_the_schedule_and_says_why(
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    office = [{"name": "office", "rotation": ["alice", "bob"], "shift": "1d", "handoff": "2026-01-05 09:00",
               "restrict": [{"weekdays": ["monday:friday"], "start_time": "09:00", "end_time": "10:00"}]}]  # fmt: skip
    harness = await start(tmp_path, aiohttp_server, aiohttp_client, ONCALL_STEPS[:1], layers=office)
    alert = await harness.fire("f1")  # 11:00 Berlin: nobody is in the office layer
    assert sorted(harness.pages(alert["id"])) == [("pager", "alice"), ("pager", "bob")]
    (row,) = rows(harness.db, "SELECT oncall FROM escalations")
    assert json.loads(row["oncall"]) == [
        {"schedule": "primary", "who": "oncall", "people": ["alice", "bob"],
         "fallback": "nobody on call: everyone on the schedule is paged"},
    ]  # fmt: skip


# -- people ------------------------------------------------------------------------------------------
async def test_a_person_acknowledges_as_themselves_and_roles_bound_what_they_may_do(harness: Harness) -> None:
    alert = await harness.fire("f1")
    url = f"/api/v1/alerts/{alert['id']}"
    refused = await harness.client.post(f"{url}/ack", json={}, headers=bearer("vic"))
    assert refused.status == 403 and "viewer" in (await refused.json())["error"]
    assert (await harness.client.get(url, headers=bearer("vic"))).status == 200  # a viewer can look
    posing = await harness.client.post(f"{url}/ack", json={"by": "alice"}, headers=bearer("bob"))
    assert posing.status == 403 and "only an admin may" in (await posing.json())["error"]
    acked = await harness.client.post(f"{url}/ack", json={"comment": "on it"}, headers=bearer("bob"))
    assert acked.status == 200 and (await acked.json())["acked_by"] == "bob"
    (ack,) = rows(harness.db, "SELECT by, via, comment FROM acks")
    assert tuple(ack) == ("bob", "api", "on it")
    second = await harness.fire("f2")
    resolved = await harness.client.post(
        f"/api/v1/alerts/{second['id']}/resolve", json={"by": "bob"}, headers=bearer("alice")
    )
    assert resolved.status == 200  # an admin may act for someone else
    assert rows(harness.db, "SELECT resolved_by FROM alerts WHERE id = ?", second["id"])[0][0] == "bob"
    wrong = await harness.client.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status == 401
    person_posts_alerts = await harness.client.post(
        "/webhook/oncall", data=json.dumps(alert_payload("firing", "f3")), headers=bearer("alice")
    )
    assert person_posts_alerts.status == 403


async def test_a_trusted_proxy_names_the_person_and_browser_credentials_need_the_csrf_token(harness: Harness) -> None:
    alert = await harness.fire("f1")
    proxied = {"X-Forwarded-User": "someone", "X-Forwarded-Email": "Bob@Example.com"}
    state = await harness.client.get("/api/v1/console", headers=proxied)
    assert state.status == 200 and (await state.json())["me"] == {"contact": "bob", "name": "Bob", "role": "responder"}
    forged = await harness.client.post(f"/api/v1/alerts/{alert['id']}/ack", json={}, headers=proxied)
    assert forged.status == 403 and CSRF_HEADER in (await forged.json())["error"]
    page = await (await harness.client.get("/console", headers=proxied)).text()
    csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
    acked = await harness.client.post(
        f"/api/v1/alerts/{alert['id']}/ack", json={}, headers={**proxied, CSRF_HEADER: csrf}
    )
    assert acked.status == 200
    assert tuple(rows(harness.db, "SELECT by, via FROM acks")[0]) == ("bob", "console")
    stranger = await harness.client.get("/api/v1/console", headers={"X-Forwarded-User": "mallory"})
    assert stranger.status == 403 and "not a contact" in (await stranger.json())["error"]


async def test_signing_in_to_the_console_sets_a_session_that_acts_as_the_person(harness: Harness) -> None:
    unsigned = await harness.client.get("/console", allow_redirects=False)
    assert unsigned.status == 303 and unsigned.headers["Location"].startswith("/console/login")
    bad = await harness.client.post("/console/login", data={"token": "guess"}, allow_redirects=False)
    assert bad.status == 401 and "not a person" in await bad.text()
    signed = await harness.client.post(
        "/console/login?next=//evil.example.com/", data={"token": PEOPLE["alice"][1]}, allow_redirects=False
    )
    assert signed.status == 303 and signed.headers["Location"] == "/console"  # never to another site
    cookie = signed.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["secure"]  # the external URL is https
    harness.client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie.value})  # as a browser would, over TLS
    state = await (await harness.client.get("/api/v1/console")).json()
    assert state["me"]["contact"] == "alice" and state["me"]["role"] == "admin"
    alert = await harness.fire("f1")
    forged = await harness.client.post(f"/api/v1/alerts/{alert['id']}/resolve", json={})
    assert forged.status == 403
    signed_out = await harness.client.post("/console/logout", allow_redirects=False)
    assert signed_out.status == 303 and signed_out.cookies[SESSION_COOKIE].value == ""  # the cookie is dropped
    harness.client.session.cookie_jar.update_cookies({SESSION_COOKIE: "tampered." + "0" * 64})
    assert (await harness.client.get("/api/v1/console")).status == 401


# -- events ------------------------------------------------------------------------------------------
async def read_events(
    client: TestClient, count: int, headers: dict[str, str], query: str = ""
) -> list[tuple[str, str, dict]]:
    """The first `count` events of the stream as (id, type, data)."""
    found: list[tuple[str, str, dict]] = []
    async with client.get(f"/api/v1/events{query}", headers=headers) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        async with asyncio.timeout(10):
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if "data" in event:
                        found.append((event.get("id", ""), event.get("event", ""), json.loads(event["data"])))
                    event = {}
                    if len(found) == count:
                        return found
                    continue
                key, _, value = line.partition(":")
                event[key] = value.removeprefix(" ")
    return found


async def test_the_event_stream_tells_each_change_with_the_alert_and_resumes_from_last_event_id(
    harness: Harness,
) -> None:
    # the alert's own changes (`type` filters them out of the rest)
    alert_types = "?type=alert.firing&type=alert.escalated&type=alert.acknowledged"
    listening = asyncio.create_task(read_events(harness.client, 3, AUTH, alert_types))
    await eventually(lambda: harness.receiver.events.subscribers, what="the stream's subscriber")
    alert = await harness.fire("f1")
    # bob acknowledges once his page is out (an ack before it cancels the page, and its delivery is no event)
    sent = "SELECT 1 FROM events WHERE type = 'notification.sent'"
    await eventually(lambda: rows(harness.db, sent), what="the page's delivery")
    await harness.client.post(f"/api/v1/alerts/{alert['id']}/ack", json={}, headers=bearer("bob"))
    events = await listening
    assert [kind for _, kind, _ in events] == ["alert.firing", "alert.escalated", "alert.acknowledged"]
    _, _, escalated = events[1]
    assert escalated["targets"] == [{"channel": "pager", "recipient": "bob"}]
    assert escalated["alert"]["id"] == alert["id"] and escalated["alert"]["oncall"][0]["schedule"] == "primary"
    ack_id, _, acked = events[2]
    assert acked["by"] == "bob" and acked["alert"]["status"] == "acknowledged"
    # a client that saw the first event resumes after it and misses nothing, the page's delivery included
    resumed = await read_events(harness.client, 3, {**AUTH, "Last-Event-ID": events[0][0]})
    assert [kind for _, kind, _ in resumed] == ["alert.escalated", "notification.sent", "alert.acknowledged"]
    assert [resumed[0][0], resumed[2][0]] == [events[1][0], ack_id]
    bad = await harness.client.get("/api/v1/events", headers={**AUTH, "Last-Event-ID": "yesterday"})
    assert bad.status == 400


# -- who is on call ------------------------------------------------------------------------------------
async def test_who_is_on_call_is_answered_at_any_moment_and_served_as_calendars(harness: Harness) -> None:
    now = await (await harness.client.get("/api/v1/oncall/primary?next=2", headers=bearer("vic"))).json()
    assert [p["contact"] for p in now["people"]] == ["bob"]
    assert now["until"] == "2026-03-30T07:00:00.000000Z"  # Monday 09:00 in Berlin's summer time
    assert [h["people"][0]["contact"] for h in now["handoffs"]] == ["alice", "bob"]
    at = await (await harness.client.get("/api/v1/oncall?at=2026-04-01T12:00:00%2B02:00", headers=AUTH)).json()
    assert [p["contact"] for p in at["schedules"][0]["people"]] == ["alice"]
    for query, status in (("?at=tomorrow", 400), ("?at=2026-04-01T12:00:00", 400), ("?next=-1", 400)):
        assert (await harness.client.get(f"/api/v1/oncall/primary{query}", headers=AUTH)).status == status
    assert (await harness.client.get("/api/v1/oncall/nope", headers=AUTH)).status == 404
    # a calendar app sends no credentials: the feed's own key lets it in
    assert (await harness.client.get("/schedules/primary.ics", allow_redirects=False)).status == 303
    key = harness.receiver.identities.feed_key("primary")
    feed = await harness.client.get(f"/schedules/primary.ics?key={key}")
    assert feed.status == 200 and feed.headers["Content-Type"].startswith("text/calendar")
    events = icalendar.Calendar.from_ical(await feed.read()).walk("VEVENT")
    starts = {e.decoded("dtstart") for e in events}
    assert datetime(2026, 3, 30, 7, 0, tzinfo=UTC) in starts and datetime(2026, 3, 23, 8, 0, tzinfo=UTC) in starts
    wrong_key = await harness.client.get(f"/schedules/primary/alice.ics?key={key}", allow_redirects=False)
    assert wrong_key.status == 303  # the schedule's key is not alice's
    alices = await harness.client.get(
        f"/schedules/primary/alice.ics?key={harness.receiver.identities.feed_key('primary', 'alice')}"
    )
    summaries = {str(e["summary"]) for e in icalendar.Calendar.from_ical(await alices.read()).walk("VEVENT")}
    assert summaries == {"On call: Alice (primary)"}
    shifts = sorted(
        icalendar.Calendar.from_ical(await alices.read()).walk("VEVENT"), key=lambda e: e.decoded("dtstart")
    )
    lengths = {e.decoded("dtend") - e.decoded("dtstart") for e in shifts[:-1]}  # the last ends with the feed
    assert lengths <= {timedelta(days=7), timedelta(days=7, hours=-1), timedelta(days=7, hours=1)}, lengths


def covered_week(directory: Path, who: str) -> list[dict]:
    """The weekly rotation, and over it a calendar beside receiver.yaml whose one event (`who`, 09:00 to 12:00
    UTC on START's day) covers START."""
    (directory / "cover.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\nBEGIN:VEVENT\r\nUID:cover@example.com\r\n"
        f"DTSTAMP:20260301T000000Z\r\nSUMMARY:{who}\r\nDTSTART:20260327T090000Z\r\n"
        "DTEND:20260327T120000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return [
        {"name": "weekly", "rotation": ["alice", "bob"], "shift": "1w", "handoff": "2026-01-05 09:00"},
        {"name": "cover", "ical": {"file": "cover.ics", "refresh": "10m"}},  # relative to receiver.yaml
    ]


async def test_a_shared_calendar_beside_the_config_is_read_at_start_and_names_who_is_paged(
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    layers = covered_week(tmp_path, "alice@example.com")
    harness = await start(tmp_path, aiohttp_server, aiohttp_client, ONCALL_STEPS[:1], layers=layers)
    alert = await harness.fire("f1")  # 10:00 UTC: within the calendar's cover, which wins over bob's week
    assert harness.pages(alert["id"]) == [("pager", "alice")]
    await harness.clock.advance(3 * 3600)  # 13:00: the cover is over
    later = await harness.fire("f2")
    assert harness.pages(later["id"]) == [("pager", "bob")]


async def test_a_group_link_acknowledges_as_the_person_signed_in_whatever_the_form_says(harness: Harness) -> None:
    alert = await harness.fire("f1")
    token = harness.receiver.links.token(alert["id"], harness.clock.now())  # a robot's message: no recipient
    anonymous = await (await harness.client.get(f"/ack/{token}")).text()
    assert "choose your name" in anonymous  # not signed in: the page asks who, among the contacts
    signed = await harness.client.post("/console/login", data={"token": PEOPLE["bob"][1]}, allow_redirects=False)
    harness.client.session.cookie_jar.update_cookies({SESSION_COOKIE: signed.cookies[SESSION_COOKIE].value})
    page = await (await harness.client.get(f"/ack/{token}")).text()
    assert "Acknowledge as Bob" in page and "choose your name" not in page
    done = await harness.client.post(f"/ack/{token}", data={"by": "alice"})
    assert done.status == 200 and "acknowledged by Bob" in await done.text()
    assert tuple(rows(harness.db, "SELECT by, via FROM acks")[0]) == ("bob", "link")


async def test_bad_input_to_the_new_endpoints_is_a_4xx_with_the_reason(harness: Harness) -> None:
    login = await harness.client.post(
        "/console/login",
        data=b"token=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert login.status in (400, 401)
    bogus_charset = await harness.client.post(
        "/console/login", data=b"token=x", headers={"Content-Type": "application/x-www-form-urlencoded; charset=nope"}
    )
    assert bogus_charset.status == 400 and "could not be read" in await bogus_charset.text()
    timeline = await harness.client.get("/api/v1/alerts/999/timeline", headers=AUTH)
    assert timeline.status == 404 and (await timeline.json())["error"] == "no alert 999"
    assert (await harness.client.get("/api/v1/alerts/x/timeline", headers=AUTH)).status == 404
    feed = await harness.client.get("/schedules/primary/mallory.ics", headers=AUTH)
    assert feed.status == 404 and "unknown contact" in (await feed.json())["error"]
    asset = await harness.client.get("/console/static/../../receiver.yaml")
    assert asset.status == 404
    bad_by = await harness.client.post("/api/v1/alerts/1/ack", json={"by": 7}, headers=bearer("bob"))
    assert bad_by.status == 422


async def test_a_calendar_naming_someone_with_no_channel_pages_everyone_on_the_schedule(
    tmp_path: Path, aiohttp_server, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    layers = covered_week(tmp_path, "dana")
    dana = {"dana": {"email": "dana@example.com"}}  # no `notify`: the catalog checks the rotations' people only
    harness = await start(tmp_path, aiohttp_server, aiohttp_client, ONCALL_STEPS[:1], layers=layers, more_contacts=dana)
    alert = await harness.fire("f1")
    assert sorted(harness.pages(alert["id"])) == [("pager", "alice"), ("pager", "bob")]
    (row,) = rows(harness.db, "SELECT oncall FROM escalations")
    (named,) = json.loads(row["oncall"])
    assert named["people"] == ["alice", "bob", "dana"]
    assert named["fallback"] == "dana cannot be reached (no notify channels): everyone on the schedule is paged"


async def test_without_authentication_a_change_is_recorded_as_unverified(tmp_path: Path, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    """--insecure-no-auth: the console sends no name and nobody can be verified; the history says so."""
    config = load_receiver_config(config_file(tmp_path, "http://127.0.0.1:9/pager", ONCALL_STEPS[:1]))
    receiver = Receiver(config, Settings(str(tmp_path / "h.db"), None), ManualClock(START))
    client = await aiohttp_client(make_app(receiver))
    body = json.dumps(alert_payload("firing", "f1"))
    assert (await client.post("/webhook/oncall", data=body)).status == 200
    page = await (await client.get("/console")).text()  # no sign-in to pass
    assert "anyone (no authentication)" in html.unescape(page)
    acked = await client.post("/api/v1/alerts/1/ack", json={})
    assert acked.status == 200 and (await acked.json())["acked_by"] == "someone (no authentication)"
