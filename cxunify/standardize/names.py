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

import csv
from pathlib import Path

import duckdb

from cxunify.sql import table

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
NICKNAMES_CSV = DATA_DIR / "nicknames.csv"

# Titles said before a name. Removed wherever they appear: none of them is plausibly a name.
HONORIFICS: tuple[str, ...] = (
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "rev", "revd",
    "mister", "mstr", "mme", "mlle",
)
# Generational suffixes and the code cx_name_suffix reports for each spelling.
GENERATIONAL_SUFFIXES: dict[str, str] = {
    "jr": "jr", "junior": "jr", "sr": "sr", "senior": "sr",
    "ii": "ii", "2nd": "ii", "iii": "iii", "3rd": "iii", "iv": "iv", "4th": "iv",
}
# Letters after a name. Like generational suffixes they are only dropped after the first word:
# "Md" in first place is the usual short form of Mohammed, not a degree.
PROFESSIONAL_SUFFIXES: tuple[str, ...] = (
    "phd", "md", "esq", "esquire", "dds", "dmd", "dvm", "mba", "cpa", "obe", "mbe", "cbe", "qc",
    "kc",
)
# Words that start a multi-word family name ("de la Cruz", "van der Berg", "bin Salman").
PARTICLES: tuple[str, ...] = (
    "de", "da", "das", "do", "dos", "van", "von", "der", "den", "del", "della", "la", "le", "di",
    "du", "des", "st", "ste", "san", "bin", "binti", "ibn", "al", "el", "ter", "ten",
)
# Placeholders typed into name fields; they identify nobody. Compared with the lower-cased
# input, with the standardised form and with the standardised form minus spaces.
JUNK_NAMES: tuple[str, ...] = (
    "n/a", "na", "none", "null", "unknown", "test", "-", ".", "?", "xxx", "nil", "nan",
    "undefined", "not provided", "not applicable", "notprovided", "notapplicable", "no name",
    "noname", "anonymous", "anon", "tbd", "tba", "xx", "xxxx", "xxxxx", "asdf", "testtest",
    "customer", "guest", "unk", "name", "firstname", "lastname", "fullname", "nobody", "someone",
)

