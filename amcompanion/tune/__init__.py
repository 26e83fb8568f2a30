"""`amcompanion tune`: what the history says about each alert, as proposed edits of the catalog (propose.py, pure),
made on copies of the files, diffed and verified by compiling (apply.py)."""
