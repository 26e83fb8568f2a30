"""`amcompanion lint`: what can be known wrong about a catalog's alerts without a Prometheus server.

`lint(catalog)` is pure (a Catalog in, findings out); `locate_findings` gives each its line and column, as the
catalog's own errors have them, by reading the files again only when there is something to report.
`amcompanion.lint.server` asks a running Prometheus what only it can tell (`lint --prometheus URL`)."""

from amcompanion.lint.checks import CHECKS, Finding, lint, locate_findings

__all__ = ["CHECKS", "Finding", "lint", "locate_findings"]
