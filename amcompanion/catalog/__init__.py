"""Catalog loading and validation: rulesets/*.yaml → a validated `Catalog`."""

from amcompanion.catalog.model import Catalog
from amcompanion.catalog.reader import load_catalog

__all__ = ["Catalog", "load_catalog"]
