"""amcompanion: a companion to Prometheus Alertmanager."""

__version__ = "0.1.0"
