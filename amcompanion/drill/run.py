"""Run a drill: post the synthetic alert to Alertmanager (API v2), then follow it through the receiver's API —
recorded, each first-step page delivered (with the channel's answer), optionally acknowledged — and resolve it.

Each hop's time is counted from the moment the drill was posted, by the receiver's own clock for what the
receiver did (the same clock, when both run on one machine, as in tests; across machines, their skew shows)."""

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

import aiohttp

from amcompanion.drill.labels import ID_LABEL, summary
from amcompanion.drill.plan import Target
from amcompanion.receiver.timeutil import iso, parse_iso

POLL_S = 0.25
T = TypeVar("T")
Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class Endpoints:
    alertmanager: str
    receiver: str
    token: str | None  # the receiver's bearer token (its API and its webhook)


@dataclass
class Hop:
    what: str  # "Alertmanager", "receiver", "<channel> → <recipient>", "acknowledged"
    ok: bool
    after_s: float | None  # since the drill was posted
    detail: str


@dataclass
class Outcome:
    policy: str
    status: Status
    why: str  # one line: what failed, why it was skipped, or what passed
    labels: dict[str, str] = field(default_factory=dict)
    route: str = ""
    alert_id: int | None = None
    hops: list[Hop] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Waits:
    delivery_s: float = 120.0  # from the post to every first-step page answered (Alertmanager's group_wait included)
    ack_s: float = 900.0  # for someone to acknowledge, with --wait-ack
    poll_s: float = POLL_S


class DrillFailed(Exception):
    """A hop did not happen in time, or was refused: the drill of that policy fails with this reason."""


