"""Alert quality from the history: what each catalog alert did, and the patterns that say it could page better."""
