"""Where editors fetch the catalog's JSON Schema: starter files name it in their first line (a modeline)."""

SCHEMA_URL = "https://raw.githubusercontent.com/amcompanion/amcompanion/main/docs/catalog.schema.json"
