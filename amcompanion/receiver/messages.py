"""Message text from jinja2 templates, in a sandbox: label and annotation values are untrusted input.

Rendering never stops a page: a template that fails on one alert (a division by a label that is 0, a
filter given a value it cannot take) is replaced for that message by the channel type's packaged default,
and the failure is reported beside the message, for the outbox to record on the row. Whatever a template
or an alert holds, the text that leaves is one every channel can carry (`carriable`).
"""

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from amcompanion.drill.labels import NO_ACTION, is_drill
from amcompanion.receiver.channels import Message
from amcompanion.receiver.channels.base import truncate
from amcompanion.wording import plural

TITLE_LIMIT = 500  # characters: a title is one line; channels cut it further to their own limits
TEXT_LIMIT = 1_000_000  # characters of text or HTML; every channel cuts far below this, but after cheap work
# Characters no channel carries: C0 controls but tab and newline (XML 1.0, which TwiML is, forbids them and
# JSON APIs refuse NUL), DEL, lone surrogates (they cannot be encoded as UTF-8), and the XML non-characters.
_UNCARRIABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def carriable(text: str) -> str:
    """`text` as every channel can send it: line breaks as `\\n`, lone surrogates as U+FFFD, controls removed."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNCARRIABLE.sub(lambda m: "\ufffd" if "\ud800" <= m.group() <= "\udfff" else "", text)


class TemplateProblem(Exception):
    """A channel's template does not compile or cannot be found: the config is refused (at start, or on reload)."""


@dataclass(frozen=True)
class Rendered:
    message: Message
    template_error: str | None  # why the channel's template was not used for this message, if it was not


class Renderer:
    """One template per channel: its `template:` file if set, else `<type>.j2`, else `default.j2`.

    A template may define blocks: `text` (then only that block is the message text, not the whole
    template) and `html` (an HTML version, for channels that send one)."""

    def __init__(self, channels: dict[str, dict[str, object]], config_dir: Path | None):
        """Templates named in the config are looked up in `config_dir` first (None: the defaults only).
        A template that does not compile or is not there raises TemplateProblem here, at start or reload."""
        packaged = jinja2.PackageLoader("amcompanion", "templates")
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(config_dir))] if config_dir else []
        self._environment = _sandbox(jinja2.ChoiceLoader([*loaders, packaged]))
        fallback_environment = _sandbox(packaged)
        self._templates: dict[str, jinja2.Template] = {}
        self._fallbacks: dict[str, jinja2.Template] = {}
        for name, settings in channels.items():
            own = settings.get("template")
            defaults = [f"{settings['type']}.j2", "default.j2"]
            try:
                self._templates[name] = self._environment.select_template([str(own)] if own else defaults)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateProblem(
                    f"channel {name}: template {exc.name or exc.filename}:{exc.lineno}: {exc.message}"
                ) from None
            except jinja2.TemplateError as exc:
                raise TemplateProblem(f"channel {name}: template not found: {exc}") from None
            self._fallbacks[name] = fallback_environment.select_template(defaults)

    def template_name(self, channel: str) -> str:
        return str(self._templates[channel].name)

    def render(
        self, channel: str, kind: str, alerts: list[dict], recipient_name: str, recipient: dict, ack_url: str
    ) -> Message:
        return self.compose(channel, kind, alerts, recipient_name, recipient, ack_url).message

    def compose(
        self, channel: str, kind: str, alerts: list[dict], recipient_name: str, recipient: dict, ack_url: str
    ) -> Rendered:
        """The message, and why the channel's own template was not used, when it was not."""
        first = alerts[0]
        drill = all(is_drill(a.get("labels") or {}) for a in alerts)
        variables = {
            "drill": drill,
            "kind": kind,
            "alerts": alerts,
            "alert": first,
            "recipient_name": recipient_name,
            "ack_url": ack_url,
            "channel": channel,
        }
        template = self._templates[channel]
        problem = None
        try:
            text, html = _render(template, variables)
        except Exception as exc:  # any error of a user's template, on any value: the page still goes out
            problem = f"template {template.name} failed ({type(exc).__name__}: {exc}); sent with the default"
            try:
                text, html = _render(self._fallbacks[channel], variables)
            except Exception as default_exc:  # the packaged one too (an alert shaped like none before): plain text
                problem += f", which failed too ({type(default_exc).__name__}: {default_exc}); sent as plain text"
                text, html = _plain(kind, alerts, ack_url), ""
        if len(alerts) > 1:
            title = f"[{kind.upper()}] {len(alerts)} alerts"
        else:
            title = f"[{'RESOLVED' if kind == 'resolved' else (first.get('severity') or 'alert').upper()}] "
            title += str(first.get("alertname", ""))
        if drill:
            title = f"{NO_ACTION}: {title}"
        message = Message(
            kind,  # type: ignore[arg-type]
            truncate(carriable(title), TITLE_LIMIT, marker="…"),
            truncate(carriable(text.strip()), TEXT_LIMIT),
            alerts,
            recipient,
            recipient_name,
            ack_url,
            truncate(carriable(html.strip()), TEXT_LIMIT),
        )
        return Rendered(message, problem)


def _sandbox(loader: jinja2.BaseLoader) -> SandboxedEnvironment:
    return SandboxedEnvironment(loader=loader, autoescape=False, undefined=jinja2.ChainableUndefined)


def _render(template: jinja2.Template, variables: dict) -> tuple[str, str]:
    """The message text and HTML (empty without an `html` block)."""
    context = template.new_context(variables)
    text = _block(template, "text", context) if "text" in template.blocks else template.render(variables)
    html = _block(template, "html", context) if "html" in template.blocks else ""
    return text, html


def _block(template: jinja2.Template, name: str, context: "jinja2.runtime.Context") -> str:
    return "".join(template.blocks[name](context))


def _plain(kind: str, alerts: list[dict], ack_url: str) -> str:
    """The last resort when no template renders: the alerts' names and summaries."""
    lines = [f"[{kind.upper()}] {plural(len(alerts), 'alert')}"]
    for alert in alerts:
        summary = str((alert.get("annotations") or {}).get("summary", ""))
        lines.append(f"- {alert.get('alertname', '')}" + (f": {summary}" if summary else ""))
    if ack_url:
        lines.append(f"Acknowledge: {ack_url}")
    return "\n".join(lines)
