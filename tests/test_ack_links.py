"""Acknowledgement links name the person they were sent to: a person's link acknowledges as that person, a
group's asks who among the contacts; their lifetime is the catalog's `receiver.ack_link_ttl`."""

import base64
import hashlib
import hmac
import json
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from amcompanion.catalog import load_catalog
from amcompanion.catalog.diagnostics import CatalogError
from amcompanion.emit.files import render_catalog
from amcompanion.receiver.app import make_app
from amcompanion.receiver.config import load_receiver_config
from amcompanion.receiver.service import Receiver, Settings
from amcompanion.receiver.timeutil import ManualClock
from tests.receiver_support import AUTH, TOKEN, payload, rows, write_config

START = datetime(2026, 11, 22, 22, 47, 30, tzinfo=UTC)
KEY = b"ack-link-test-key"
QUIET = {"steps": [{"after": "10m", "notify": [{"channel": "ops"}]}]}  # nothing is sent during a test


@dataclass
class Links:
    client: TestClient
    receiver: Receiver
    clock: ManualClock
    db: Path

    def path(self, recipient: str = "") -> str:
        """The path of a link to alert 1, as a message to `recipient` ('' a group) carries it now."""
        url = self.receiver.links.url(1, self.clock.now(), recipient=recipient)
        return url.removeprefix(self.receiver.links.external_url)

    def acks(self) -> list[tuple]:
        return [tuple(r) for r in rows(self.db, "SELECT by, via FROM acks ORDER BY id")]


def receiver_yaml(directory: Path, contacts: dict | None = None, **receiver_block: str) -> Path:
    """A receiver.yaml with the given contacts (default: alice, with a display name, and bob)."""
    path = write_config(directory, {"ops": "http://127.0.0.1:9/unused"}, QUIET)
    config = json.loads(path.read_text())
    if contacts is None:
        config["contacts"]["alice"]["name"] = "Alice Liddell"
    else:
        config["contacts"] = contacts
    config["receiver"].update(receiver_block)
    path.write_text(json.dumps(config))
    return path


async def start(directory: Path, aiohttp_client, config: Path, db: Path | str | None = None) -> Links:  # type: ignore[no-untyped-def]
    clock = ManualClock(START)
    db = directory / "history.db" if db is None else db
    settings = Settings(str(db), TOKEN, ack_key=KEY)
    receiver = Receiver(load_receiver_config(config), settings, clock)
    client = await aiohttp_client(make_app(receiver))
    assert (await client.post("/webhook/oncall", json=payload("firing"), headers=AUTH)).status == 200
    return Links(client, receiver, clock, db)


@pytest.fixture
async def links(tmp_path: Path, history_db: Path | str, aiohttp_client) -> Links:  # type: ignore[no-untyped-def]
    return await start(tmp_path, aiohttp_client, receiver_yaml(tmp_path), history_db)


# -- whose link ---------------------------------------------------------------------------------------------
async def test_a_personal_link_acknowledges_as_its_recipient_whatever_the_form_says(links: Links) -> None:
    path = links.path("alice")
    page = await (await links.client.get(path)).text()
    assert "Acknowledge as Alice Liddell</button>" in page and "name='by'" not in page
    assert links.acks() == []  # the page changes nothing
    done = await links.client.post(path, data={"by": "mallory"})
    assert done.status == 200 and "acknowledged by Alice Liddell" in await done.text()
    assert links.acks() == [("alice", "link")]


async def test_a_personal_link_to_a_contact_without_a_display_name_names_the_contact(links: Links) -> None:
    assert "Acknowledge as bob</button>" in await (await links.client.get(links.path("bob"))).text()


async def test_a_group_link_offers_the_contacts_and_refuses_a_stranger(links: Links) -> None:
    path = links.path()
    page = await (await links.client.get(path)).text()
    assert "<option value='alice'>Alice Liddell</option><option value='bob'>bob</option></select>" in page
    assert "<input" not in page
    for offered, why in (("mallory", "“mallory” is not a contact of this receiver"), ("", "No name given")):
        refused = await links.client.post(path, data={"by": offered})
        assert refused.status == 422 and why in await refused.text()
    assert links.acks() == []
    done = await links.client.post(path, data={"by": "bob"})
    assert done.status == 200 and "acknowledged by bob" in await done.text()
    assert links.acks() == [("bob", "link")]


