"""Person names as DuckDB macros: a form to match on, a form to show, and keys to block on.

Exports spell the same person "DR. ROBERT J SMITH JR", "Bob Smith" and "Smith, Robert". Matching
needs those to meet, so ``cx_name_std`` throws away everything that varies between systems
(case, accents, titles, suffixes, punctuation), ``cx_name_key`` folds nicknames onto one formal
name and ``cx_soundex`` gives a phonetic code for blocking. ``cx_name_clean`` keeps the name
readable for the unified profile, and ``cx_split_full_name`` serves sources that only have one
name column.

Everything runs as SQL inside DuckDB, so millions of rows never pass through Python. The
reference lists are bound into session variables (``SET VARIABLE``), which the macros read with
``getvariable``; a connection that did not run :func:`install` has no such variables, so call
it on every connection that uses the macros.
"""

from __future__ import annotations

import re

import duckdb

from cxunify.sql import table
from cxunify.standardize.reference import DATA_DIR, PLACEHOLDERS, read_pairs

# Nickname -> formal name. A nickname of several (Sam: Samuel, Samantha) folds onto the first
# listed, so its key is one name; the merge guards take it as any of them (cluster.py).
NICKNAMES_CSV = DATA_DIR / "nicknames.csv"

# Titles said before a name. Removed wherever they appear: none of them is plausibly a name.
HONORIFICS: tuple[str, ...] = (
    "mr",
    "mrs",
    "ms",
    "miss",
    "mx",
    "dr",
    "prof",
    "professor",
    "sir",
    "dame",
    "rev",
    "revd",
    "mister",
    "mstr",
    "mme",
    "mlle",
)
# Generational suffixes and the code cx_name_suffix reports for each spelling.
GENERATIONAL_SUFFIXES: dict[str, str] = {
    "jr": "jr",
    "junior": "jr",
    "sr": "sr",
    "senior": "sr",
    "ii": "ii",
    "2nd": "ii",
    "iii": "iii",
    "3rd": "iii",
    "iv": "iv",
    "4th": "iv",
}
# Letters after a name. Like generational suffixes they are only dropped after the first word:
# "Md" in first place is the usual short form of Mohammed, not a degree.
PROFESSIONAL_SUFFIXES: tuple[str, ...] = (
    "phd",
    "md",
    "esq",
    "esquire",
    "dds",
    "dmd",
    "dvm",
    "mba",
    "cpa",
    "obe",
    "mbe",
    "cbe",
    "qc",
    "kc",
)
# Words that start a multi-word family name ("de la Cruz", "van der Berg", "bin Salman").
PARTICLES: tuple[str, ...] = (
    "de",
    "da",
    "das",
    "do",
    "dos",
    "van",
    "von",
    "der",
    "den",
    "del",
    "della",
    "la",
    "le",
    "di",
    "du",
    "des",
    "st",
    "ste",
    "san",
    "bin",
    "binti",
    "ibn",
    "al",
    "el",
    "ter",
    "ten",
)
# Placeholders typed into name fields; they identify nobody. Compared with the standardised
# form as it is and without spaces or punctuation, so "N/A", "n.a." and "NA" all match.
JUNK_NAMES: tuple[str, ...] = (
    *PLACEHOLDERS,
    "no name",
    "noname",
    "anonymous",
    "anon",
    "testtest",
    "customer",
    "guest",
    "name",
    "firstname",
    "lastname",
    "fullname",
    "nobody",
    "someone",
)

# Characters that separate words: ASCII and Latin-1 punctuation, symbols and controls, the
# general, supplemental, CJK and full-width punctuation blocks, arrows, shapes and emoji. An
# explicit class, because RE2 compiles Unicode classes like \p{L} slowly and the expanded
# macros compile their patterns many times over while a query is planned.
SEPARATORS = (
    r"\x{00}-\x{2f}\x{3a}-\x{40}\x{5b}-\x{60}\x{7b}-\x{bf}\x{d7}\x{f7}\x{1680}"
    r"\x{2000}-\x{206f}\x{2190}-\x{2bff}\x{2e00}-\x{2e7f}\x{3000}-\x{303f}\x{e000}-\x{f8ff}"
    r"\x{fe00}-\x{fe0f}\x{fe30}-\x{fe4f}\x{ff01}-\x{ff0f}\x{ff1a}-\x{ff20}\x{ff3b}-\x{ff40}"
    r"\x{ff5b}-\x{ff65}\x{fff0}-\x{ffff}\x{1f000}-\x{1faff}"
)

