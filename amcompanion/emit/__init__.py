"""Emission: turning compiled data into files (YAML text, the output tree, the staleness check)."""
