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

    @property
    def tf_gamma(self) -> int:
        return len(self.levels) - 1 if self.tf_level is None else self.tf_level


def _name_derived(letters: str, side: str) -> str:
    """SQL: `letters` is nothing but `side`'s first and last name (or initial) run together,
    so agreeing on it repeats what the name comparisons already counted."""
    first = f"replace({side}.first_name_std, ' ', '')"
    last = f"replace({side}.last_name_std, ' ', '')"
    return (
        f"({letters} IN ({first} || {last}, {last} || {first}, left({first}, 1) || {last}, "
        f"{last} || left({first}, 1), {first}, {last}))"
    )


_LOCAL_LETTERS = "regexp_replace(l.email_local, '[^a-z]', '', 'g')"

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
        WHEN l.first_name_std = r.first_name_std THEN 6
        WHEN l.first_name_key = r.first_name_key THEN 5
        WHEN jaro_winkler_similarity(l.first_name_std, r.first_name_std) >= 0.92 THEN 4
        WHEN jaro_winkler_similarity(l.first_name_std, r.first_name_std) >= 0.80 THEN 3
        WHEN jaro_winkler_similarity(l.first_name_std, r.last_name_std) >= 0.92
             AND jaro_winkler_similarity(l.last_name_std, r.first_name_std) >= 0.92 THEN 2
        WHEN (length(l.first_name_std) = 1 OR length(r.first_name_std) = 1)
             AND left(l.first_name_std, 1) = left(r.first_name_std, 1) THEN 1
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
    f"""CASE
        WHEN l.email_std IS NULL OR r.email_std IS NULL THEN -1
        WHEN l.email_std = r.email_std THEN 3
        WHEN l.email_local = r.email_local
             AND coalesce({_name_derived(_LOCAL_LETTERS, "l")}, false)
             AND NOT regexp_matches(l.email_local, '[0-9]') THEN -1
        WHEN l.email_local = r.email_local THEN 1
        WHEN damerau_levenshtein(l.email_local, r.email_local) <= 1
             AND l.email_domain = r.email_domain THEN 2
        ELSE 0 END""",
    # "jsmith" at two providers says little once there are many J. Smiths; "jsmith1987" a lot.
    tf_column="email_local",
    tf_level=1,
)

PHONE = ComparisonSpec(
    "phone",
    ("different", "same last 7 digits", "exact"),
    """CASE
        WHEN l.phone_digits IS NULL OR r.phone_digits IS NULL THEN -1
        WHEN l.phone = r.phone THEN 2
        WHEN right(l.phone_digits, 7) = right(r.phone_digits, 7) THEN 1
        ELSE 0 END""",
)

DOB = ComparisonSpec(
    "dob",
    ("different", "same year", "one typo or day/month swapped", "exact"),
    """CASE
        WHEN l.dob IS NULL OR r.dob IS NULL THEN -1
        WHEN l.dob = r.dob THEN 3
        WHEN damerau_levenshtein(strftime(l.dob, '%Y%m%d'), strftime(r.dob, '%Y%m%d')) <= 1
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
)

# Which comparison a blocking key informs. Pairs found by a rule agree on its keys by
# construction, so when training, those comparisons say nothing about such pairs.
KEY_COMPARISON = {
    "first_name_std": "first_name",
    "first_name_key": "first_name",
    "last_name_std": "last_name",
    "last_name_soundex": "last_name",
    "surname_key": "last_name",
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
    h = f"{handle}.handle_letters"
    last = f"replace({other}.last_name_std, ' ', '')"
    same_local = f"{h} = regexp_replace({other}.email_local, '[^a-z]', '', 'g')"
    # A handle and an email that both just spell a name repeat the name comparisons.
    derived = (
        f"(coalesce({_name_derived(h, other)}, false) "
        f"OR coalesce({_name_derived(h, handle)}, false))"
    )
    return f"""CASE
            WHEN {same_local} AND NOT {derived} THEN 4
            WHEN {same_local} THEN -1
            -- The handle's own record has a surname: the name comparisons already weigh it,
            -- and a handle spelling the same names would count that evidence twice. An
            -- initial ("Jeffrey W.") leaves the rest of the surname to the handle.
            WHEN length({handle}.last_name_std) > 1 THEN -1
            WHEN {other}.last_name_std IS NULL OR length({other}.last_name_std) < 3 THEN -1
            WHEN contains({h}, {last}) AND (contains({h}, coalesce({other}.first_name_std, '-'))
                 OR contains({h}, coalesce({other}.first_name_key, '-'))
                 OR contains({h}, left({other}.first_name_std, 1) || {last})) THEN 3
            WHEN contains({h}, {last}) THEN 2
            WHEN length({other}.first_name_std) >= 3 AND (contains({h}, {other}.first_name_std)
                 OR contains({h}, {other}.first_name_key)) THEN 1
            ELSE 0 END"""


# Social handles are built from names ("tori_perez2606", "grayjonathan"): a handle that
# spells the other record's email local part or its names is evidence, whichever side has it.
HANDLE = ComparisonSpec(
    "handle",
    (
        "different",
        "contains the first name only",
        "contains the last name",
        "contains first (or its initial) and last name",
        "same as the email local part",
    ),
    f"""CASE
        WHEN l.handle_letters IS NULL AND r.handle_letters IS NULL THEN -1
        WHEN l.handle_letters IS NOT NULL AND r.handle_letters IS NOT NULL THEN
            -- the same handle on two platforms; handles alike but for digits are two people
            -- as often as one
            CASE WHEN l.handle = r.handle THEN 4
                 WHEN l.handle_letters = r.handle_letters THEN -1 ELSE 0 END
        WHEN l.handle_letters IS NOT NULL THEN {_handle_vs("l", "r")}
        ELSE {_handle_vs("r", "l")} END""",
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
