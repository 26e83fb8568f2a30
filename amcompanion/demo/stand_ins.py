"""A stand-in for every channel of the demo: the fakes of amcompanion.fakes, each a real server on 127.0.0.1
built from its channel's filled-in settings, so it expects exactly the tokens and secrets the channel sends."""

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from amcompanion.demo.daemons import free_port, reserve, serve_app
from amcompanion.fakes import Shown
from amcompanion.fakes.aliyun import FakeAliyun
from amcompanion.fakes.dingtalk import FakeDingTalk
from amcompanion.fakes.discord import FakeDiscord
from amcompanion.fakes.feishu import FakeFeishu, FeishuBot
from amcompanion.fakes.feishu_app import FakeFeishuApp, FeishuUser
from amcompanion.fakes.pagerduty import FakePagerDuty
from amcompanion.fakes.slack import FakeSlack
from amcompanion.fakes.slack_app import FakeSlackApp
from amcompanion.fakes.smtp import FakeSMTP
from amcompanion.fakes.teams import FakeTeams
from amcompanion.fakes.telegram import FakeTelegram
from amcompanion.fakes.tencent import FakeTencent
from amcompanion.fakes.twilio import FakeTwilio
from amcompanion.fakes.wecom import FakeWeCom
from amcompanion.fakes.wecom_app import FakeWeComApp

Settings = Mapping[str, object]
SLACK_ACK = "amcompanion_ack"  # the action id of the Acknowledge button amcompanion's Slack messages carry
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


def _wecom_app(settings: Settings, contacts: Contacts, port: int) -> FakeWeComApp:
    """The app as configured: the contacts' WeCom ids are its members, the channel's departments and tags exist."""

    def ids(key: str) -> dict[str, list[str]]:
        return {part.strip(): [] for part in str(settings.get(key) or "").split("|") if part.strip()}

    agent = str(settings["agent_id"]).strip()
    return FakeWeComApp(
        corp_id=str(settings["corp_id"]),
        corp_secret=str(settings["corp_secret"]),
        agent_id=int(agent) if agent.isdigit() else 0,
        users={c["wecom_user_id"] for c in contacts.values() if c.get("wecom_user_id")} or None,
        parties=ids("toparty"),
        tags=ids("totag"),
    )


def _slack_app(settings: Settings, contacts: Contacts, port: int) -> FakeSlackApp:
    """The app's bot, a member of the channel it posts to; the contacts with a Slack id are the workspace's members."""
    users = {c["slack_user_id"]: name for name, c in contacts.items() if "slack_user_id" in c}
    return FakeSlackApp(bot_token=str(settings["bot_token"]), joined={str(settings["channel"])}, users=users)


def _feishu_app(settings: Settings, contacts: Contacts, port: int) -> FakeFeishuApp:
    """The app with the channel's credentials, its bot in the channel's group, the contacts with a Feishu id as
    members of the tenant (a contact known only by user_id gets an open_id made up from its name)."""
    users = [
        FeishuUser(c.get("feishu_open_id") or f"ou_{name}", c.get("feishu_user_id", ""), name)
        for name, c in contacts.items()
        if c.get("feishu_open_id") or c.get("feishu_user_id")
    ]
    return FakeFeishuApp(
        app_id=str(settings["app_id"]),
        app_secret=str(settings["app_secret"]),
        verification_token=str(settings.get("verification_token") or ""),
        encrypt_key=str(settings.get("encrypt_key") or ""),
        users=users,
        chats={str(settings["chat_id"])} if settings.get("chat_id") else set(),
    )


# channel type → the fake that stands in for the service, from the channel's settings and the contacts
BUILDERS: dict[str, Callable[[Settings, Contacts, int], object]] = {
    "dingtalk": lambda s, c, p: FakeDingTalk(token=_query(s, "access_token"), secret=str(s.get("secret") or "")),
    "wecom": lambda s, c, p: FakeWeCom(key=_query(s, "key")),
    "feishu": lambda s, c, p: FakeFeishu(bots=[FeishuBot(token=_path(s)[-1], secret=str(s.get("secret") or ""))]),
    "slack": lambda s, c, p: FakeSlack(hooks={"/".join(_path(s)[-3:])}),
    "discord": lambda s, c, p: FakeDiscord(webhook_id=_path(s)[-2], token=_path(s)[-1]),
    "teams": lambda s, c, p: FakeTeams(workflow=_path(s)[-5], signature=_query(s, "sig")),
    "telegram": _telegram,
    "pagerduty": lambda s, c, p: FakePagerDuty(routing_keys={str(s["routing_key"])}),
    "wecom_app": _wecom_app,
    "slack_app": _slack_app,
    "feishu_app": _feishu_app,
    "twilio_sms": _twilio,
    "twilio_voice": _twilio,
    "aliyun_sms": lambda s, c, p: FakeAliyun.from_settings(s),
    "aliyun_voice": lambda s, c, p: FakeAliyun.from_settings(s),
    "tencent_sms": lambda s, c, p: FakeTencent.for_channel(s),
    "tencent_voice": lambda s, c, p: FakeTencent.for_channel(s),
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
    "pagerduty": "PagerDuty",
    "wecom_app": "WeCom app",
    "slack_app": "Slack app",
    "feishu_app": "Feishu app",
    "twilio_sms": "Twilio SMS",
    "twilio_voice": "Twilio voice",
    "aliyun_sms": "Aliyun SMS",
    "aliyun_voice": "Aliyun voice",
    "tencent_sms": "Tencent SMS",
    "tencent_voice": "Tencent voice",
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


async def press_acknowledge(
    stand: StandIn, session: aiohttp.ClientSession, receiver_url: str, people: list[str], contacts: Contacts,
    settings: Settings,
) -> tuple[str, int] | None:  # fmt: skip
    """Press Acknowledge on the newest message that still has the button, as the chat service would (a signed call
    to the receiver), for the first of `people` the chat knows: (who pressed, the HTTP status of the receiver's
    answer); None when this stand-in's messages have no such button or the chat knows none of them."""
    fake = stand.fake
    if isinstance(fake, FakeSlackApp):
        person = next((p for p in people if contacts.get(p, {}).get("slack_user_id")), None)
        pressable = fake.pressable(SLACK_ACK)
        if person is None or not pressable:
            return None
        user, secret = contacts[person]["slack_user_id"], str(settings["signing_secret"])
        status, _ = await fake.click(
            session, f"{receiver_url}/slack/interactions", pressable[-1], user, SLACK_ACK, secret
        )
        return person, status
    if isinstance(fake, FakeFeishuApp):
        open_ids = {u.open_id: u.open_id for u in fake.users} | {u.user_id: u.open_id for u in fake.users if u.user_id}

        def open_id(person: str) -> str:
            contact = contacts.get(person, {})
            return open_ids.get(contact.get("feishu_open_id") or contact.get("feishu_user_id") or "", "")

        person = next((p for p in people if open_id(p)), None)
        if person is None or not fake.pressable():
            return None
        status, _ = await fake.click(session, f"{receiver_url}/feishu/card", fake.pressable()[-1], open_id(person))
        return person, status
    return None


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
