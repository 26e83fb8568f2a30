"""Drills: a synthetic alert per escalation policy, sent the way real ones go, to prove the path end to end."""
