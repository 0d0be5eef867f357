"""``python -m cxunify`` runs the command-line interface."""

from cxunify.cli import app

app(prog_name="cxunify")
