"""On-call schedules: who is on duty when, from rotations, restrictions, overrides and shared calendars."""
