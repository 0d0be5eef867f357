"""Email addresses: a clean form to show and a normalised form to match on.

``J.Doe+promo@GoogleMail.com`` is shown as ``j.doe+promo@googlemail.com`` and matched as
``jdoe@gmail.com``: plus-tags and Gmail's ignored dots do not make a different person.
"""

from __future__ import annotations

import duckdb

# Addresses people type when a form insists; they identify nobody.
JUNK_EMAILS = (
    "test@test.com",
    "a@a.com",
    "x@x.com",
    "no@email.com",
    "noemail@noemail.com",
    "none@none.com",
    "na@na.com",
    "n/a@n/a.com",
    "null@null.com",
    "unknown@unknown.com",
    "noreply@noreply.com",
    "email@email.com",
    "abc@abc.com",
    "asdf@asdf.com",
    "customer@customer.com",
    "nobody@nowhere.com",
    "test@example.com",
    "user@example.com",
)
JUNK_DOMAINS = ("example.com", "example.org", "example.net", "test.com", "invalid")
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")

_MACROS = r"""
CREATE OR REPLACE MACRO cx_email_trimmed(x) AS
    regexp_replace(lower(trim(CAST(x AS VARCHAR))), '^mailto:|\s+', '', 'g');
CREATE OR REPLACE MACRO cx_email_checked(e) AS CASE
    WHEN NOT regexp_full_match(e, '[^@]+@[^@.]+(\.[^@.]+)*\.[a-z]{2,}') THEN NULL
    WHEN list_contains(getvariable('cx_junk_emails'), e) THEN NULL
    WHEN list_contains(getvariable('cx_junk_domains'), split_part(e, '@', 2)) THEN NULL
    ELSE e END;
CREATE OR REPLACE MACRO cx_email_clean(x) AS cx_email_checked(cx_email_trimmed(x));
CREATE OR REPLACE MACRO cx_email_normalised(local, domain) AS CASE
    WHEN local IS NULL OR local = '' THEN NULL
    WHEN list_contains(getvariable('cx_gmail_domains'), domain)
        THEN replace(local, '.', '') || '@gmail.com'
    ELSE local || '@' || domain END;
CREATE OR REPLACE MACRO cx_email_parts_std(e) AS cx_email_normalised(
    regexp_replace(split_part(e, '@', 1), '\+.*$', ''), split_part(e, '@', 2));
CREATE OR REPLACE MACRO cx_email_std(x) AS cx_email_parts_std(cx_email_clean(x));
"""


# DuckDB 2.0 fails to bind cx_email_std(column) when the column is entirely NULL ("did not
# return a BoundFunctionExpression"); the records stage therefore cleans first, in a subquery,
# and applies cx_email_parts_std to the clean column.


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``cx_email_clean(x)`` and ``cx_email_std(x)`` on `con`."""
    con.execute("SET VARIABLE cx_junk_emails = $v", {"v": list(JUNK_EMAILS)})
    con.execute("SET VARIABLE cx_junk_domains = $v", {"v": list(JUNK_DOMAINS)})
    con.execute("SET VARIABLE cx_gmail_domains = $v", {"v": list(GMAIL_DOMAINS)})
    for statement in _MACROS.split(";"):
        if statement.strip():
            con.execute(statement)
