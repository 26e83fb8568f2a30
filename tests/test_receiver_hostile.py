"""Hostile input at the real receiver (aiohttp app, middleware, parser, SQLite store): never a 5xx, every
refusal a 4xx with its reason, lone surrogates stored as U+FFFD, and every answer counted."""

import asyncio
import copy
import json
import logging
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.receiver.timeutil import ManualClock
from tests.receiver_support import AUTH, TOKEN, alert_payload, rows, write_config

START = datetime(2026, 11, 22, 22, 47, 30, tzinfo=UTC)
LIMIT = 64 * 1024  # the receiver's body limit here: small, so that oversize bodies are quick to send
QUIET = {"steps": [{"after": "10m", "notify": [{"channel": "ops"}]}]}  # nothing is sent during a test
DEEP = "@@deep@@"  # replaced, in the JSON text, by nesting too deep to parse


@dataclass
class Hostile:
    client: TestClient
    receiver: Receiver
    db: Path
    answered: Counter = field(default_factory=Counter)  # (policy label, status) of each webhook request sent
    requests: int = 0  # every request sent, to any route
    fingerprints: int = 0

    async def send(
        self, body: bytes, policy: str = "oncall", auth: bool = True, chunked: bool = False
    ) -> tuple[int, dict]:
        """POST a body to the webhook, with Content-Length or chunked (an async generator has no length)."""

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 16 * 1024):
                yield body[start : start + 16 * 1024]

        response = await self.client.post(
            f"/webhook/{policy}", data=chunks() if chunked else body, headers=AUTH if auth else {}
        )
        self.requests += 1
        self.answered[(policy if policy == "oncall" else "", response.status)] += 1
        return response.status, await response.json()

    async def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """The counters' samples as /metrics shows them: name → {sorted labels: value}."""
        text = await (await self.client.get("/metrics")).text()
        self.requests += 1
        out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        return out

    def fingerprint(self) -> str:
        self.fingerprints += 1
        return f"fp{self.fingerprints:06d}"


@pytest.fixture
async def hostile(tmp_path: Path, history_db: Path | str, aiohttp_client) -> Hostile:  # type: ignore[no-untyped-def]
    config = load_receiver_config(write_config(tmp_path, {"ops": "http://127.0.0.1:9/unused"}, QUIET))
    receiver = Receiver(config, Settings(str(history_db), TOKEN, max_body_bytes=LIMIT), ManualClock(START))
    return Hostile(await aiohttp_client(make_app(receiver)), receiver, history_db)


# -- building bodies ------------------------------------------------------------------------------------
LABEL_KEY = object()  # in a path: a new key of that mapping, carrying the tainted text itself
STORED_STRINGS = [  # every string of a notification that the history keeps
    ("receiver",),
    ("groupKey",),
    ("externalURL",),
    ("alerts", 0, "fingerprint"),
    ("alerts", 0, "generatorURL"),
    ("alerts", 0, "labels", "alertname"),
    ("alerts", 0, "labels", "severity"),
    ("alerts", 0, "labels", "instance"),
    ("alerts", 0, "labels", LABEL_KEY),
    ("alerts", 0, "annotations", "summary"),
    ("alerts", 0, "annotations", LABEL_KEY),
]
DEEP_PLACES = [(), ("groupLabels",), ("commonAnnotations",), ("alerts",), ("alerts", 0, "labels", "job")]


def put(body: dict, path: tuple, text: str) -> None:
    """Set the string at `path`; at a LABEL_KEY, add `text` as a key (with a plain value) instead."""
    *parents, last = path
    node = body
    for key in parents:
        node = node[key]
    if last is LABEL_KEY:
        node[text] = "value"
    elif last == "fingerprint":
        node[last] += text  # stays unique per request
    else:
        node[last] = text


