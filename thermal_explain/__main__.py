"""``python -m thermal_explain`` runs the command line."""

from thermal_explain.cli.main import entry

entry()
