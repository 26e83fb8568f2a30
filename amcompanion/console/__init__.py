"""The live console: what it shows (views), its HTTP routes, and its page, script and style (static/)."""
