"""Tencent Cloud voice messages (VMS): a phone call reading an approved TTS template through `SendTtsVoice`
(API 2020-09-02, host vms.tencentcloudapi.com), signed and read as the SMS channel does (tencent_sms).

VMS calls Chinese mainland numbers only, so a contact whose phone is not +86 is not called: a permanent "not sent"
with that reason, made here. A mainland mobile written without +86 (138…) is called as +86138…, the E.164 form
CalledNumber takes. The template's variables are the rendered template's lines, in order, each cut to 12
characters as the SMS channel cuts them (webhook/templates/tencent_voice.j2): three of them add at most 36 characters
to the approved template's words, and VMS takes 350 in all.
The call answers at once with a CallId; whether it was picked up is not in the answer, so a call Tencent took is a
delivery. It is played twice (PlayTimes, Tencent's default).

Sources: cloud.tencent.com/document/api/1128/51558 (SendTtsVoice: the parameters, 350 characters, 20 requests a
second), /document/api/1128/37723 (voice notifications go to users in mainland China), and the Go SDK's
tencentcloud/vms/v20200902/errors.go (github.com/TencentCloud/tencentcloud-sdk-go).
"""

import aiohttp

from amcompanion.receiver.channels.base import (
    Message,
    Response,
    not_sent,
    phone_of,
)
from amcompanion.receiver.channels.tencent_sms import TencentChannel, e164, template_params

PLAY_TIMES = 2


class TencentVoiceChannel(TencentChannel):
    """A call to the contact's phone, a mainland China number."""

    type = "tencent_voice"
    product = "VMS"
    service = "vms"
    version = "2020-09-02"
    action = "SendTtsVoice"
    verb = "call"

    async def send(self, session: aiohttp.ClientSession, message: Message) -> Response:
        phone = e164(phone_of(message))
        if phone and not phone.startswith("+86"):
            who = message.recipient_name or "the recipient"
            return not_sent(
                f"not sent: {who}'s phone {phone} is not a mainland China number, and Tencent VMS calls only those"
            )
        return await super().send(session, message)

    def body(self, phone: str, message: Message) -> dict[str, object]:
        return {
            "TemplateId": self.template_id,
            "TemplateParamSet": template_params(message),
            "CalledNumber": phone,
            "VoiceSdkAppid": self.sdk_app_id,
            "PlayTimes": PLAY_TIMES,
        }

    def statuses(self, answer: dict) -> list[tuple[str, str]] | None:
        """The call's SendStatus: a CallId when Tencent placed it."""
        status = answer.get("SendStatus")
        return [("Ok", "")] if isinstance(status, dict) and status.get("CallId") else None


CHANNEL = TencentVoiceChannel
