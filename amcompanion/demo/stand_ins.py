"""A stand-in for every channel of the demo: the fakes of amcompanion.fakes, each a real server on 127.0.0.1
built from its channel's filled-in settings, so it expects exactly the tokens and secrets the channel sends."""

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from amcompanion.demo.daemons import free_port, reserve, serve_app
from amcompanion.fakes import Shown
from amcompanion.fakes.dingtalk import FakeDingTalk
from amcompanion.fakes.discord import FakeDiscord
from amcompanion.fakes.feishu import FakeFeishu, FeishuBot
from amcompanion.fakes.slack import FakeSlack
from amcompanion.fakes.smtp import FakeSMTP
from amcompanion.fakes.teams import FakeTeams
from amcompanion.fakes.telegram import FakeTelegram
from amcompanion.fakes.twilio import FakeTwilio
from amcompanion.fakes.wecom import FakeWeCom

Settings = Mapping[str, object]
Contacts = Mapping[str, Mapping[str, str]]


def _query(settings: Settings, key: str) -> str:
    return parse_qs(urlsplit(str(settings["url"])).query).get(key, [""])[0]


def _path(settings: Settings) -> list[str]:
    return urlsplit(str(settings["url"])).path.strip("/").split("/")


def _telegram(settings: Settings, contacts: Contacts, port: int) -> FakeTelegram:
    chats = {str(settings["chat_id"])} | {c["telegram_chat_id"] for c in contacts.values() if "telegram_chat_id" in c}
    return FakeTelegram(token=str(settings["bot_token"]), chats=chats)


def _twilio(settings: Settings, contacts: Contacts, port: int) -> FakeTwilio:
    return FakeTwilio(account_sid=str(settings["account_sid"]), auth_token=str(settings["auth_token"]))


def _smtp(settings: Settings, contacts: Contacts, port: int) -> FakeSMTP:
    """A relay that wants the channel's login when it has one (AUTH in plain text: it is loopback)."""
    username, password = settings.get("username"), settings.get("password")
    return FakeSMTP(str(username) if username else None, str(password) if password else None, port=port)


# channel type → the fake that stands in for the service, from the channel's settings and the contacts
BUILDERS: dict[str, Callable[[Settings, Contacts, int], object]] = {
    "dingtalk": lambda s, c, p: FakeDingTalk(token=_query(s, "access_token"), secret=str(s.get("secret") or "")),
    "wecom": lambda s, c, p: FakeWeCom(key=_query(s, "key")),
    "feishu": lambda s, c, p: FakeFeishu(bots=[FeishuBot(token=_path(s)[-1], secret=str(s.get("secret") or ""))]),
    "slack": lambda s, c, p: FakeSlack(hooks={"/".join(_path(s)[-3:])}),
    "discord": lambda s, c, p: FakeDiscord(webhook_id=_path(s)[-2], token=_path(s)[-1]),
    "teams": lambda s, c, p: FakeTeams(workflow=_path(s)[-5], signature=_query(s, "sig")),
    "telegram": _telegram,
    "twilio_sms": _twilio,
    "twilio_voice": _twilio,
    "email": _smtp,
}
LABELS = {
    "dingtalk": "DingTalk",
    "wecom": "WeCom",
    "feishu": "Feishu",
    "slack": "Slack",
    "discord": "Discord",
    "teams": "Teams",
    "telegram": "Telegram",
    "twilio_sms": "Twilio SMS",
    "twilio_voice": "Twilio voice",
    "email": "email",
}


class Unsupported(Exception):
    pass


def base_url(channel_type: str, port: int) -> str:
    """Where the channel's stand-in listens, as the channel's `base_url` setting."""
    if channel_type not in BUILDERS:
        raise Unsupported(
            f'channels of type "{channel_type}" have no stand-in, and the demo sends nothing off this machine '
            f"(it has stand-ins for: {', '.join(BUILDERS)})"
        )
    return f"{'smtp' if channel_type == 'email' else 'http'}://127.0.0.1:{port}"


@dataclass
class StandIn:
    channel: str
    type: str
    port: int
    fake: object  # has shown()
    listening: socket.socket | None = None  # its port, reserved (daemons.reserve); the SMTP stand-in binds its own
    _runner: web.AppRunner | None = None

    @property
    def label(self) -> str:
        return f"{LABELS[self.type]} {self.channel}"

    def shown(self) -> list[Shown]:
        return self.fake.shown()  # type: ignore[attr-defined]

    async def start(self) -> None:
        if isinstance(self.fake, FakeSMTP):
            self.fake.__enter__()
            return
        app = self.fake.app if isinstance(self.fake, FakeTwilio) else self.fake.app()  # type: ignore[attr-defined]
        assert self.listening is not None, "an HTTP stand-in serves on a reserved socket"
        self._runner = await serve_app(app, self.listening)

    async def stop(self) -> None:
        if isinstance(self.fake, FakeSMTP):
            self.fake.__exit__()
        elif self._runner is not None:
            await self._runner.cleanup()


def place(channel_type: str) -> tuple[int, socket.socket | None]:
    """Where a stand-in of this type will listen: its port, and the socket reserved for it (daemons.reserve), so the
    port stays free between the compile that names it and the start; the SMTP stand-in binds its own (no socket)."""
    if channel_type == "email":
        return free_port(), None
    listening = reserve()
    return int(listening.getsockname()[1]), listening


def stand_in(
    channel: str, settings: Settings, contacts: Contacts, port: int, listening: socket.socket | None = None
) -> StandIn:
    kind = str(settings["type"])
    return StandIn(channel, kind, port, BUILDERS[kind](settings, contacts, port), listening)
