"""Message text from jinja2 templates, in a sandbox: label and annotation values are untrusted input."""

from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from amcompanion.receiver.channels import Message


class Renderer:
    """One template per channel: its `template:` file if set, else `<type>.j2`, else `default.j2`.

    A template may define blocks: `text` (then only that block is the message text, not the whole
    template) and `html` (an HTML version, for channels that send one)."""

    def __init__(self, channels: dict[str, dict[str, object]], config_dir: Path | None):
        """Templates named in the config are looked up in `config_dir` first (None: the defaults only)."""
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(config_dir))] if config_dir else []
        self._environment = SandboxedEnvironment(
            loader=jinja2.ChoiceLoader([*loaders, jinja2.PackageLoader("amcompanion", "templates")]),
            autoescape=False,
            undefined=jinja2.ChainableUndefined,
        )
        self._templates: dict[str, jinja2.Template] = {}
        for name, settings in channels.items():
            own = settings.get("template")
            candidates = [str(own)] if own else [f"{settings['type']}.j2", "default.j2"]
            self._templates[name] = self._environment.select_template(candidates)

    def render(
        self, channel: str, kind: str, alerts: list[dict], recipient_name: str, recipient: dict, ack_url: str
    ) -> Message:
        first = alerts[0]
        template = self._templates[channel]
        context = template.new_context(
            {
                "kind": kind,
                "alerts": alerts,
                "alert": first,
                "recipient_name": recipient_name,
                "ack_url": ack_url,
                "channel": channel,
            }
        )
        text = _block(template, "text", context) if "text" in template.blocks else template.render(context.get_all())
        html = _block(template, "html", context) if "html" in template.blocks else ""
        if len(alerts) > 1:
            title = f"[{kind.upper()}] {len(alerts)} alerts"
        else:
            title = f"[{'RESOLVED' if kind == 'resolved' else (first.get('severity') or 'alert').upper()}] "
            title += str(first.get("alertname", ""))
        return Message(kind, title, text.strip(), alerts, recipient, recipient_name, ack_url, html.strip())  # type: ignore[arg-type]


def _block(template: jinja2.Template, name: str, context: "jinja2.runtime.Context") -> str:
    return "".join(template.blocks[name](context))
