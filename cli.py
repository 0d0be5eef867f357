"""Run cxunify from a checkout without installing: ``python cli.py unify ...``."""

from cxunify.cli import app

if __name__ == "__main__":
    app()
