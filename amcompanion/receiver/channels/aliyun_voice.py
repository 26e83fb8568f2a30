"""Aliyun (Alibaba Cloud) voice calls through Dyvmsapi 2017-05-25 `SingleCallByTts`: Aliyun's text-to-speech reads
an approved TTS template, its variables (`TtsParam`) from the channel's template.

The call, its V3 signature, the `name: value` contract of the template (webhook/templates/aliyun_voice.j2) and
the reading of answers are the SMS channel's (aliyun_sms). What differs:
- the cut: Aliyun takes the variables together under 250 characters (no limit per variable), so the longest
  values are cut first until the TtsParam JSON as sent is within 249;
- the number: Aliyun's voice service calls mainland China only (the service outside the mainland was stopped in
  March 2022, kept only for customers already qualified); a mobile is sent as its 11 digits, a landline with its
  leading 0 (0571…); another number is not called: a permanent "not sent", with that reason;
- the flow control: 1 call a minute, 5 an hour, 20 in 24 hours to one number;
- no acknowledgement by keypress: SingleCallByTts takes none.
`called_show_number` (the number shown to the callee) is sent when set; without it the call goes in Aliyun's
public mode, from its number pool, whose templates take at most 2 variables. The voice API has one endpoint,
dyvmsapi.aliyuncs.com, whatever the `region`.

Sources:
- SingleCallByTts: https://help.aliyun.com/document_detail/393519.html (CalledShowNumber, CalledNumber, flow
  control), https://help.aliyun.com/document_detail/114035.htm (TtsParam under 250 characters; outside the
  mainland stopped since March 2022), https://help.aliyun.com/en/vms/developer-reference/api-dyvmsapi-2017-05-25-singlecallbytts
- error codes: https://help.aliyun.com/document_detail/178344.html
- template rules (public mode: at most 2 variables, no link or IP address in one): https://help.aliyun.com/document_detail/414170.html
"""

import re
from collections.abc import Mapping

from amcompanion.receiver.channels.aliyun_sms import (
    EXPLAINED,
    AliyunChannel,
    aliyun_length,
    cut,
    param_json,
    sendable,
    template_params,
)
from amcompanion.receiver.channels.base import Message, Response, not_sent

VMS_HOST = "dyvmsapi.aliyuncs.com"
MOBILE_WITH_86 = re.compile(r"861[3-9]\d{9}")
TTS_PARAM_LIMIT = 249  # characters of all the variables together: Aliyun wants fewer than 250
VOICE_EXPLAINED = {
    **EXPLAINED,
    "isv.TTS_TEMPLATE_ILLEGAL": "tts_code is not an approved TTS template of this account",
    "isv.TEMPLATE_ILLEGAL": "tts_code is not an approved template of this account",
    "isv.TEMPLATE_PARAMS_ILLEGAL": "a template variable holds a word Aliyun refuses",
    "isv.DISPLAY_NUMBER_ILLEGAL": "called_show_number is not a number of this account",
    "isv.MOBILE_NUMBER_ILLEGAL": "the contact's phone is not a mainland number Aliyun can call",
    "isv.PRODUCT_UNSUBSCRIBE": "the account has not activated Voice Service's text-to-speech calls",
    "isv.COMPLAINT_REJECT": "the call was blocked by Aliyun's anti-harassment control",
    "isv.VOICE_CALL_FAIL": "Aliyun could not start the call (see the Voice Service console)",
    "isv.BUSINESS_LIMIT_CONTROL": "Aliyun's limit per called number: 1 call a minute, 5 an hour, 20 in 24 hours",
}


def mainland_number(phone: str) -> str | None:
    """A number as Aliyun's voice service takes it (159…, 0571…); None for a number outside mainland China. A
    number with the country code (+86, 0086, or 86 before a mobile) is sent without it, a landline with its leading
    0; a number without a country code is taken as written."""
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix):
            national = phone.removeprefix(prefix)
            return national if national.startswith(("0", "1")) else f"0{national}"
    if phone.startswith(("+", "00")):  # another country's code
        return None
    return phone[2:] if MOBILE_WITH_86.fullmatch(phone) else phone


def within_total(params: Mapping[str, str], limit: int) -> dict[str, str]:
    """`params` whose JSON is within `limit` characters: every value longer than the largest cap that fits is cut
    to it, so the longest values give way first."""

    def capped(cap: int) -> dict[str, str]:
        return {name: cut(value, cap) for name, value in params.items()}

    if aliyun_length(param_json(params)) <= limit:
        return dict(params)
    fits, too_long = 1, max(aliyun_length(value) for value in params.values())
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if aliyun_length(param_json(capped(middle))) <= limit:
            fits = middle
        else:
            too_long = middle
    return capped(fits)


class AliyunVoiceChannel(AliyunChannel):
    """A call to the contact's phone reading the approved TTS template."""

    type = "aliyun_voice"
    product = "voice"
    action = "SingleCallByTts"
    verb = "call"
    explained = VOICE_EXPLAINED

    def configure(self, settings: dict[str, object]) -> None:
        self.tts_code = str(settings["tts_code"])
        self.called_show_number = str(settings.get("called_show_number") or "")

    def service_host(self, settings: dict[str, object]) -> str:
        return VMS_HOST

    def tts_param(self, message: Message) -> dict[str, str]:
        variables = {name: sendable(value) for name, value in template_params(message.text).items()}
        return within_total(variables, TTS_PARAM_LIMIT) if variables else {}

    def params(self, phone: str, message: Message) -> dict[str, str] | Response:
        number = mainland_number(phone)
        if number is None:
            who = message.recipient_name or "the recipient"
            return not_sent(
                f"not sent: {who}'s phone {phone} is outside mainland China, and Aliyun's voice service calls"
                " mainland numbers only (it stopped calls outside the mainland in March 2022)"
            )
        params = {"CalledNumber": number, "TtsCode": self.tts_code}
        if self.called_show_number:
            params["CalledShowNumber"] = self.called_show_number
        variables = self.tts_param(message)
        return {**params, "TtsParam": param_json(variables)} if variables else params


CHANNEL = AliyunVoiceChannel