def encode(body: dict | str, raw: bool, deep: str = "") -> bytes:
    """JSON text: lone surrogates as `\\ud800` escapes, or (raw) as the three bytes that encode one, which
    Python's JSON reader lets through too; DEEP replaced by `deep`."""
    text = json.dumps(body, ensure_ascii=not raw).replace(json.dumps(DEEP), deep)
    return text.encode("utf-8", "surrogatepass")


def nested(depth: int, bracket: str) -> str:
    return "[" * depth + "]" * depth if bracket == "[" else '{"a":' * depth + "0" + "}" * depth


SAFE_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=5)  # no surrogate of its own


@st.composite
def tainted(draw: st.DrawFn) -> tuple[str, str]:
    """A string with one lone surrogate, and maybe an emoji (a surrogate pair in the escaped JSON) after it; and
    what the history must keep of it."""
    before, after = draw(SAFE_TEXT), draw(SAFE_TEXT)
    lone = draw(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
    emoji = draw(st.sampled_from(["", "😀"]))
    return before + lone + emoji + after, before + "\ufffd" + emoji + after


# Out of the years 0001-9999 once in UTC: late on the last day with a negative offset, early on the first with a
# positive one.
out_of_range = st.builds(
    lambda late, hours, minutes: (
        f"9999-12-31T23:59:59-{hours:02}:{minutes:02}" if late else f"0001-01-01T00:00:00+{hours:02}:{minutes:02}"
    ),
    st.booleans(),
    st.integers(1, 23),
    st.integers(0, 59),
)


@dataclass
class Case:
    body: bytes
    policy: str
    auth: bool
    chunked: bool
    status: int  # what the receiver must answer
    error: str = ""  # in the error message
    stored: dict | None = None  # the notification as the history must keep it (an accepted body)


@st.composite
def cases(draw: st.DrawFn, fingerprint: str) -> Case:
    """A valid notification with any mix of lone surrogates in stored strings, deep nesting, a time out of
    range and an oversize body; sometimes to an unknown policy or without the token."""
    sent = alert_payload("firing", fingerprint)
    stored = copy.deepcopy(sent)
    for path in draw(st.lists(st.sampled_from(STORED_STRINGS), unique=True, max_size=4)):
        text, kept = draw(tainted())
        put(sent, path, text)
        put(stored, path, kept)
    time_field = draw(st.sampled_from([None, None, None, None, "startsAt", "endsAt"]))
    moment = draw(out_of_range)
    if time_field:
        sent["alerts"][0][time_field] = moment
    deep_at = draw(st.sampled_from([None] * 8 + DEEP_PLACES))
    # deeper than Python's recursion limit, which Hypothesis raises by a few thousand while it runs a test
    deep = nested(draw(st.integers(6000, 9000)), draw(st.sampled_from("[{"))) if deep_at is not None else ""
    if deep_at == ():
        sent = DEEP
    elif deep_at is not None:
        put(sent, deep_at, DEEP)
    if draw(st.sampled_from([False, False, True])) and isinstance(sent, dict):
        sent["padding"] = "x" * draw(st.integers(LIMIT - 2000, LIMIT + 2000))  # an unknown key: ignored
    body = encode(sent, raw=draw(st.booleans()), deep=deep)
    case = Case(
        body,
        policy=draw(st.sampled_from(["oncall", "oncall", "oncall", "nosuch"])),
        auth=draw(st.sampled_from([True, True, True, False])),
        chunked=draw(st.booleans()),
        status=200,
        stored=stored,
    )
    for refused, status, error in (
        (not case.auth, 401, "missing credentials"),
        (case.policy != "oncall", 404, 'unknown escalation policy "nosuch"'),
        (len(body) > LIMIT, 413, f"body over the limit of {LIMIT} bytes"),
        (bool(deep), 400, "malformed JSON: nested too deeply"),
        (time_field is not None, 422, f"alerts[0].{time_field}: {moment!r} is outside the years 0001 to 9999 in UTC"),
    ):
        if refused:
            case.status, case.error, case.stored = status, error, None
            break
    return case


def assert_stored(db: Path, note: dict) -> None:
    """The alert of `note` is in the history, every stored string as the notification had it."""
    alert = note["alerts"][0]
    (row,) = rows(
        db,
        "SELECT a.*, e.receiver, e.group_key AS event_group_key FROM alerts a JOIN alert_events e"
        " ON e.alert_id = a.id WHERE a.fingerprint = ?",
        alert["fingerprint"],
    )
    assert json.loads(row["labels"]) == alert["labels"]
    assert json.loads(row["annotations"]) == alert["annotations"]
    assert (row["alertname"], row["severity"]) == (alert["labels"]["alertname"], alert["labels"]["severity"])
    assert (row["generator_url"], row["alertmanager_url"]) == (alert["generatorURL"], note["externalURL"])
    assert row["group_key"] == row["event_group_key"] == note["groupKey"]
    assert row["receiver"] == note["receiver"]


# -- the fuzz -------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
async def test_hostile_bodies_get_a_4xx_or_are_stored_clean_and_every_answer_is_counted(
    hostile: Hostile, data: st.DataObject
) -> None:
    case = data.draw(cases(hostile.fingerprint()))
    status, answer = await hostile.send(case.body, case.policy, case.auth, case.chunked)
    assert status == case.status, answer
    if case.stored is None:
        assert case.error in answer["error"]
    else:
        assert_stored(hostile.db, case.stored)
    before = hostile.requests  # the webhook's and the earlier scrapes; this scrape is counted once answered
    metrics = await hostile.metrics()
    counted = {
        (dict(labels)["policy"], int(dict(labels)["code"])): value
        for labels, value in metrics["amcompanion_webhook_requests_total"].items()
    }
    assert counted == {key: float(n) for key, n in hostile.answered.items()}
    assert sum(metrics["amcompanion_http_requests_total"].values()) == before


# -- each class ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("place", DEEP_PLACES, ids=lambda p: ".".join(map(str, p)) or "document")
async def test_json_nested_too_deep_to_parse_is_a_400(hostile: Hostile, place: tuple) -> None:
    body = alert_payload("firing", hostile.fingerprint())
    if place:
        put(body, place, DEEP)
    status, answer = await hostile.send(encode(body if place else DEEP, raw=False, deep=nested(1000, "[")))
    assert status == 400 and answer["error"] == "malformed JSON: nested too deeply"
    assert rows(hostile.db, "SELECT COUNT(*) FROM alerts")[0][0] == 0


async def test_an_api_body_nested_too_deep_is_a_400(hostile: Hostile) -> None:
    await hostile.send(encode(alert_payload("firing", hostile.fingerprint()), raw=False))
    body = '{"by": "alice", "comment": ' + nested(1000, "{") + "}"
    response = await hostile.client.post("/api/v1/alerts/1/ack", data=body, headers=AUTH)
    assert response.status == 400 and (await response.json())["error"] == "malformed JSON: nested too deeply"
    assert rows(hostile.db, "SELECT COUNT(*) FROM acks")[0][0] == 0


async def test_a_silence_too_long_for_a_date_is_a_422(hostile: Hostile) -> None:
    await hostile.send(encode(alert_payload("firing", hostile.fingerprint()), raw=False))
    body = {"by": "alice", "silence": "9999y"}
    response = await hostile.client.post("/api/v1/alerts/1/ack", json=body, headers=AUTH)
    assert response.status == 422 and "at most 1y, got '9999y'" in (await response.json())["error"]
    assert rows(hostile.db, "SELECT COUNT(*) FROM acks")[0][0] == 0


@pytest.mark.parametrize("raw", [False, True], ids=["escaped", "raw bytes"])
async def test_lone_surrogates_in_every_stored_string_are_kept_as_replacement_characters(
    hostile: Hostile, raw: bool
) -> None:
    sent = alert_payload("firing", hostile.fingerprint())
    stored = copy.deepcopy(sent)
    for n, path in enumerate(STORED_STRINGS):
        put(sent, path, f"{n}\ud800x\udfff😀")
        put(stored, path, f"{n}\ufffdx\ufffd😀")
    status, answer = await hostile.send(encode(sent, raw))
    assert (status, answer["new"]) == (200, 1)
    assert_stored(hostile.db, stored)


async def test_lone_surrogates_in_an_api_ack_are_kept_as_replacement_characters(hostile: Hostile) -> None:
    await hostile.send(encode(alert_payload("firing", hostile.fingerprint()), raw=False))
    body = json.dumps({"by": "al\udbffice", "comment": "on it \udc00😀"})
    response = await hostile.client.post("/api/v1/alerts/1/ack", data=body, headers=AUTH)
    assert response.status == 200 and (await response.json())["acked_by"] == "al\ufffdice"
    (ack,) = rows(hostile.db, "SELECT by, comment FROM acks")
    assert tuple(ack) == ("al\ufffdice", "on it \ufffd😀")


async def test_the_ack_form_stores_a_lone_surrogate_as_a_replacement_character_and_refuses_undecodable_ones(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    """Without contacts, a group link's form takes any name; UTF-7 is a charset that can carry a lone surrogate."""
    path = write_config(tmp_path, {"ops": "http://127.0.0.1:9/unused"}, QUIET)
    config = json.loads(path.read_text())
    del config["contacts"]
    path.write_text(json.dumps(config))
    receiver = Receiver(load_receiver_config(path), Settings(str(tmp_path / "h.db"), TOKEN), ManualClock(START))
    client = await aiohttp_client(make_app(receiver))
    await client.post("/webhook/oncall", data=encode(alert_payload("firing", "fp1"), raw=False), headers=AUTH)
    link = receiver.links.url(1, START).removeprefix(receiver.links.external_url)
    form = "application/x-www-form-urlencoded"
    for body, charset in ((b"by=\xff\xfe", "utf-8"), (b"by=x", "no-such-charset")):
        refused = await client.post(link, data=body, headers={"Content-Type": f"{form}; charset={charset}"})
        assert refused.status == 400 and "the form cannot be read" in (await refused.json())["error"]
    done = await client.post(link, data=b"by=+2AA-ann", headers={"Content-Type": f"{form}; charset=utf-7"})
    assert done.status == 200 and "acknowledged by \ufffdann" in await done.text()
    assert [tuple(r) for r in rows(tmp_path / "h.db", "SELECT by, via FROM acks")] == [("\ufffdann", "link")]


@pytest.mark.parametrize("time_field", ["startsAt", "endsAt"])
@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:59:59.999999+01:00"]
)
async def test_a_time_outside_what_the_history_holds_is_a_422_naming_the_field(
    hostile: Hostile, time_field: str, value: str
) -> None:
    body = alert_payload("firing", hostile.fingerprint())
    body["alerts"][0][time_field] = value
    status, answer = await hostile.send(encode(body, raw=False))
    assert status == 422
    assert answer["error"] == f"alerts[0].{time_field}: {value!r} is outside the years 0001 to 9999 in UTC"
    assert rows(hostile.db, "SELECT COUNT(*) FROM alerts")[0][0] == 0


async def test_the_last_moment_the_history_holds_is_accepted(hostile: Hostile) -> None:
    body = alert_payload("firing", hostile.fingerprint(), starts_at="9999-12-31T18:59:59.999999-05:00")
    status, _ = await hostile.send(encode(body, raw=False))
    assert status == 200
    assert rows(hostile.db, "SELECT starts_at FROM alerts")[0][0] == "9999-12-31T23:59:59.999999Z"


@pytest.mark.parametrize("chunked", [False, True], ids=["Content-Length", "chunked"])
async def test_a_body_over_the_limit_is_a_413_with_the_limit_however_it_is_sent(
    hostile: Hostile, chunked: bool
) -> None:
    body = alert_payload("firing", hostile.fingerprint())
    small = encode(body, raw=False)
    body["padding"] = "x" * LIMIT
    status, answer = await hostile.send(encode(body, raw=False), chunked=chunked)
    assert status == 413 and answer["error"] == f"body over the limit of {LIMIT} bytes"
    assert rows(hostile.db, "SELECT COUNT(*) FROM alerts")[0][0] == 0
    assert (await hostile.send(small, chunked=chunked))[0] == 200  # under the limit, sent the same way


async def test_a_token_that_is_not_utf8_is_a_401(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    """Sent as raw bytes: a client library would refuse to write such a header."""
    config = load_receiver_config(write_config(tmp_path, {"ops": "http://127.0.0.1:9/unused"}, QUIET))
    server = await aiohttp_server(make_app(Receiver(config, Settings(str(tmp_path / "h.db"), TOKEN), ManualClock())))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /webhook/oncall HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n{}"
    )
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 401 ") and b'"error": "wrong credentials' in answer


async def test_every_answer_is_counted_and_a_bug_is_a_logged_500(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Handlers added for the test raise what a bug or an outage would, through the real middleware."""
    config = load_receiver_config(write_config(tmp_path, {"ops": "http://127.0.0.1:9/unused"}, QUIET))
    receiver = Receiver(config, Settings(str(tmp_path / "h.db"), TOKEN, max_body_bytes=LIMIT), ManualClock(START))
    app = make_app(receiver)
    raised = {
        "bug": KeyError("a bug"),
        "misuse": sqlite3.InterfaceError("Error binding parameter 1"),
        "locked": sqlite3.OperationalError("database is locked"),
    }

    async def failing(request: web.Request) -> web.Response:
        raise raised[request.match_info["what"]]

    app.router.add_get("/test/{what}", failing)
    client = await aiohttp_client(app)
    good = encode(alert_payload("firing", "fp1"), raw=False)
    sent = [
        (client.post("/webhook/oncall", data=good, headers=AUTH), 200),
        (client.post("/webhook/oncall", data=b"{", headers=AUTH), 400),
        (client.post("/webhook/oncall", data=good), 401),
        (client.post("/webhook/nosuch", data=good, headers=AUTH), 404),
        (client.post("/webhook/oncall", data=good + b" " * LIMIT, headers=AUTH), 413),
        (client.post("/webhook/oncall", data=b"[]", headers=AUTH), 422),
        (client.get("/no/such/page"), 404),
        (client.get("/webhook/oncall", headers=AUTH), 405),
        (client.get("/test/bug"), 500),
        (client.get("/test/misuse"), 500),
        (client.get("/test/locked"), 503),
    ]
    with caplog.at_level(logging.ERROR, logger="amcompanion.http"):
        for request, status in sent:
            response = await request
            assert response.status == status
            assert status == 200 or "error" in await response.json()
    assert (await client.get("/webhook/oncall", headers=AUTH)).headers["Allow"] == "POST"
    tracebacks = [r for r in caplog.records if r.name == "amcompanion.http" and r.exc_info]
    assert [r.exc_info[0] for r in tracebacks] == [KeyError, sqlite3.InterfaceError]  # once each; an outage has none
    text = await (await client.get("/metrics")).text()
    for line in (
        'amcompanion_webhook_requests_total{code="200",policy="oncall"} 1.0',
        'amcompanion_webhook_requests_total{code="401",policy="oncall"} 1.0',
        'amcompanion_webhook_requests_total{code="404",policy=""} 1.0',
        'amcompanion_webhook_requests_total{code="413",policy="oncall"} 1.0',
        'amcompanion_http_requests_total{code="422",route="/webhook/{policy}"} 1.0',
        'amcompanion_http_requests_total{code="404",route=""} 1.0',  # no route matched
        'amcompanion_http_requests_total{code="405",route=""} 2.0',
        'amcompanion_http_requests_total{code="500",route="/test/{what}"} 2.0',
        'amcompanion_http_requests_total{code="503",route="/test/{what}"} 1.0',
    ):
        assert line in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert sum(s.value for s in families["amcompanion_http_requests"].samples if s.name.endswith("_total")) == 12