async def _until(look: Callable[[], Awaitable[T | None]], seconds: float, poll_s: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while True:
        found = await look()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise DrillFailed(f"{what} within {seconds:g} s")
        await asyncio.sleep(poll_s)


class Drill:
    """One policy's drill, on a shared client session."""

    def __init__(self, session: aiohttp.ClientSession, endpoints: Endpoints, target: Target, waits: Waits):
        self.session, self.endpoints, self.target, self.waits = session, endpoints, target, waits
        self.run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        self.labels = {**target.labels, ID_LABEL: self.run_id}
        self.posted = datetime.now(UTC)
        self.outcome = Outcome(target.policy, "failed", "", self.labels, target.route)

    @property
    def _headers(self) -> dict[str, str]:
        token = self.endpoints.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _since_post(self, stamp: str | None) -> float | None:
        return round((parse_iso(stamp) - self.posted).total_seconds(), 3) if stamp else None

    def _alert(self, ends: datetime) -> dict:
        return {
            "labels": self.labels,
            "annotations": {
                "summary": summary(self.target.policy, "a drill"),
                "description": "Sent by `amcompanion drill` to prove that pages reach this policy's first step;"
                " it resolves the alert when done.",
            },
            "startsAt": iso(self.posted),
            "endsAt": iso(ends),
            "generatorURL": "",
        }

    async def _post_alert(self, ends: datetime) -> None:
        """To Alertmanager, or, in quiet hours with --loud, to the receiver as Alertmanager would."""
        alert = self._alert(ends)
        if self.target.muted is None:
            url, body = f"{self.endpoints.alertmanager}/api/v2/alerts", [alert]
        else:
            firing = ends > datetime.now(UTC)
            url = f"{self.endpoints.receiver}/webhook/{self.target.policy}"
            body = {  # Alertmanager's webhook payload, version 4
                "version": "4",
                "groupKey": f'{{}}:{{drill_id="{self.run_id}"}}',
                "truncatedAlerts": 0,
                "status": "firing" if firing else "resolved",
                "receiver": self.target.policy,
                "groupLabels": {ID_LABEL: self.run_id},
                "commonLabels": self.labels,
                "commonAnnotations": alert["annotations"],
                "externalURL": "",
                "alerts": [{**alert, "status": "firing" if firing else "resolved", "fingerprint": self.run_id}],
            }
        async with self.session.post(url, json=body, headers=self._headers if self.target.muted else {}) as response:
            if response.status >= 300:
                text = (await response.text()).strip()[:300]
                raise DrillFailed(f"{url} answered HTTP {response.status}: {text}")

    async def _get(self, path: str) -> dict:
        async with self.session.get(f"{self.endpoints.receiver}{path}", headers=self._headers) as response:
            if response.status in (401, 403):
                raise DrillFailed(f"the receiver refused the API token (HTTP {response.status}): give --token-file")
            if response.status >= 300:
                raise DrillFailed(f"the receiver answered HTTP {response.status} for {path}")
            return await response.json()

    async def _recorded(self) -> dict | None:
        listing = await self._get("/api/v1/alerts?limit=500")
        return next((a for a in listing["alerts"] if a["labels"].get(ID_LABEL) == self.run_id), None)

    async def _first_step_answered(self, alert_id: int) -> dict | None:
        alert = await self._get(f"/api/v1/alerts/{alert_id}")
        pages = [n for n in alert["notifications"] if n["kind"] == "firing" and n["step"] == 1]
        if alert["escalation_level"] < 1 or any(n["status"] == "queued" for n in pages):
            return None
        return alert

    async def _acknowledged(self, alert_id: int) -> dict | None:
        alert = await self._get(f"/api/v1/alerts/{alert_id}")
        return alert if alert["acked_at"] else None

    def _hop(self, what: str, ok: bool, after_s: float | None, detail: str) -> None:
        self.outcome.hops.append(Hop(what, ok, after_s, detail))

    async def run(self, wait_ack: bool) -> Outcome:
        waits = replace(self.waits, delivery_s=self.waits.delivery_s + self.target.held_s)
        longest = waits.delivery_s + (waits.ack_s if wait_ack else 0.0)
        try:
            await self._post_alert(self.posted + timedelta(seconds=longest + 60))  # it ends even if we stop
            if self.target.muted is None:
                self._hop("Alertmanager", True, 0.0, f"accepted the drill alert ({self.endpoints.alertmanager})")
            else:
                self._hop("receiver", True, 0.0, f"sent straight to the receiver: quiet hours ({self.target.muted})"
                          " mute the route in Alertmanager, and --loud drills anyway")  # fmt: skip
            found = await _until(self._recorded, waits.delivery_s, waits.poll_s, "the receiver did not record it")
            self.outcome.alert_id = found["id"]
            self._hop(
                "receiver", True, self._since_post(found["first_notice_at"]), f"recorded it as alert {found['id']}"
            )
            left = max(waits.delivery_s - (datetime.now(UTC) - self.posted).total_seconds(), waits.poll_s)
            alert = await _until(
                lambda: self._first_step_answered(found["id"]), left, waits.poll_s, "step 1 was not answered"
            )
            self._pages(alert)
            if wait_ack:
                acked = await _until(
                    lambda: self._acknowledged(found["id"]), waits.ack_s, waits.poll_s, "nobody acknowledged it"
                )
                ack = acked["acks"][-1] if acked["acks"] else {"by": acked["acked_by"], "via": "?"}
                self._hop("acknowledged", True, self._since_post(acked["acked_at"]), f"by {ack['by']} via {ack['via']}")
        except DrillFailed as exc:
            self.outcome.status, self.outcome.why = "failed", str(exc)
        except (aiohttp.ClientError, OSError, TimeoutError, json.JSONDecodeError, KeyError) as exc:
            self.outcome.status, self.outcome.why = "failed", f"{type(exc).__name__}: {exc}".rstrip(": ")
        finally:
            await self._resolve()
        if not self.outcome.why:
            self.outcome.status = "passed"
            pages = sum(1 for hop in self.outcome.hops if "→" in hop.what or hop.what.startswith("channel "))
            self.outcome.why = f"{pages} first-step page{'s' if pages != 1 else ''} delivered" + (
                ", acknowledged" if wait_ack else ""
            )
        return self.outcome

    def _pages(self, alert: dict) -> None:
        """A hop per first-step page, with the channel's answer (or its error); any failed page fails the drill."""
        answers = {
            (e["channel"], e["recipient"]): e.get("answer", "")
            for e in alert.get("event_log", [])
            if e["type"] == "notification.sent" and e.get("kind") == "firing"
        }
        pages = [n for n in alert["notifications"] if n["kind"] == "firing" and n["step"] == 1]
        if not pages:
            raise DrillFailed("step 1 sent nothing (no channel, or its schedules named nobody)")
        failed = []
        for page in pages:
            where = f"{page['channel']} → {page['recipient']}" if page["recipient"] else f"channel {page['channel']}"
            tries = f"{page['attempts']} {'try' if page['attempts'] == 1 else 'tries'}"
            if page["status"] == "sent":
                answer = answers.get((page["channel"], page["recipient"]), "") or "sent"
                self._hop(where, True, self._since_post(page["sent_at"]), f"delivered: {answer} ({tries})")
            else:
                self._hop(where, False, None, f"{page['status']}: {page['error'] or 'no reason recorded'} ({tries})")
                failed.append(where)
        if failed:
            raise DrillFailed(f"not delivered: {', '.join(failed)}")

    async def _resolve(self) -> None:
        """End the drill alert (Alertmanager tells the receiver at its next group interval)."""
        try:
            await self._post_alert(max(datetime.now(UTC), self.posted + timedelta(milliseconds=1)))
        except (DrillFailed, aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._hop("resolve", False, None, f"could not resolve the drill alert: {exc}")


async def run_drills(
    endpoints: Endpoints, targets: list[Target], wait_ack: bool, waits: Waits, timeout_s: float = 10.0
) -> list[Outcome]:
    """Every policy's drill at once (each its own alert and group)."""
    client_timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        return list(await asyncio.gather(*(Drill(session, endpoints, t, waits).run(wait_ack) for t in targets)))
