"""Twilio voice: a phone call that reads the alert and takes "press 1 to acknowledge" (Calls API, inline TwiML).

The TwiML goes inline (`Twiml`), so Twilio needs nothing from us to start the call; the keypress comes back
on the <Gather action>, the receiver's /twilio/voice/{notification_id} route (app.py), signed with the
auth token. Only a single firing alert is acknowledged by phone: a digest or a resolve notice is just read out.
"""

from collections.abc import Awaitable

from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from amcompanion.receiver.channels.base import Message, truncate
from amcompanion.receiver.channels.twilio_sms import TwilioChannel

TWIML_LIMIT = 4000  # characters of the Twiml parameter; Twilio answers 32018 above it
GATHER_TIMEOUT_S = 10
# The call's own words (the alert's come from the template), by the `language` setting's prefix.
PROMPTS = {
    "en": ("Press 1 to acknowledge.", "No key pressed. The alert is not acknowledged. Goodbye."),
    "zh": ("按1确认。", "没有按键，告警未确认。再见。"),
}


class TwilioVoiceChannel(TwilioChannel):
    """A call to the contact's phone."""

    type = "twilio_voice"
    verb = "call"

    def __init__(self, name: str, settings: dict[str, object]):
        super().__init__(name, settings)
        self.say: dict[str, str] = {k: str(settings[k]) for k in ("voice", "language") if settings.get(k)}
        language = self.say.get("language", "en").lower()
        self.prompt, self.no_input = PROMPTS.get(language.split("-")[0], PROMPTS["en"])

    def twiml(self, message: Message) -> str:
        """The call's TwiML within Twilio's limit: the speech is cut (with the marker), never the <Gather>.
        The longest cut that fits is searched for, as escaping (& → &amp;) makes the XML longer than the text."""
        twiml = self._twiml(message, message.text)
        if len(twiml) <= TWIML_LIMIT:
            return twiml
        fits, too_long = 0, min(len(message.text), TWIML_LIMIT)  # the speech alone cannot be longer
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            if len(self._twiml(message, truncate(message.text, middle))) <= TWIML_LIMIT:
                fits = middle
            else:
                too_long = middle
        return self._twiml(message, truncate(message.text, fits))

    def _twiml(self, message: Message, speech: str) -> str:
        response = VoiceResponse()
        if message.ack_url and message.external_url:  # a single firing alert: it can be acknowledged
            action = f"{message.external_url.rstrip('/')}/twilio/voice/{message.notification_id}"
            gather = response.gather(input="dtmf", num_digits=1, timeout=GATHER_TIMEOUT_S, action=action, method="POST")
            gather.say(speech, **self.say)
            gather.say(self.prompt, **self.say)
            response.say(self.no_input, **self.say)
        else:
            response.say(speech, **self.say)
        return str(response)

    def create(self, client: Client, phone: str, message: Message) -> Awaitable[object]:
        return client.calls.create_async(to=phone, from_=self.account.sender, twiml=self.twiml(message))


CHANNEL = TwilioVoiceChannel
