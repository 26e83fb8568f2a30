"""The receiver's runtime config: the `receiver/receiver.yaml` that `amcompanion compile` writes.

Its contacts, channels and escalation policies have the catalog's own shape, so the catalog reader
validates them (same messages, `file:line:column`); `${VAR}`s are then filled from the environment.
"""

import functools
import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import yaml_rs

from amcompanion.catalog.diagnostics import CatalogError, Diagnostic, KeyPath, locate, syntax_error
from amcompanion.catalog.model import Person, Policy, Schedule
from amcompanion.catalog.reader import SECRET_FIELDS, CatalogReader, FileReader
from amcompanion.catalog.schedules import read_schedules
from amcompanion.history.schema import DEFAULT_SLA

TOP_LEVEL = ("version", "receiver", "severities", "contacts", "channels", "escalations", "schedules", "sla")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DEFAULT_ACK_LINK_TTL = timedelta(hours=24)  # the catalog's receiver.ack_link_ttl when it is not set


@dataclass
class ReceiverConfig:
    external_url: str
    bearer_token_file: str | None
    severities: list[str]
    contacts: dict[str, dict[str, str]]
    channels: dict[str, dict[str, object]]  # settings by channel name, `${VAR}`s filled in
    policies: dict[str, Policy]
    sla: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_SLA))  # (ack, resolve) seconds
    source: str = ""
    secrets: list[str] = field(default_factory=list)  # values filled in from the environment: never logged
    ack_link_ttl: timedelta = DEFAULT_ACK_LINK_TTL  # how long an ack link works after its message is sent
    schedules: dict[str, Schedule] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)  # by contact; a contact not here is a responder
    token_owners: dict[str, str] = field(default_factory=dict)  # SHA-256 (hex) of a personal token → contact
    trusted_proxies: list[str] = field(default_factory=list)  # networks whose user headers name the person
    user_header: str = "X-Forwarded-User"
    email_header: str = "X-Forwarded-Email"

    def role(self, contact: str) -> str:
        return self.people.get(contact, Person()).role