async def test_a_group_link_without_contacts_takes_a_typed_name_cut_to_100_characters(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    links = await start(tmp_path, aiohttp_client, receiver_yaml(tmp_path, contacts={}))
    path = links.path()
    assert "<input name='by'" in await (await links.client.get(path)).text()
    assert (await links.client.post(path, data={"by": "x" * 150})).status == 200
    assert links.acks() == [("x" * 100, "link")]


async def test_a_link_of_the_old_three_part_form_still_works_as_a_group_link(links: Links) -> None:
    """The tokens sent before recipients were signed: `alert.expires.signature`, HMAC-SHA256 cut to 18 bytes."""
    signed = f"1.{int((START + timedelta(hours=24)).timestamp())}"
    signature = base64.urlsafe_b64encode(hmac.new(KEY, signed.encode(), hashlib.sha256).digest()[:18]).decode()
    path = f"/ack/{signed}.{signature}"
    assert "<select name='by'" in await (await links.client.get(path)).text()
    assert (await links.client.post(path, data={"by": "alice"})).status == 200
    assert links.acks() == [("alice", "link")]


async def test_a_link_whose_recipient_was_changed_or_removed_is_refused(links: Links) -> None:
    alert, expires, recipient, signature = links.path("alice").removeprefix("/ack/").split(".")
    assert base64.urlsafe_b64decode(recipient + "==") == b"alice"
    bob = base64.urlsafe_b64encode(b"bob").decode().rstrip("=")
    for token in (f"{alert}.{expires}.{bob}.{signature}", f"{alert}.{expires}.{signature}"):
        for method in (links.client.get, links.client.post):
            refused = await method(f"/ack/{token}")
            assert refused.status == 403 and "signature does not match" in await refused.text()
    assert links.acks() == []


# -- how long a link works ---------------------------------------------------------------------------------------
async def test_ack_link_ttl_from_the_config_is_how_long_a_link_works_also_after_a_reload(
    tmp_path: Path,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    links = await start(tmp_path, aiohttp_client, receiver_yaml(tmp_path, ack_link_ttl="2h"))

    async def works_for(path: str, seconds: int) -> None:
        await links.clock.advance(seconds)
        assert (await links.client.get(path)).status == 200  # to the second
        await links.clock.advance(1)
        expired = await links.client.get(path)
        assert expired.status == 403 and "expired" in await expired.text()

    await works_for(links.path("alice"), 2 * 3600)
    (tmp_path / "reloaded").mkdir()
    links.receiver.reload(load_receiver_config(receiver_yaml(tmp_path / "reloaded", ack_link_ttl="30m")))
    await works_for(links.path("alice"), 30 * 60)


def write_catalog(root: Path, receiver_block: str) -> Path:
    (root / "rulesets").mkdir(parents=True, exist_ok=True)
    (root / "rulesets" / "a.yaml").write_text(
        "version: 1\n" + textwrap.dedent(receiver_block) + "groups:\n  - name: g\n    alerts:\n"
        "      - {alert: Down, expr: up == 0, severity: critical, summary: down}\n"
    )
    return root / "rulesets"


def test_compile_writes_ack_link_ttl_into_receiver_yaml_only_when_the_catalog_sets_it(tmp_path: Path) -> None:
    for ttl, expected in (("90m", timedelta(minutes=90)), (None, timedelta(hours=24))):
        line = f"  ack_link_ttl: {ttl}\n" if ttl else ""
        root = write_catalog(tmp_path / str(ttl), f"receiver:\n  url: http://amcompanion:8080\n{line}")
        text = render_catalog(load_catalog(root), jobs=1)[0]["receiver/receiver.yaml"]
        assert ("ack_link_ttl" in text) == (ttl is not None)  # a catalog without it compiles as before
        written = tmp_path / str(ttl) / "receiver.yaml"
        written.write_text(text)
        assert load_receiver_config(written).ack_link_ttl == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", 'expected a duration such as 30s, 5m or 1h30m, got "soon"'),
        ("30s", 'expected a duration from 1m to 1y, got "30s"'),
        ("2y", 'expected a duration from 1m to 1y, got "2y"'),
    ],
)
def test_a_bad_ack_link_ttl_is_an_error_at_its_file_line_and_column(tmp_path: Path, value: str, message: str) -> None:
    root = write_catalog(tmp_path, f"receiver:\n  url: http://amcompanion:8080\n  ack_link_ttl: {value}\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(root)
    assert [str(d) for d in caught.value.diagnostics] == [f"rulesets/a.yaml:4:17: receiver.ack_link_ttl: {message}"]
    config = tmp_path / "receiver.yaml"  # the receiver reads its config with the same rules
    config.write_text(f"version: 1\nreceiver:\n  url: http://x:8080\n  ack_link_ttl: {value}\nescalations: {{}}\n")
    with pytest.raises(CatalogError) as caught:
        load_receiver_config(config)
    assert [str(d) for d in caught.value.diagnostics] == [f"{config}:4:17: receiver.ack_link_ttl: {message}"]


# -- twice ---------------------------------------------------------------------------------------------------
async def test_acknowledging_twice_keeps_the_first_ack_and_says_so(links: Links) -> None:
    first = await (await links.client.post("/api/v1/alerts/1/ack", json={"by": "alice"}, headers=AUTH)).json()
    assert first["already_acknowledged"] is False
    await links.clock.advance(60)
    again = await links.client.post("/api/v1/alerts/1/ack", json={"by": "bob", "silence": "1h"}, headers=AUTH)
    body = await again.json()
    assert again.status == 200 and body["already_acknowledged"] is True
    assert (body["acked_by"], body["acked_at"]) == ("alice", "2026-11-22T22:47:30.000000Z")
    assert body["silence_id"] is None and "silence_error" not in body  # nothing new happens to the alert
    already = "Already acknowledged by alice at 2026-11-22 22:47:30 UTC."
    assert already in await (await links.client.get(links.path("bob"))).text()
    by_link = await links.client.post(links.path("bob"))
    assert by_link.status == 200 and already in await by_link.text()
    assert links.acks() == [("alice", "api")]
    metrics = await (await links.client.get("/metrics")).text()
    assert 'amcompanion_acks_total{via="api"} 1.0' in metrics and 'via="link"' not in metrics
