"""What makes an alert a drill, in one place: the receiver, the history, the compiler and `amcompanion drill` read it.

A drill carries `drill="true"`; its summary says so in every message, whatever the channel's template shows."""

from collections.abc import Mapping

DRILL_LABEL = "drill"
POLICY_LABEL = "drill_policy"  # the policy the drill proves (it also makes each policy's drill its own alert)
ID_LABEL = "drill_id"  # one run of `amcompanion drill`: a new group in Alertmanager, a new alert in the receiver
ALERTNAME = "AmcompanionDrill"
NO_ACTION = "DRILL — no action needed"


def is_drill(labels: Mapping[str, object]) -> bool:
    return labels.get(DRILL_LABEL) == "true"


def summary(policy: str, how: str) -> str:
    return f"{NO_ACTION}: {how} of the escalation policy {policy}"
