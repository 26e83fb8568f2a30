"""Pure compilation: a validated Catalog → the documents of generated/ (no file IO here)."""
