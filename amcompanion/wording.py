"""Wording shared by everything amcompanion prints."""

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean "monday"?` for the closest of `choices` to a misspelt `word`, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def plural(count: int, noun: str) -> str:
    """`count` and `noun`, made plural unless the count is one: 1 SLO, 2 SLOs, 1 escalation policy, 3 escalation
    policies, 2 matches."""
    if count == 1:
        return f"{count} {noun}"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{count} {noun[:-1]}ies"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return f"{count} {noun}es"
    return f"{count} {noun}s"
