"""Email addresses: a clean form to show and a normalised form to match on.

``J.Doe+promo@GoogleMail.com`` is shown as ``j.doe+promo@googlemail.com`` and matched as
``jdoe@gmail.com``: plus-tags and Gmail's ignored dots do not make a different person.

Internationalised addresses (``Дима@Пример.РФ``) are kept, lower-cased letter by letter and in
Unicode NFC (``é`` typed as ``e`` + accent is the same letter). A domain may reach an export
in either of its two spellings, Unicode (``пример.рф``) or the ASCII form DNS uses
(``xn--e1afmkfd.xn--p1ai``); the matching form always has the Unicode one, the form people
read and type. The ``xn--`` labels are decoded by RFC 3492's algorithm, in SQL like the rest.
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

# RFC 3492 Punycode decoding, one character at a time over a state: the code points so far
# (`out`), the next code point `n` and insertion point `i`, the bias, and the number being read
# (`delta`, its weight `w`, its threshold step `k`). NULL for text that is no Punycode: a
# character outside a-z0-9, a number cut off, a code point past U+10FFFF or a surrogate.
_PUNYCODE = r"""
CREATE OR REPLACE MACRO _cx_puny_state(out, n, i, bias, delta, w, k, first, pending, bad) AS
    struct_pack(out := CAST(out AS INTEGER[]), n := CAST(n AS BIGINT), i := CAST(i AS BIGINT),
                bias := CAST(bias AS BIGINT), delta := CAST(delta AS BIGINT),
                w := CAST(w AS BIGINT), k := CAST(k AS BIGINT), first := first,
                pending := CAST(pending AS BIGINT), bad := bad);
CREATE OR REPLACE MACRO _cx_puny_digit(c) AS CASE
    WHEN c BETWEEN 'a' AND 'z' THEN ascii(c) - 97
    WHEN c BETWEEN '0' AND '9' THEN ascii(c) - 22 END;
