"""``python -m cxunify`` runs the command-line interface."""

from cxunify.cli import main

main()
