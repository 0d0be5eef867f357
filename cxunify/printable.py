"""Names from a user's files (config keys, header columns) as a one-line message shows them."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the two Unicode line breaks a terminal or a log reader may honour.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` with each control character escaped as Python writes it in a string (a line
    break as \\n, a tab as \\t, an escape as \\x1b): a config key or a column name holding
    one split an error's one line in two, or sent the escape to the terminal (turning it red,
    clearing it)."""
    return _CONTROL.sub(lambda found: repr(found[0])[1:-1], text)
