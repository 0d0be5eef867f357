"""cxunify: one profile per real customer, from the exports a business already has.

The Python API mirrors the CLI::

    from cxunify import load_config, unify
    result = unify(load_config(Path("configs/sample.yaml")), Path("out"))
"""

from cxunify.config import Config, load_config
from cxunify.errors import CxunifyError
from cxunify.pipeline import RunResult, unify

__all__ = ["Config", "CxunifyError", "RunResult", "load_config", "unify"]
__version__ = "0.1.0"
