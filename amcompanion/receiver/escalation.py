"""When each step of an escalation policy comes due: pure arithmetic over the policy and the first notice.

Steps count from the alert's first notice, not from the previous step (a step `after: 15m` is due
15 minutes after the first page). After the last step, `repeat` repeats it every `every`, `times` times.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from amcompanion.catalog.model import Policy


@dataclass(frozen=True)
class Due:
    """The next thing to do for an alert: take step `step` (1-based), as repetition `round` (0: first pass)."""

    step: int
    round: int
    at: datetime


def next_due(policy: Policy, first_notice: datetime, level: int, repeats: int) -> Due | None:
    """What comes after `level` steps and `repeats` repetitions; None when the policy is exhausted."""
    steps = policy.steps
    if level < len(steps):
        return Due(level + 1, 0, first_notice + timedelta(milliseconds=steps[level].after_ms))
    if policy.repeat_every_ms and repeats < policy.repeat_times:
        after = steps[-1].after_ms + (repeats + 1) * policy.repeat_every_ms
        return Due(len(steps), repeats + 1, first_notice + timedelta(milliseconds=after))
    return None
