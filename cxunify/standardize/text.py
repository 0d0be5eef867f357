"""Text the fields naming or reaching a person may hold: no control characters.

A NUL or a bell copied from a legacy system into a name would reach the golden record. Applied
as a file's rows are mapped (ingest), so every later stage sees the clean value; kept here, with
standardisation, because it changes the values an update stores (see update.STORED_BY).
"""

from __future__ import annotations

# Fields that hold no control characters. Free text (subject, text) keeps its own.
PLAIN_TEXT_FIELDS = (
    "first_name", "last_name", "full_name", "email", "phone", "street", "street_number",
    "address_2", "city", "postcode", "state", "country", "location",
)  # fmt: skip


def no_controls(column_sql: str) -> str:
    """SQL for the text `column_sql` without control characters: a line break, tab, vertical
    tab or form feed becomes a space, the other C0 and C1 controls and DEL go."""
    controls = "'[\\x00-\\x1F\\x7F-\\x9F]'"
    # (Most values hold none: one match test costs a third of the two replacements.)
    return (
        f"CASE WHEN regexp_matches({column_sql}, {controls}) THEN "
        f"regexp_replace(regexp_replace({column_sql}, '[\\t\\n\\x0B\\x0C\\r]+', ' ', 'g'), "
        f"{controls}, '', 'g') ELSE {column_sql} END"
    )
