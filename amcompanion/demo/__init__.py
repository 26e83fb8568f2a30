"""`amcompanion demo`: a catalog run end to end on loopback (plan, drive → stand-ins, exporter, daemons → run)."""
