"""Source record ids as every command reads them: ingest, an update's deletions, explain's
``--record`` and evaluate's truth file compare ids made by the same rules, so that one record
has one id whichever file or command names it.

An id loses the whitespace at its ends (a tab or a carriage return an exporter left in, a
no-break space from a spreadsheet). The ids a state stores were made by these rules: the
module is among those an update checks (update.STORED_BY).
"""

from __future__ import annotations

# Whitespace an id loses at either end: Unicode's (tab, line breaks, no-break and other
# spaces) and the invisible zero-width space and byte order mark that travel with pasted text.
ID_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200C))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def clean_id(text: str) -> str:
    """`text` without whitespace at its ends, as ids are stored.

    >>> clean_id("\\tC1\\u00a0")
    'C1'
    """
    return text.strip(ID_SPACE)


def clean_id_sql(text_sql: str) -> str:
    """SQL for the id text `text_sql` without whitespace at its ends; NULL when none is left."""
    return f"NULLIF(trim({text_sql}, '{ID_SPACE}'), '')"
