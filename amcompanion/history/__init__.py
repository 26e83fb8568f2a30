"""Alert history: the SQLite schema the receiver writes, and the pages, reports and upkeep that read it."""
