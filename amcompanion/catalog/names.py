"""The spelling of names and placeholders, shared by the reader and the importers that write catalog data."""

import re

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.?window\s*\}\}")  # an SLI's range: {{window}}, or Sloth's {{.window}}