_MACROS = r"""
-- `v` where `keep` is true, else NULL. Unlike CASE this evaluates `v` unconditionally, which
-- lets DuckDB compute a repeated sub-expression of `v` once: inside CASE branches every
-- repetition of a macro argument is evaluated again.
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
                '[^\p{L}\p{N}\p{M}]+', ' ', 'g'),
            ' '),
        lambda t: t <> '');

-- Titles go wherever they are; suffixes only after the first word, so a lone "Jr" stays.
CREATE OR REPLACE MACRO _cx_name_drop(words) AS
    list_filter(
        list_filter(words, lambda t: NOT list_contains(getvariable('cx_name_honorifics'), t)),
        lambda t, i: i = 1 OR NOT list_contains(getvariable('cx_name_suffixes'), t));

CREATE OR REPLACE MACRO _cx_name_unjunk(raw, s) AS
    _cx_name_keep(
        NOT (s = ''
             OR NOT regexp_matches(s, '\p{L}')
             OR list_contains(getvariable('cx_name_junk'), raw)
             OR list_contains(getvariable('cx_name_junk'), s)
             OR list_contains(getvariable('cx_name_junk'), replace(s, ' ', ''))),
        s);

CREATE OR REPLACE MACRO cx_name_std(x) AS
    _cx_name_unjunk(lower(trim(CAST(x AS VARCHAR))),
                    array_to_string(_cx_name_drop(_cx_name_words(x)), ' '));

-- Display-form words: split on whitespace only, so punctuation inside a word survives.
CREATE OR REPLACE MACRO _cx_name_display_words(x) AS
    list_filter(
        string_split(regexp_replace(replace(trim(CAST(x AS VARCHAR)), ',', ', '), '\s+', ' ', 'g'),
                     ' '),
        lambda t: t <> '');

-- A display word's identity for the title/suffix lists: "Jr.," and "(Dr)" are jr and dr.
CREATE OR REPLACE MACRO _cx_name_word_key(t) AS regexp_replace(lower(t), '[^\p{L}\p{N}]', '', 'g');

-- The display name without titles and suffixes, and without the commas they leave behind.
CREATE OR REPLACE MACRO _cx_name_strip(x) AS
    regexp_replace(
        array_to_string(
            list_filter(
                list_filter(_cx_name_display_words(x),
                            lambda t: NOT list_contains(getvariable('cx_name_honorifics'),
                                                        _cx_name_word_key(t))),
                lambda t, i: i = 1 OR NOT list_contains(getvariable('cx_name_suffixes'),
                                                        _cx_name_word_key(t))),
            ' '),
        '^[\s,;:]+|[\s,;:]+$', '', 'g');

CREATE OR REPLACE MACRO _cx_name_capitalise(s) AS
    array_to_string(
        list_transform(regexp_extract_all(s, '[\p{L}\p{M}]+|[^\p{L}\p{M}]+'),
                       lambda p: upper(left(p, 1)) || lower(substr(p, 2))),
        '');

-- Shouting or all-lower input says nothing about the real capitalisation, so guess it;
-- anything mixed was typed with care and is kept.
CREATE OR REPLACE MACRO _cx_name_proper(s) AS
    nullif([s, _cx_name_capitalise(s)][CAST(s = upper(s) OR s = lower(s) AS INTEGER) + 1], '');

CREATE OR REPLACE MACRO cx_name_clean(x) AS
    _cx_name_keep(cx_name_std(x) IS NOT NULL, _cx_name_proper(_cx_name_strip(x)));

-- One part of an already stripped full name: only the junk check and the casing are left.
CREATE OR REPLACE MACRO _cx_name_part(p) AS
    _cx_name_keep(cx_name_std(p) IS NOT NULL, _cx_name_proper(p));

CREATE OR REPLACE MACRO _cx_name_suffix_of(words) AS
    getvariable('cx_name_generational')[
        list_filter(words, lambda t, i: i > 1
                    AND map_contains(getvariable('cx_name_generational'), t))[1]];

CREATE OR REPLACE MACRO cx_name_suffix(x) AS
    _cx_name_suffix_of(
        list_filter(_cx_name_words(x),
                    lambda t: NOT list_contains(getvariable('cx_name_honorifics'), t)));

CREATE OR REPLACE MACRO _cx_name_nickname(t) AS coalesce(getvariable('cx_nicknames')[t], t);

CREATE OR REPLACE MACRO cx_name_key(x) AS _cx_name_nickname(split_part(cx_name_std(x), ' ', 1));

-- How many words just before the last one are particles (not counting the first word, which
-- is always the given name): "María de la Cruz" -> 2.
CREATE OR REPLACE MACRO _cx_name_particle_run(words) AS
    coalesce(
        list_position(
            list_reverse(
                list_transform(words[2:len(words) - 1],
                               lambda t: list_contains(getvariable('cx_name_particles'),
                                                       lower(rtrim(t, '.'))))),
            false) - 1,
        greatest(len(words) - 2, 0));

-- "Smith, Robert J" is family name first, anything else given name first. Both readings are
-- computed and one is picked (see _cx_name_keep for why not CASE).
CREATE OR REPLACE MACRO _cx_name_split(c, words, keep) AS
    struct_pack(
        first_name := _cx_name_keep(keep, _cx_name_part(
            [words[1], split_part(trim(substr(c, strpos(c, ',') + 1), ' ,'), ' ', 1)][
                CAST(contains(c, ',') AS INTEGER) + 1])),
        last_name := _cx_name_keep(keep AND (len(words) > 1 OR contains(c, ',')), _cx_name_part(
            [array_to_string(words[len(words) - _cx_name_particle_run(words):], ' '),
             split_part(c, ',', 1)][CAST(contains(c, ',') AS INTEGER) + 1])));

-- Handles, emails and URLs land in name columns of social exports; they are not names.
CREATE OR REPLACE MACRO cx_split_full_name(x) AS
    _cx_name_split(_cx_name_strip(x), string_split(_cx_name_strip(x), ' '),
                   cx_name_std(x) IS NOT NULL
                   AND NOT regexp_matches(CAST(x AS VARCHAR), '[@_\d]|://|^\s*www\.'));

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

CREATE OR REPLACE MACRO _cx_soundex_of(s) AS
    upper(left(s, 1))
    || rpad(left(replace(
        substr(_cx_soundex_runs(s), 1 + CAST(left(s, 1) NOT IN ('h', 'w') AS INTEGER)),
        '0', ''), 3), 3, '0');

CREATE OR REPLACE MACRO cx_soundex(x) AS
    _cx_soundex_of(nullif(regexp_replace(cx_name_std(x), '[^a-z]', '', 'g'), ''));
"""


def _read_pairs(source: Path) -> tuple[list[str], list[str]]:
    """Two-column reference CSV as key and value lists; the first spelling of a key wins."""
    keys: list[str] = []
    values: list[str] = []
    seen: set[str] = set()
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) < 2:
                continue
            key, value = row[0].strip().lower(), row[1].strip().lower()
            if key and value and key not in seen:
                seen.add(key)
                keys.append(key)
                values.append(value)
    return keys, values


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the name macros on `con`.

    ``cx_name_std(x)``, ``cx_name_clean(x)``, ``cx_name_suffix(x)``, ``cx_name_key(x)``,
    ``cx_split_full_name(x)`` (a ``STRUCT(first_name, last_name)``) and ``cx_soundex(x)``, plus
    the table ``cx_ref_nicknames`` they were built from.
    """
    nicknames, formals = _read_pairs(NICKNAMES_CSV)
    ref = table("ref_nicknames")
    con.execute(f"CREATE OR REPLACE TABLE {ref} (nickname VARCHAR PRIMARY KEY, formal VARCHAR)")
    con.execute(
        f"INSERT INTO {ref} SELECT unnest($k), unnest($v)", {"k": nicknames, "v": formals}
    )
    con.execute(
        f"SET VARIABLE cx_nicknames = (SELECT map(list(nickname), list(formal)) FROM {ref})"
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
    con.execute("SET VARIABLE cx_name_particles = $v", {"v": list(PARTICLES)})
    con.execute("SET VARIABLE cx_name_junk = $v", {"v": list(JUNK_NAMES)})
    con.execute(_MACROS)
