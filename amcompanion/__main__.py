from amcompanion.cli import run

run()
