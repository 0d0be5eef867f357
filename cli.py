"""Run cxunify from a checkout without installing: ``python cli.py unify ...``."""

from cxunify.cli import main

if __name__ == "__main__":
    main()