_MACROS = r"""
-- Two idioms keep these macros cheap to plan and to run:
-- * A macro argument is pasted in at every place the macro uses it, so nesting macros that
--   use an argument several times multiplies the expression (and DuckDB's planning time).
--   `list_transform([e], lambda v: ...)[1]` binds `e` once and names it `v`.
-- * CASE branches are evaluated apart, so a sub-expression repeated inside them is computed
--   again each time. `_cx_name_keep` picks from a list instead, which DuckDB deduplicates.
-- Lambda bodies hold no further lambdas: a nested lambda runs several times slower.
CREATE OR REPLACE MACRO _cx_name_keep(keep, v) AS [NULL, v][CAST(keep AS INTEGER) + 1];

-- strip_accents leaves letters that are not "letter + accent" alone; spell those out too.
CREATE OR REPLACE MACRO _cx_name_fold(s) AS
    translate(
        replace(replace(replace(replace(strip_accents(s), 'ß', 'ss'), 'æ', 'ae'), 'œ', 'oe'),
                'þ', 'th'),
        'øłđðı', 'olddi');

-- Matching-form words: lower case, no accents, "O'Brien" -> "obrien", other punctuation splits.
CREATE OR REPLACE MACRO _cx_name_words(x) AS
    list_filter(
        string_split(
            regexp_replace(
                regexp_replace(_cx_name_fold(lower(CAST(x AS VARCHAR))), '[''’‘`´ʼ.]', '', 'g'),
                '[' || getvariable('cx_name_separators') || ']+', ' ', 'g'),
            ' '),
        lambda t: t <> '');

-- Titles go wherever they are. A suffix goes too, unless it is the first word after the titles
-- and either the first word written (a lone "Jr" stays) or followed by more of the name
-- ("Dr. CBE A" keeps "cbe a", as "CBE A" does); "Mx Jr." and "- Jr." leave no name.
CREATE OR REPLACE MACRO _cx_name_is_title(t) AS
    list_contains(getvariable('cx_name_honorifics'), t);
CREATE OR REPLACE MACRO _cx_name_keeps_suffix(words, i, junk_led) AS
    NOT junk_led
    AND i = list_position(list_transform(words, lambda t: NOT _cx_name_is_title(t)), true)
    AND (i = 1 OR len(list_filter(words, lambda u, j: j > i AND NOT _cx_name_is_title(u))) > 0);
CREATE OR REPLACE MACRO _cx_name_drop(words, junk_led) AS
    list_filter(words,
        lambda t, i: NOT _cx_name_is_title(t)
                     AND (NOT list_contains(getvariable('cx_name_suffixes'), t)
                          OR _cx_name_keeps_suffix(words, i, junk_led)));

-- A lower-case name that is no name: empty, without a letter, or a placeholder however it
-- is punctuated or spaced ("N/A", "n.a.", "Not Provided").
CREATE OR REPLACE MACRO _cx_name_is_junk(v) AS
    v = ''
    OR NOT regexp_matches(v, '[^0-9' || getvariable('cx_name_separators') || ']')
    OR list_contains(getvariable('cx_name_junk'), v)
    OR list_contains(getvariable('cx_name_junk'),
                     regexp_replace(v, '[' || getvariable('cx_name_separators') || ']', '', 'g'));


-- Display-form words: split on whitespace only (including no-break and ideographic spaces),
-- so punctuation inside a word survives.
CREATE OR REPLACE MACRO _cx_name_display_words(x) AS
    list_filter(
        string_split(
            regexp_replace(replace(CAST(x AS VARCHAR), ',', ', '),
                           '[\s\x{0b}\x{85}\x{a0}\x{1680}\x{2000}-\x{200b}\x{2028}\x{2029}'
                           '\x{202f}\x{205f}\x{3000}\x{feff}]+',
                           ' ', 'g'),
            ' '),
        lambda t: t <> '');

-- A display word's identity for the title/suffix lists: "Jr.," and "(Dr)" are jr and dr.
CREATE OR REPLACE MACRO _cx_name_word_key(t) AS
    regexp_replace(lower(t), '[' || getvariable('cx_name_separators') || ']', '', 'g');

-- The first display word that is not a title has no letter in it ("-", "'", "...").
CREATE OR REPLACE MACRO _cx_name_junk_led(x) AS
    NOT regexp_matches(
        coalesce(list_filter(_cx_name_display_words(x),
                             lambda t: NOT list_contains(getvariable('cx_name_honorifics'),
                                                         _cx_name_word_key(t)))[1], 'a'),
        '[[:alpha:]]');

CREATE OR REPLACE MACRO cx_name_std(x) AS
    list_transform([array_to_string(_cx_name_drop(_cx_name_words(x), _cx_name_junk_led(x)),
                                    ' ')],
                   lambda v: CASE WHEN _cx_name_is_junk(v) THEN NULL ELSE v END)[1];

-- The display name without titles and suffixes, and without the commas they leave behind.
CREATE OR REPLACE MACRO _cx_name_strip(x) AS
    regexp_replace(
        array_to_string(
            list_filter(_cx_name_display_words(x),
                lambda t, i: NOT _cx_name_is_title(_cx_name_word_key(t))
                             AND (NOT list_contains(getvariable('cx_name_suffixes'),
                                                    _cx_name_word_key(t))
                                  OR _cx_name_keeps_suffix(
                                      list_transform(_cx_name_display_words(x),
                                                     lambda w: _cx_name_word_key(w)),
                                      i, false))),
            ' '),
        '^[\s,;:]+|[\s,;:]+$', '', 'g');

-- Every run of letters with its first letter upper case and the rest lower case.
CREATE OR REPLACE MACRO _cx_name_capitalise(s) AS
    array_to_string(
        list_transform(regexp_extract_all(s, '[^0-9' || getvariable('cx_name_separators')
                                             || ']+|[0-9' || getvariable('cx_name_separators')
                                             || ']+'),
                       lambda p: upper(left(p, 1)) || lower(substr(p, 2))),
        '');

-- Shouting or all-lower input says nothing about the real capitalisation, so guess it;
-- anything mixed was typed with care and is kept.
CREATE OR REPLACE MACRO _cx_name_is_flat(v) AS v = upper(v) OR v = lower(v);

CREATE OR REPLACE MACRO _cx_name_proper(s) AS
    list_transform(
        [struct_pack(s := s, k := _cx_name_capitalise(s))],
        lambda r: nullif(CASE WHEN _cx_name_is_flat(r.s) THEN r.k ELSE r.s END, ''))[1];

CREATE OR REPLACE MACRO cx_name_clean(x) AS
    _cx_name_keep(cx_name_std(x) IS NOT NULL, _cx_name_proper(_cx_name_strip(x)));

CREATE OR REPLACE MACRO _cx_name_suffix_of(words) AS
    getvariable('cx_name_generational')[
        list_filter(words, lambda t, i: i > 1
                    AND map_contains(getvariable('cx_name_generational'), t))[1]];

CREATE OR REPLACE MACRO cx_name_suffix(x) AS
    _cx_name_suffix_of(
        list_filter(_cx_name_words(x),
                    lambda t: NOT list_contains(getvariable('cx_name_honorifics'), t)));

CREATE OR REPLACE MACRO cx_name_key(x) AS
    list_transform([split_part(cx_name_std(x), ' ', 1)],
                   lambda t: coalesce(getvariable('cx_nicknames')[t], t))[1];

-- Given and family name of a stripped full name `c`, and the same parts of its capitalised
-- copy `k` (both split at the same places). "Smith, Robert J" is family name first; otherwise
-- the family name is the last word plus any particles just before it ("de la Cruz").
CREATE OR REPLACE MACRO _cx_name_parts(r) AS
    struct_pack(
        keep := r.keep,
        f := CASE WHEN contains(r.c, ',')
                  THEN split_part(trim(substr(r.c, strpos(r.c, ',') + 1), ' ,'), ' ', 1)
                  ELSE split_part(r.c, ' ', 1) END,
        fk := CASE WHEN contains(r.k, ',')
                   THEN split_part(trim(substr(r.k, strpos(r.k, ',') + 1), ' ,'), ' ', 1)
                   ELSE split_part(r.k, ' ', 1) END,
        l := CASE WHEN contains(r.c, ',') THEN trim(split_part(r.c, ',', 1))
                  ELSE regexp_extract(r.c, getvariable('cx_name_family_re'), 1) END,
        lk := CASE WHEN contains(r.k, ',') THEN trim(split_part(r.k, ',', 1))
                   ELSE regexp_extract(r.k, getvariable('cx_name_family_re'), 1) END);

CREATE OR REPLACE MACRO _cx_name_part(keep, v, k) AS
    CASE WHEN NOT keep OR _cx_name_is_junk(lower(v)) THEN NULL
         WHEN _cx_name_is_flat(v) THEN k
         ELSE v END;

-- A social display name often goes on past the name with a tagline after a bar or a bullet
-- ("Mel Manning | books lover", "Ana Ruiz • Designer"): the name is what comes before it, so
-- the tagline's last word is not the family name. A display name starting with a bar keeps
-- it all (nothing before it could be the name).
CREATE OR REPLACE MACRO cx_name_head(x) AS
    list_transform([trim(regexp_extract(CAST(x AS VARCHAR), '^[^|•]*'))],
                   lambda h: CASE WHEN h = '' THEN CAST(x AS VARCHAR) ELSE h END)[1];

-- Handles, emails and URLs land in name columns of social exports; they are not names.
CREATE OR REPLACE MACRO _cx_split_name(x) AS
    list_transform(
        [list_transform(
            [struct_pack(
                c := _cx_name_strip(x),
                k := _cx_name_capitalise(_cx_name_strip(x)),
                keep := coalesce(cx_name_std(x) IS NOT NULL
                                 AND NOT regexp_matches(CAST(x AS VARCHAR),
                                                        '[@_\d]|://|^\s*www\.'), false))],
            lambda r: _cx_name_parts(r))[1]],
        lambda p: struct_pack(first_name := _cx_name_part(p.keep, p.f, p.fk),
                              last_name := _cx_name_part(p.keep, p.l, p.lk)))[1];
CREATE OR REPLACE MACRO cx_split_full_name(x) AS _cx_split_name(cx_name_head(x));

-- American Soundex. h and w are dropped before runs of equal codes are merged, so letters
-- either side of them count once (Ashcraft -> A261). Vowels (0) keep runs apart and are
-- dropped after merging (Tymczak -> T522). The first letter's own code absorbs a following
-- equal code (Pfister -> P236), except for h and w, which have none.
CREATE OR REPLACE MACRO _cx_soundex_runs(s) AS
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        regexp_replace(
            translate(s, 'abcdefgijklmnopqrstuvxyzhw', '012301202245501262301202'),
            '0+', '0', 'g'), '1+', '1', 'g'), '2+', '2', 'g'), '3+', '3', 'g'), '4+', '4', 'g'),
        '5+', '5', 'g'), '6+', '6', 'g');

CREATE OR REPLACE MACRO cx_soundex(x) AS
    list_transform(
        [regexp_replace(cx_name_std(x), '[^a-z]', '', 'g')],
        lambda s: CASE WHEN s = '' THEN NULL ELSE
            upper(left(s, 1))
            || rpad(left(replace(
                substr(_cx_soundex_runs(s), 1 + CAST(left(s, 1) NOT IN ('h', 'w') AS INTEGER)),
                '0', ''), 3), 3, '0') END)[1];
"""


