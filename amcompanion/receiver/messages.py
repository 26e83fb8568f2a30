"""Message text from jinja2 templates, in a sandbox: label and annotation values are untrusted input."""

from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from amcompanion.receiver.channels import Message


class Renderer:
    """One template per channel: its `template:` file if set, else `<type>.j2`, else `default.j2`."""

    def __init__(self, channels: dict[str, dict[str, object]], config_dir: Path):
        self._environment = SandboxedEnvironment(
            loader=jinja2.ChoiceLoader(
                [jinja2.FileSystemLoader(str(config_dir)), jinja2.PackageLoader("amcompanion", "templates")]
            ),
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
        text = self._templates[channel].render(
            kind=kind,
            alerts=alerts,
            alert=first,
            recipient_name=recipient_name,
            ack_url=ack_url,
            channel=channel,
        )
        if len(alerts) > 1:
            title = f"[{kind.upper()}] {len(alerts)} alerts"
        else:
            title = f"[{'RESOLVED' if kind == 'resolved' else (first.get('severity') or 'alert').upper()}] "
            title += str(first.get("alertname", ""))
        return Message(kind, title, text.strip(), alerts, recipient, recipient_name, ack_url)  # type: ignore[arg-type]