-- The bias adaptation. The RFC divides the (scaled) delta by 35 while above 455: m such
-- divisions. Deltas are capped at 2^40, so seven divisions at most.
CREATE OR REPLACE MACRO _cx_puny_divisions(d) AS
    (d > 455)::INTEGER + (d // 35 > 455)::INTEGER + (d // 1225 > 455)::INTEGER
    + (d // 42875 > 455)::INTEGER + (d // 1500625 > 455)::INTEGER
    + (d // 52521875 > 455)::INTEGER + (d // 1838265625 > 455)::INTEGER;
CREATE OR REPLACE MACRO _cx_puny_bias(d, m) AS
    36 * m + 36 * (d // CAST(35 ** m AS BIGINT)) // (d // CAST(35 ** m AS BIGINT) + 38);
-- A number read completely: code point n + i // points goes in at i % points (0-based), and
-- the delta, scaled, waits for the bias adaptation.
CREATE OR REPLACE MACRO _cx_puny_insert_at(s, scaled, pos, n) AS _cx_puny_state(
    list_concat(s.out[1:pos], [n], s.out[pos + 1:]),
    n, pos + 1, s.bias, 0, 1, 36, false, scaled + scaled // (len(s.out) + 1),
    n > 1114111 OR (n >= 55296 AND n <= 57343));
CREATE OR REPLACE MACRO _cx_puny_insert(s, delta) AS _cx_puny_insert_at(
    s, CASE WHEN s.first THEN delta // 700 ELSE delta // 2 END,
    (s.i + delta) % (len(s.out) + 1), s.n + (s.i + delta) // (len(s.out) + 1));
CREATE OR REPLACE MACRO _cx_puny_threshold(s) AS least(greatest(s.k - s.bias, 1), 26);
-- d is the next digit's value, NULL for a character that is none, -1 after the last digit,
-- and -2 before every digit, to adapt the bias after an insertion: in a step of its own, as a
-- macro argument is pasted in wherever it is used, and in one step the whole calculation
-- took a second to plan.
CREATE OR REPLACE MACRO _cx_puny_step(s, d) AS
    CASE WHEN s.bad OR d IS NULL OR s.delta + d * s.w > 1099511627776
              OR (d = -1 AND s.k <> 36)  -- the last number cut off
              THEN _cx_puny_state(NULL, 0, 0, 0, 0, 1, 36, false, NULL, true)
         WHEN d = -1 OR (d = -2 AND s.pending IS NULL) THEN s
         WHEN d = -2 THEN _cx_puny_state(
              s.out, s.n, s.i, _cx_puny_bias(s.pending, _cx_puny_divisions(s.pending)),
              s.delta, s.w, s.k, s.first, NULL, false)
         WHEN d < _cx_puny_threshold(s) THEN _cx_puny_insert(s, s.delta + d * s.w)
         -- A weight past the cap makes any further non-zero digit overflow anyway.
         ELSE _cx_puny_state(s.out, s.n, s.i, s.bias, s.delta + d * s.w,
                             least(s.w * (36 - _cx_puny_threshold(s)), 1099511627776),
                             s.k + 36, s.first, NULL, false)
    END;
-- Basic (ASCII) characters before the last '-', encoded insertions after it.
CREATE OR REPLACE MACRO _cx_puny_basic(x) AS
    CASE WHEN contains(x, '-') THEN x[:length(x) - strpos(reverse(x), '-')] ELSE '' END;
CREATE OR REPLACE MACRO _cx_puny_extended(x) AS
    CASE WHEN contains(x, '-') THEN x[length(x) - strpos(reverse(x), '-') + 2:] ELSE x END;
-- The state's code points alone are the result (NULL when the text is no Punycode): the
-- list_reduce is pasted in once.
CREATE OR REPLACE MACRO cx_punycode_decode(x) AS array_to_string(list_transform(list_reduce(
    list_append(
        flatten(list_transform(string_split(_cx_puny_extended(x), ''),
                               lambda c: [-2, _cx_puny_digit(c)])),
        -1),
    lambda s, d: _cx_puny_step(s, d),
    _cx_puny_state(list_transform(string_split(_cx_puny_basic(x), ''), lambda c: unicode(c)),
                   128, 0, 72, 0, 1, 36, true, NULL, false)).out, lambda c: chr(c)), '');
"""

_MACROS = r"""
-- Lower case letter by letter, whatever the script, then NFC, with full-width and ideographic
-- dots and at signs (typed on CJK keyboards) as their ASCII selves.
CREATE OR REPLACE MACRO cx_email_trimmed(x) AS list_transform(
    [regexp_replace(lower(trim(CAST(x AS VARCHAR))), '^mailto:|\s+', '', 'g')],
    lambda e: CASE WHEN strlen(e) = length(e) THEN e
                   ELSE nfc_normalize(translate(e, '。．｡＠', '...@')) END)[1];
-- The top-level domain: ASCII letters, an xn-- label, or letters of another script.
CREATE OR REPLACE MACRO cx_email_checked(e) AS CASE
    WHEN NOT regexp_full_match(
        e, '[^@]+@[^@.]+(\.[^@.]+)*\.(?:[a-z]{2,}|xn--[a-z0-9-]{2,}|[^\x00-\x7f]{2,})')
        THEN NULL
    WHEN list_contains(getvariable('cx_junk_emails'), e) THEN NULL
    WHEN list_contains(getvariable('cx_junk_domains'), split_part(e, '@', 2)) THEN NULL
    ELSE e END;
CREATE OR REPLACE MACRO cx_email_clean(x) AS cx_email_checked(cx_email_trimmed(x));
-- A domain's Unicode form: each xn-- label decoded, when that gives a label of another script
-- (a label that decodes to plain ASCII, or not at all, is no IDNA label and stays as is).
CREATE OR REPLACE MACRO cx_email_domain_unicode(domain) AS CASE
    WHEN NOT contains(domain, 'xn--') THEN domain
    ELSE array_to_string(list_transform(
        string_split(domain, '.'),
        lambda label: CASE
            -- Nothing after the last '-' decodes to the ASCII before it: no IDNA label.
            WHEN NOT starts_with(label, 'xn--') OR ends_with(label, '-') THEN label
            ELSE coalesce(nfc_normalize(lower(cx_punycode_decode(label[5:]))), label)
            END),
        '.') END;
CREATE OR REPLACE MACRO cx_email_normalised(local, domain) AS CASE
    WHEN local IS NULL OR local = '' THEN NULL
    WHEN list_contains(getvariable('cx_gmail_domains'), domain)
        THEN replace(local, '.', '') || '@gmail.com'
    ELSE local || '@' || domain END;
-- The domain is bound once, as the decoding is costly to plan (see cx_punycode_decode).
CREATE OR REPLACE MACRO cx_email_parts_std(e) AS list_transform(
    [cx_email_domain_unicode(split_part(e, '@', 2))],
    lambda domain: cx_email_normalised(regexp_replace(split_part(e, '@', 1), '\+.*$', ''),
                                       domain))[1];
-- The same for an address without any xn-- label. Decoding costs even where a CASE skips it
-- (a millisecond per vector of rows), so a bulk query gives the few addresses with xn-- labels
-- to cx_email_parts_std, in a query of their own, and the rest to this.
CREATE OR REPLACE MACRO cx_email_parts_std_no_xn(e) AS cx_email_normalised(
    regexp_replace(split_part(e, '@', 1), '\+.*$', ''), split_part(e, '@', 2));
"""


# The standard form of an email is cx_email_parts_std(cx_email_clean(x)). No macro composes the
# two: creating one binds every macro under it (0.07 s on each connection, a sixth of installing
# them all), and DuckDB 2.0 fails to bind such a composition over a column that is entirely NULL
# ("did not return a BoundFunctionExpression"). The records stage cleans first, in a subquery,
# and applies cx_email_parts_std (or cx_email_parts_std_no_xn) to the clean column.


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``cx_email_clean(x)``, ``cx_email_parts_std(e)`` (of a clean email) and
    ``cx_punycode_decode(x)`` on `con`."""
    con.execute("SET VARIABLE cx_junk_emails = $v", {"v": list(JUNK_EMAILS)})
    con.execute("SET VARIABLE cx_junk_domains = $v", {"v": list(JUNK_DOMAINS)})
    con.execute("SET VARIABLE cx_gmail_domains = $v", {"v": list(GMAIL_DOMAINS)})
    for statement in (_PUNYCODE + _MACROS).split(";"):
        if statement.strip():
            con.execute(statement)
