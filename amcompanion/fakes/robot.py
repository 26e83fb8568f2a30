"""What the errcode robots' fakes (DingTalk, WeCom) share: scripted answers and the record of answers."""

import asyncio
from dataclasses import dataclass

from aiohttp import web

from amcompanion.fakes import Shown


@dataclass
class Answer:
    """A scripted answer: `body` (a dict is sent as JSON) with `status`, after `delay` seconds."""

    body: dict | str
    status: int = 200
    delay: float = 0.0


async def play(answer: Answer) -> tuple[dict, web.Response]:
    """After the answer's delay: the answer as the fake records it, and the response that carries it."""
    if answer.delay:
        await asyncio.sleep(answer.delay)
    if isinstance(answer.body, dict):
        return answer.body, web.json_response(answer.body, status=answer.status)
    return {"raw": answer.body}, web.Response(status=answer.status, text=answer.body)


class ErrcodeRecord:
    """`received` entries carry `body` and the `answer` given; errcode 0 is an accepted message."""

    received: list

    @property
    def accepted(self) -> list[dict]:
        return [r.body for r in self.received if r.answer.get("errcode") == 0]

    @property
    def rejected(self) -> list:
        return [r for r in self.received if r.answer.get("errcode") != 0]

    def shown(self) -> list[Shown]:
        """Accepted messages as the group sees them (markdown as written; @mentions named)."""
        return [Shown(_audience(body), _robot_text(body)) for body in self.accepted]


def _robot_text(body: dict) -> str:
    content = body.get(str(body.get("msgtype")), {})
    text = content.get("text") or content.get("content") or ""
    title = content.get("title")
    text = text if not title or text.lstrip("# ").startswith(title) else f"{title}\n{text}"
    if content.get("singleURL"):  # a DingTalk ActionCard's button
        text += f"\n[{content.get('singleTitle')}]({content['singleURL']})"
    return text


def _audience(body: dict) -> str:
    at = body.get("at") or body.get(str(body.get("msgtype")), {})
    mentioned = [*(at.get("atMobiles") or at.get("mentioned_mobile_list") or [])]
    return "the group" + (f", @{' @'.join(mentioned)}" if mentioned else "")