def load_receiver_config(path: Path, environ: Mapping[str, str] | None = None) -> ReceiverConfig:
    """Read and validate the file; raise CatalogError with every problem found."""
    environ = os.environ if environ is None else environ
    display = str(path)  # as the user gave it
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([Diagnostic(display, (), f"cannot read the receiver config: {exc.strerror}")]) from None
    try:
        data = yaml_rs.loads(text)
    except (yaml_rs.YAMLDecodeError, ValueError):
        raise CatalogError([syntax_error(text, display)]) from None
    reader = CatalogReader(path.parent.name)
    r = FileReader(display, reader.diags)
    top = r.mapping(data, (), TOP_LEVEL, ("version", "escalations"), what="top-level key") or {}
    if "version" in top and top["version"] != 1:
        r.error(("version",), f"unsupported receiver config version {top['version']!r} (this amcompanion reads 1)")
    if "receiver" in top:
        reader.read_receiver(r, top["receiver"], ("receiver",))
    for key, read in (
        ("contacts", reader.read_contacts),
        ("channels", reader.read_channels),
        ("escalations", reader.read_policies),
        ("schedules", functools.partial(read_schedules, reader)),
    ):
        if top.get(key) is not None:
            read(r, top[key], (key,))
    severities = r.string_list(top.get("severities", ["info", "warning", "critical"]), ("severities",))
    reader.defaults.severities = severities
    sla = reader.read_sla(r, top["sla"], ("sla",)) if "sla" in top else None
    reader.check_references()
    reader.check_recipients()
    secrets: list[str] = []
    channels = {
        name: _fill(r, settings, ("channels", name), environ, secrets) for name, settings in reader.channels.items()
    }
    token_owners = _token_owners(r, reader, environ, secrets)
    if reader.diags.items:
        raise CatalogError(locate(reader.diags.items, path.parent, str(path.parent)))
    receiver = reader.receiver
    ttl_ms = receiver.ack_link_ttl_ms
    return ReceiverConfig(
        external_url=(receiver.external_url or receiver.url).rstrip("/"),
        bearer_token_file=receiver.bearer_token_file,
        severities=severities,
        contacts=reader.contacts,
        channels=channels,
        policies=reader.policies,
        sla=DEFAULT_SLA if sla is None else {s: (ack // 1000, resolve // 1000) for s, (ack, resolve) in sla.items()},
        source=str(path),
        secrets=_masked_values(secrets, channels),
        ack_link_ttl=DEFAULT_ACK_LINK_TTL if ttl_ms is None else timedelta(milliseconds=ttl_ms),
        schedules=reader.schedules,
        people=reader.people,
        token_owners=token_owners,
        trusted_proxies=receiver.trusted_proxies,
        user_header=receiver.user_header,
        email_header=receiver.email_header,
    )


def token_digest(token: str) -> str:
    """How a personal token is kept: its SHA-256, so the config and memory never hold the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def _token_owners(
    r: FileReader, reader: CatalogReader, environ: Mapping[str, str], secrets: list[str]
) -> dict[str, str]:
    """Each personal token's digest → its contact: from `token_sha256`, or hashed from the `token_env` variable."""
    owners: dict[str, str] = {}
    for contact, person in reader.people.items():
        digest = person.token_sha256
        if person.token_env:
            token = environ.get(person.token_env, "").strip()
            if not token:
                r.error(("contacts", contact, "token_env"), f"environment variable {person.token_env} is not set")
                continue
            secrets.append(token)
            digest = token_digest(token)
        if digest is None:
            continue
        if digest in owners:
            r.error(("contacts", contact), f"has the same token as {owners[digest]}: each person needs their own")
        owners[digest] = contact
    return owners


class LenientEnvironment(Mapping[str, str]):
    """The environment for reading a config without its secrets (`channels list`): a variable that is not set
    reads as a placeholder, and is noted in `unset`."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ
        self.unset: list[str] = []

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __getitem__(self, name: str) -> str:
        if name in self.environ:
            return self.environ[name]
        if name not in self.unset:
            self.unset.append(name)
        return f"<{name} not set>"

    def unset_in(self, value: object) -> list[str]:
        """The variables not set that `value` (a channel's filled-in settings) was written with."""
        text = repr(value)
        return [name for name in self.unset if f"<{name} not set>" in text]

    def __iter__(self) -> Iterator[str]:
        return iter(self.environ)

    def __len__(self) -> int:
        return len(self.environ)


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (longest first, as `ReceiverConfig.secrets` are) replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


SENSITIVE_SETTINGS = ("url", "token", "key", "headers", *SECRET_FIELDS)


def _masked_values(from_environment: list[str], channels: dict[str, dict[str, object]]) -> list[str]:
    """What log lines and stored errors must never show: every value filled from the environment, and the
    credential-bearing settings even when written literally (robot URLs carry their token in the path or
    the query). Longest first, so a URL is masked whole before any part of it; never the empty string."""
    values = set(from_environment)
    for settings in channels.values():
        for key in SENSITIVE_SETTINGS:
            value = settings.get(key)
            if isinstance(value, dict):
                values.update(str(v) for v in value.values())
            elif isinstance(value, str):
                values.add(value)
                if key == "url":
                    parts = urlsplit(value)
                    values.update(
                        p for p in (parts.path + ("?" + parts.query if parts.query else ""), parts.query) if len(p) > 1
                    )
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def _fill(
    r: FileReader, settings: dict[str, object], path: KeyPath, environ: Mapping[str, str], secrets: list[str]
) -> dict[str, object]:
    """Settings with every `${VAR}` replaced from the environment; a variable that is not set is an error."""

    def fill(value: object, where: KeyPath) -> object:
        if isinstance(value, dict):
            return {k: fill(v, (*where, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, (*where, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name not in environ:
                r.error(where, f"environment variable {name} is not set")
                return ""
            secrets.append(environ[name])
            return environ[name]

        return _VARIABLE.sub(substitute, value)

    return {key: fill(value, (*path, key)) for key, value in settings.items()}
