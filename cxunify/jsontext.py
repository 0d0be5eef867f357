"""JSON for machines: ``run.json``, ``--json`` summaries, ``sql --format json``.

Python writes a float that is not finite as ``NaN`` or ``Infinity``, which is not JSON: a
strict parser (JavaScript's, Go's) refuses the whole document. Here such a value is null.
"""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(value: Any, **options: Any) -> str:
    """`json.dumps` with non-finite floats as null and anything else unknown as its text."""
    return json.dumps(_finite(value), default=str, allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
