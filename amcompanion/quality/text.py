"""`amcompanion quality` as a person reads it: a table of the alerts, then what each finding means, with its figures."""

from dataclasses import asdict

from amcompanion.quality.findings import AlertQuality, Quality, Thresholds


def duration(seconds: float | None) -> str:
    """Seconds as a person says them: 45 s, 12 min, 3.5 h, 2.1 d; '-' for none."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size or (unit == "min" and seconds >= size):
            value = seconds / size
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{seconds:.0f} s"


def _acked(alert: AlertQuality) -> str:
    return "-" if alert.ack_share is None else f"{alert.acknowledged} of {alert.fired}"


def findings_said(alert: AlertQuality, limits: Thresholds) -> list[str]:
    """Each finding of the alert, with the figures behind it."""
    out = []
    for finding in alert.findings:
        if finding == "flapping":
            series = "1 series" if alert.flapping_series == 1 else f"{alert.flapping_series} series"
            out.append(
                f"flapping: {series} fired again within {duration(limits.flap_window.total_seconds())} of resolving,"
                f" {alert.flaps} times (median firing {duration(alert.median_firing_s)}, for {duration(alert.for_s)})"
            )
        elif finding == "periodic":
            if alert.peak_hour is not None:
                out.append(f"periodic: {alert.peak_hour_share:.0%} of its episodes start at {alert.peak_hour:02d}:00")
            if alert.peak_weekday is not None:
                out.append(f"periodic: {alert.peak_weekday_share:.0%} of its episodes start on a {alert.peak_weekday}")
        elif finding == "never acknowledged":
            out.append(f"never acknowledged in {alert.fired} episodes")
        elif finding == "never fired":
            out.append("never fired in the period: review or delete it")
    return out


def render(quality: Quality, heading: str, limits: Thresholds) -> str:
    lines = [heading, ""]
    if not quality.alerts:
        return "\n".join([*lines, "no alerts in the period, and no catalog to compare with"]) + "\n"
    width = max(24, *(len(a.alertname) for a in quality.alerts))
    lines.append(f"{'ALERT':<{width}}  {'FIRED':>5}  {'ACKED':>9}  {'MTTA':>7}  {'MTTR':>7}  FIRING (FOR)")
    for alert in quality.alerts:
        firing = f"{duration(alert.median_firing_s)} ({duration(alert.for_s)})"
        lines.append(
            f"{alert.alertname:<{width}}  {alert.fired:>5}  {_acked(alert):>9}  {duration(alert.median_ack_s):>7}"
            f"  {duration(alert.median_resolve_s):>7}  {firing}"
        )
    found = [(alert.alertname, why) for alert in quality.alerts for why in findings_said(alert, limits)]
    if found:
        lines += ["", "Findings:"]
        lines += [f"  {name}: {why}" for name, why in found]
    if quality.cascades:
        window = duration(limits.cascade_window.total_seconds())
        lines += ["", f"Cascades (the second starts within {window} of the first):"]
        for cascade in quality.cascades:
            shared = ", ".join(f"{k}={v}" for k, v in cascade.shared_labels.items()) or "no labels in common"
            lines.append(
                f"  {cascade.leader} → {cascade.follower}: in {cascade.together} of {cascade.episodes} episodes"
                f" ({cascade.share:.0%}); shared: {shared}"
            )
    if not found and not quality.cascades:
        lines += ["", "No findings: nothing flaps, comes periodically, goes unacknowledged or cascades."]
    return "\n".join(lines) + "\n"


def as_json(quality: Quality) -> dict:
    return {
        "alerts": [{**asdict(alert), "ack_share": alert.ack_share} for alert in quality.alerts],
        "cascades": [{**asdict(cascade), "share": cascade.share} for cascade in quality.cascades],
    }
