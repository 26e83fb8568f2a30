"""`python -m amcompanion.history.site serve ...`: Datasette's own command line with the history pages' plugin
registered first (it is a module of amcompanion, not an installed plugin that Datasette would find by itself)."""

from datasette.cli import cli
from datasette.plugins import pm

import amcompanion.history.site as plugin

pm.register(plugin)
cli()