def _family_name_pattern() -> str:
    """Regex whose group 1 is the family name of "Given [Middle...] [particles] Family".

    The lazy middle part makes the family name start as early as the words allow, so every
    particle just before the last word is taken in.
    """
    particles = "|".join(re.escape(p) for p in PARTICLES)
    return rf"(?i)^\S+\s+(?:.*?\s)??((?:(?:{particles})\.?\s+)*\S+)$"


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the name macros on `con`.

    ``cx_name_std(x)``, ``cx_name_clean(x)``, ``cx_name_suffix(x)``, ``cx_name_key(x)``,
    ``cx_split_full_name(x)`` (a ``STRUCT(first_name, last_name)``) and ``cx_soundex(x)``, plus
    the table ``cx_ref_nicknames`` they were built from.
    """
    nicknames, formals = read_pairs(NICKNAMES_CSV)
    ref = table("ref_nicknames")
    con.execute(f"CREATE OR REPLACE TABLE {ref} (nickname VARCHAR PRIMARY KEY, formal VARCHAR)")
    con.execute(f"INSERT INTO {ref} SELECT unnest($k), unnest($v)", {"k": nicknames, "v": formals})
    con.execute(
        f"SET VARIABLE cx_nicknames = (SELECT map(list(nickname), list(formal)) FROM {ref})"
    )
    # A formal name's nicknames, longest first ("charles": charlie, chuck, chas, ...): how a
    # handle may spell the first name a record keys on.
    con.execute(
        f"""SET VARIABLE cx_name_spellings = (
            SELECT map(list(formal ORDER BY formal), list(spellings ORDER BY formal)) FROM (
                SELECT formal, list(nickname ORDER BY length(nickname) DESC, nickname) AS spellings
                FROM {ref} GROUP BY formal))"""
    )
    generational = list(GENERATIONAL_SUFFIXES)
    con.execute(
        "SET VARIABLE cx_name_generational = map($k, $v)",
        {"k": generational, "v": [GENERATIONAL_SUFFIXES[k] for k in generational]},
    )
    con.execute("SET VARIABLE cx_name_honorifics = $v", {"v": list(HONORIFICS)})
    con.execute(
        "SET VARIABLE cx_name_suffixes = $v", {"v": generational + list(PROFESSIONAL_SUFFIXES)}
    )
    con.execute("SET VARIABLE cx_name_family_re = $v", {"v": _family_name_pattern()})
    con.execute("SET VARIABLE cx_name_junk = $v", {"v": list(JUNK_NAMES)})
    con.execute("SET VARIABLE cx_name_separators = $v", {"v": SEPARATORS})
    con.execute(_MACROS)
