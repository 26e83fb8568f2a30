"""The webhook receiver: Alertmanager posts here; amcompanion records, escalates and delivers.

ingest (payload) → store (SQLite, db) → escalation (scheduler) → outbox → channels/.
"""
