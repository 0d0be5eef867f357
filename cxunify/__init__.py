"""cxunify: one profile per real customer, from the exports a business already has.

The Python API mirrors the CLI::

    from cxunify import load_config, unify
    result = unify(load_config(Path("configs/sample.yaml")), Path("out"))

Its names are imported when first used: `import cxunify` alone loads no engine (a scheduler
parsing a DAG file that imports it pays nothing for the run it may never make).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cxunify.config import Config, load_config
    from cxunify.errors import CxunifyError, QualityGateError, UserError
    from cxunify.lock import LockedError
    from cxunify.pipeline import RunResult, unify

_WHERE = {
    "Config": "cxunify.config",
    "load_config": "cxunify.config",
    "CxunifyError": "cxunify.errors",
    "UserError": "cxunify.errors",
    "QualityGateError": "cxunify.errors",
    "LockedError": "cxunify.lock",
    "RunResult": "cxunify.pipeline",
    "unify": "cxunify.pipeline",
}

__all__ = [
    "Config",
    "CxunifyError",
    "LockedError",
    "QualityGateError",
    "RunResult",
    "UserError",
    "load_config",
    "unify",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        # A module of the package (cxunify.explain), as eager imports made it an attribute.
        try:
            return importlib.import_module(f"cxunify.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"cxunify.{name}":
                raise
            raise AttributeError(f"module 'cxunify' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
