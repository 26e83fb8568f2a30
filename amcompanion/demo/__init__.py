"""`amcompanion demo`: the bundled catalog run end to end on loopback (plan → stand-ins, exporter, daemons → run)."""
