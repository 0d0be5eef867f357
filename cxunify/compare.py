"""Stage 4, compare: for each candidate pair, one comparison level per field.

A level is a small integer, its meaning given by the comparison's labels: 0 is "different",
higher levels are the kinds of agreement, and -1 means a value is missing on either side (it
adds no evidence either way). The levels are CASE expressions over the two nodes ``l`` and
``r``, evaluated by the engine; DuckDB's jaro_winkler_similarity and damerau_levenshtein do the
fuzzy work.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxunify.sql import ident


@dataclass(frozen=True)
class ComparisonSpec:
    """A field comparison: labels by level, and the SQL CASE that computes the level."""

    name: str
    levels: tuple[str, ...]
    sql: str
    # Column whose value frequency adjusts the weight of one level (term frequency): by
    # default the top one (exact agreement).
    tf_column: str | None = None
    tf_level: int | None = None
    # The values are one person's (a mailbox, a phone line): two people share one by mistake or
    # as a household, however many people there are; names, dates and places are shared more
    # often the more people there are.
    identifier: bool = False
    # Every level above "different" shares one person's value (a mailbox, a line, an id, a
    # handle) or a part of it: two records agreeing there are never less likely one person than
    # two, so a fit from few matches keeps m at least u on those levels (they weigh 0 or more).
    agreement_never_against: bool = False

    @property
    def tf_gamma(self) -> int:
        return len(self.levels) - 1 if self.tf_level is None else self.tf_level


def _name_derived(letters: str) -> str:
    """SQL: `letters` is nothing but the node's first name (as written, or its nickname key)
    and last name (or an initial) run together: agreeing on it repeats what the name
    comparisons already counted."""
    last = "replace(r.last_name_std, ' ', '')"
    spellings = [last]
    for first in ("replace(r.first_name_std, ' ', '')", "r.first_name_key"):
        spellings += [
            f"{first} || {last}",
            f"{last} || {first}",
            f"left({first}, 1) || {last}",
            f"{last} || left({first}, 1)",
            f"{first} || left({last}, 1)",
            first,
        ]
    return f"coalesce({letters} IN ({', '.join(spellings)}), false)"


def _one_digit_apart(a: str, b: str, digits: int) -> str:
    """SQL: the `digits`-digit numbers `a` and `b` differ by one typo in their decimal digits,
    one digit replaced or two adjacent digits swapped (a Damerau–Levenshtein distance of 1
    between their equal-length spellings), in integer arithmetic only."""

    def digit(x: str, k: int) -> str:  # the digit worth 10^k
        return f"(({x} // {10**k}) % 10)"

    def same_outside(low: int, high: int) -> str:  # equal in every digit but those in low..high
        above, below = 10 ** (high + 1), 10**low
        return f"({a} // {above} = {b} // {above} AND {a} % {below} = {b} % {below})"

    replaced = [same_outside(k, k) for k in range(digits)]
    swapped = [
        f"({same_outside(k, k + 1)} AND {digit(a, k)} = {digit(b, k + 1)} "
        f"AND {digit(a, k + 1)} = {digit(b, k)})"
        for k in range(digits - 1)
    ]
    return "(" + " OR ".join(replaced + swapped) + ")"


# A name-based local part or handle with a short number ("jsmith84", "james.smith7") is
# shared by different people with that name as soon as there are a few hundred of them: two
# digits are a birth year or a pick from a hundred. Only a longer number, or letters that are
# not the record's name, make such an agreement evidence of its own.
def _name_with_short_number(letters: str, digits: str) -> str:
    return f"({_name_derived(letters)} AND length({digits}) <= 2)"


_EMAIL_LETTERS = "regexp_replace(r.email_local, '[^a-z]', '', 'g')"
_EMAIL_DIGITS = "regexp_replace(r.email_local, '[^0-9]', '', 'g')"
_HANDLE_DIGITS = "regexp_replace(r.handle, '[^0-9]', '', 'g')"

# Per-node values the comparisons use, computed once per node (alias ``r`` is the node's
# record) rather than once per pair, where they would be recomputed millions of times.
NODE_FEATURES: dict[str, str] = {
    # yyyymmdd as a number: a typo check in arithmetic is several times cheaper than an edit
    # distance over formatted dates, and dates are compared on millions of pairs.
    "dob_digits": "(year(r.dob) * 10000 + month(r.dob) * 100 + day(r.dob))::INTEGER",
    "phone_last7": "right(r.phone_digits, 7)",
    "email_letters": _EMAIL_LETTERS,
    "email_digits": _EMAIL_DIGITS,
    "handle_digits": _HANDLE_DIGITS,
    "email_name_based": _name_with_short_number(_EMAIL_LETTERS, _EMAIL_DIGITS),
    "handle_name_based": _name_with_short_number("r.handle_letters", _HANDLE_DIGITS),
}


FIRST_NAME = ComparisonSpec(
    "first_name",
    (
        "different",
        "initial",
        "swapped with last name",
        "jaro-winkler >= 0.80",
        "jaro-winkler >= 0.92",
        "nickname",
        "exact",
    ),
    """CASE
        WHEN l.first_name_std IS NULL OR r.first_name_std IS NULL THEN -1
        -- An initial agrees at most as an initial, also with the same initial: J. and J. may
        -- be José and Joshua, and were weighed as two equal names (+6.8 bits, not +4.3).
        WHEN length(l.first_name_std) = 1 OR length(r.first_name_std) = 1
             THEN CASE WHEN left(l.first_name_std, 1) = left(r.first_name_std, 1) THEN 1
                       ELSE 0 END
        WHEN l.first_name_std = r.first_name_std THEN 6
        WHEN l.first_name_key = r.first_name_key THEN 5
        WHEN jaro_winkler_similarity(l.first_name_std, r.first_name_std) >= 0.92 THEN 4
        WHEN jaro_winkler_similarity(l.first_name_std, r.first_name_std) >= 0.80 THEN 3
        WHEN jaro_winkler_similarity(l.first_name_std, r.last_name_std) >= 0.92
             AND jaro_winkler_similarity(l.last_name_std, r.first_name_std) >= 0.92 THEN 2
        ELSE 0 END""",
    tf_column="first_name_std",
)

LAST_NAME = ComparisonSpec(
    "last_name",
    ("different", "initial", "jaro-winkler >= 0.80", "jaro-winkler >= 0.92", "exact"),
    """CASE
        WHEN l.last_name_std IS NULL OR r.last_name_std IS NULL THEN -1
        WHEN l.last_name_std = r.last_name_std THEN 4
        WHEN jaro_winkler_similarity(l.last_name_std, r.last_name_std) >= 0.92 THEN 3
        WHEN jaro_winkler_similarity(l.last_name_std, r.last_name_std) >= 0.80 THEN 2
        WHEN (length(l.last_name_std) = 1 OR length(r.last_name_std) = 1)
             AND left(l.last_name_std, 1) = left(r.last_name_std, 1) THEN 1
        ELSE 0 END""",
    tf_column="last_name_std",
)

EMAIL = ComparisonSpec(
    "email",
    ("different", "same local part, other domain", "local part one edit apart", "exact"),
    """CASE
        WHEN l.email_std IS NULL OR r.email_std IS NULL THEN -1
        WHEN l.email_std = r.email_std THEN 3
        -- the same local part spelling either record's name with a short number
        WHEN l.email_local = r.email_local
             AND (l.email_name_based OR r.email_name_based) THEN -1
        WHEN l.email_local = r.email_local THEN 1
        -- one typo in the letters; a different number is a different mailbox
        WHEN damerau_levenshtein(l.email_local, r.email_local) <= 1
             AND l.email_domain = r.email_domain AND l.email_digits = r.email_digits THEN 2
        ELSE 0 END""",
    # "jsmith" at two providers says little once there are many J. Smiths; "jsmith1987" a lot.
    tf_column="email_local",
    tf_level=1,
    identifier=True,
    agreement_never_against=True,
)

PHONE = ComparisonSpec(
    "phone",
    ("different", "same last 7 digits", "exact"),
    """CASE
        WHEN l.phone_digits IS NULL OR r.phone_digits IS NULL THEN -1
        WHEN l.phone = r.phone THEN 2
        WHEN l.phone_last7 = r.phone_last7 THEN 1
        ELSE 0 END""",
    identifier=True,
    agreement_never_against=True,
)

DOB = ComparisonSpec(
    "dob",
    ("different", "same year", "one typo or day/month swapped", "exact"),
    f"""CASE
        WHEN l.dob IS NULL OR r.dob IS NULL THEN -1
        WHEN l.dob = r.dob THEN 3
        WHEN {_one_digit_apart("l.dob_digits", "r.dob_digits", 8)}
             OR (year(l.dob) = year(r.dob) AND month(l.dob) = day(r.dob)
                 AND day(l.dob) = month(r.dob)) THEN 2
        WHEN year(l.dob) = year(r.dob) THEN 1
        ELSE 0 END""",
)

# Street, postcode and city are compared together: they move together when someone moves and
# agree together within a household, so counting them as three independent pieces of evidence
# would triple-count one fact.
ADDRESS = ComparisonSpec(
    "address",
    (
        "different",
        "same city",
        "same postcode",
        "similar street, other postcode and city",
        "similar street and same postcode or city",
        "same street and postcode",
    ),
    """CASE
        WHEN coalesce(l.street_std, l.postcode, l.city_std) IS NULL
          OR coalesce(r.street_std, r.postcode, r.city_std) IS NULL THEN -1
        WHEN l.street_std = r.street_std AND (l.postcode = r.postcode
             OR (l.postcode IS NULL OR r.postcode IS NULL) AND l.city_std = r.city_std) THEN 5
        WHEN jaro_winkler_similarity(l.street_std, r.street_std) >= 0.88
             AND (l.postcode = r.postcode OR l.city_std = r.city_std) THEN 4
        WHEN jaro_winkler_similarity(l.street_std, r.street_std) >= 0.88 THEN 3
        WHEN l.postcode = r.postcode THEN 2
        WHEN l.city_std = r.city_std THEN 1
        -- a postcode on one side and only a city on the other: nothing to compare
        WHEN (l.street_std IS NULL OR r.street_std IS NULL)
             AND (l.postcode IS NULL OR r.postcode IS NULL)
             AND (l.city_std IS NULL OR r.city_std IS NULL) THEN -1
        ELSE 0 END""",
)

NATIONAL_ID = ComparisonSpec(
    "national_id",
    ("different", "one typo", "exact"),
    """CASE
        WHEN l.national_id IS NULL OR r.national_id IS NULL THEN -1
        WHEN l.national_id = r.national_id THEN 2
        WHEN damerau_levenshtein(l.national_id, r.national_id) <= 1 THEN 1
        ELSE 0 END""",
    identifier=True,
    agreement_never_against=True,
)

# Which comparison a blocking key informs. Pairs found by a rule agree on its keys by
# construction, so when training, those comparisons say nothing about such pairs.
KEY_COMPARISON = {
    "first_name_std": "first_name",
    "first_name_key": "first_name",
    "last_name_std": "last_name",
    "last_name_soundex": "last_name",
    "surname_key": "last_name",
    "last_initial": "last_name",
    "email_std": "email",
    "email_local": "email",
    "email_domain": "email",
    "phone": "phone",
    "phone_digits": "phone",
    "dob": "dob",
    "street_std": "address",
    "postcode": "address",
    "city_std": "address",
    "national_id": "national_id",
    "handle_letters": "handle",
}


def _handle_vs(handle: str, other: str) -> str:
    """Level of a handle on one side against the names and email of the other side."""
    letters = f"{handle}.handle_letters"
    last = f"replace({other}.last_name_std, ' ', '')"
    return f"""CASE
            WHEN {letters} = {other}.email_letters
                 AND {handle}.handle_digits = {other}.email_digits THEN
                CASE WHEN {handle}.handle_name_based OR {other}.email_name_based THEN -1
                     ELSE 2 END
            -- The handle's own record has a surname: the name comparisons already weigh it,
            -- and a handle spelling the same names would count that evidence twice. An
            -- initial ("Jeffrey W.") leaves the rest of the surname to the handle.
            WHEN length({handle}.last_name_std) > 1 THEN -1
            WHEN {other}.last_name_std IS NULL OR length({other}.last_name_std) < 3 THEN -1
            WHEN contains({letters}, {last}) THEN 1
            -- a handle holding only a first name repeats the first-name comparison
            WHEN contains({letters}, replace({other}.first_name_std, ' ', ''))
                 OR contains({letters}, {other}.first_name_key) THEN -1
            ELSE 0 END"""


# Social handles are built from names ("tori_perez2606", "grayjonathan"). What a handle adds
# to the name comparisons is the surname, when its own record shows only a first name or an
# initial ("Jason N."), or the mailbox, when it spells the other record's email local part.
HANDLE = ComparisonSpec(
    "handle",
    ("different", "contains the other record's surname", "same as the email local part"),
    f"""CASE
        WHEN l.handle_letters IS NULL AND r.handle_letters IS NULL THEN -1
        WHEN l.handle_letters IS NOT NULL AND r.handle_letters IS NOT NULL THEN
            -- the same handle on two platforms; handles alike but for digits are two people
            -- as often as one
            CASE WHEN l.handle = r.handle THEN 2
                 WHEN l.handle_letters = r.handle_letters THEN -1 ELSE 0 END
        WHEN l.handle_letters IS NOT NULL THEN {_handle_vs("l", "r")}
        ELSE {_handle_vs("r", "l")} END""",
    agreement_never_against=True,
)

COMPARISONS: tuple[ComparisonSpec, ...] = (
    FIRST_NAME,
    LAST_NAME,
    EMAIL,
    PHONE,
    DOB,
    ADDRESS,
    NATIONAL_ID,
    HANDLE,
)
COMPARISON_BY_NAME = {c.name: c for c in COMPARISONS}


def gamma_columns(comparisons: tuple[ComparisonSpec, ...] = COMPARISONS) -> list[str]:
    """The SELECT items computing each comparison's level as ``gamma_<name>``."""
    return [f"CAST({c.sql} AS TINYINT) AS {ident('gamma_' + c.name)}" for c in comparisons]


def gammas_sql(
    pairs_sql: str, nodes_sql: str, comparisons: tuple[ComparisonSpec, ...] = COMPARISONS
) -> str:
    """SELECT left_node, right_node and every gamma for the pairs in `pairs_sql`."""
    return f"""
        SELECT p.left_node, p.right_node, {", ".join(gamma_columns(comparisons))}
        FROM ({pairs_sql}) p
        JOIN {nodes_sql} l ON l.node = p.left_node
        JOIN {nodes_sql} r ON r.node = p.right_node
    """
