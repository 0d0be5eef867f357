"""Name standardisation macros: examples for each rule, the nickname table, properties over
arbitrary text, and one pass over a table large enough to show the macros run vectorised."""

from __future__ import annotations

import csv

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cxunify.standardize import names
from tests.conftest import each, one


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Robert", "robert"),
        ("  ROBERT   SMITH ", "robert smith"),
        ("José Núñez", "jose nunez"),
        ("Søren Łukasz Groß", "soren lukasz gross"),
        ("O'Brien", "obrien"),
        ("O’Brien", "obrien"),
        ("Mary-Jane", "mary jane"),
        ("Smith-Jones, Anne", "smith jones anne"),
        ("Dr. Robert J. Smith Jr.", "robert j smith"),
        ("Mr Bob Smith", "bob smith"),
        ("MRS. JANE DOE", "jane doe"),
        ("Ms Jane Doe", "jane doe"),
        ("Miss Jane Doe", "jane doe"),
        ("Mx. Sam Lee", "sam lee"),
        ("Prof Ada Lovelace", "ada lovelace"),
        ("Sir Elton John", "elton john"),
        ("Dame Judi Dench", "judi dench"),
        ("Rev. Martin Luther King Jr.", "martin luther king"),
        ("John Smith Sr", "john smith"),
        ("John Smith II", "john smith"),
        ("John Smith III", "john smith"),
        ("John Smith IV", "john smith"),
        ("Jane Doe PhD", "jane doe"),
        ("Jane Doe, M.D.", "jane doe"),
        ("Jane Doe Esq.", "jane doe"),
        ("SMITH, III", "smith"),
        ("Md Rahman", "md rahman"),  # a leading "Md" is Mohammed, not a degree
        ("Jr", "jr"),  # a suffix alone is all there is
        ("J.R.R. Tolkien", "jrr tolkien"),
        ("n/a", None),
        ("N/A", None),
        ("NA", None),
        ("none", None),
        ("NULL", None),
        ("Unknown", None),
        ("test", None),
        ("-", None),
        (".", None),
        ("?", None),
        ("xxx", None),
        ("Not Provided", None),
        ("Mr.", None),
        ("12345", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_name_std(con, raw, expected):
    assert one(con, "cx_name_std", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("o'brien", "O'Brien"),
        ("O'BRIEN", "O'Brien"),
        ("MARY-JANE", "Mary-Jane"),
        ("mary-jane", "Mary-Jane"),
        ("mcdonald", "Mcdonald"),
        ("McDonald", "McDonald"),  # mixed case was typed with care
        ("van der Berg", "van der Berg"),
        ("  JOSÉ   NÚÑEZ ", "José Núñez"),  # accents kept
        ("Dr. Robert J. Smith Jr.", "Robert J. Smith"),
        ("MRS JANE DOE", "Jane Doe"),
        ("Robert Smith, PhD", "Robert Smith"),
        ("Smith, Robert, Jr.", "Smith, Robert"),
        ("SMITH, III", "Smith"),
        ("n/a", None),
        ("xxx", None),
        ("Ms", None),
        ("", None),
        (None, None),
    ],
)
def test_name_clean(con, raw, expected):
    assert one(con, "cx_name_clean", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Robert Smith Jr.", "jr"),
        ("Robert Smith Jr", "jr"),
        ("Smith Jr", "jr"),
        ("Robert Smith, Junior", "jr"),
        ("Robert Smith Sr.", "sr"),
        ("SMITH, III", "iii"),
        ("John Smith II", "ii"),
        ("John Smith IV", "iv"),
        ("John Smith 3rd", "iii"),
        ("Dr. John Smith", None),
        ("Jr", None),
        ("Jane Doe PhD", None),
        (None, None),
    ],
)
def test_name_suffix(con, raw, expected):
    assert one(con, "cx_name_suffix", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("bob", "robert"),
        ("Bobby", "robert"),
        ("ROB", "robert"),
        ("Robbie Smith", "robert"),
        ("Robert", "robert"),
        ("Bill", "william"),
        ("will", "william"),
        ("Liam", "william"),
        ("Liz", "elizabeth"),
        ("Betty", "elizabeth"),
        ("Eliza", "elizabeth"),
        ("Peggy", "margaret"),
        ("Meg", "margaret"),
        ("Jimmy", "james"),
        ("Jamie", "james"),
        ("Kate", "katherine"),
        ("Cathy", "katherine"),
        ("Catherine", "katherine"),
        ("Kathryn", "katherine"),
        ("Katharine", "katherine"),
        ("Jack", "john"),
        ("Johnny", "john"),
        ("Mike", "michael"),
        ("Chris", "christopher"),
        ("Dr. Bob Smith", "robert"),
        ("Zebediah", "zebediah"),  # unknown names are their own key
        ("n/a", None),
        (None, None),
    ],
)
def test_name_key(con, raw, expected):
    assert one(con, "cx_name_key", raw) == expected


@pytest.mark.parametrize(
    ("raw", "first", "last"),
    [
        ("Dr. Robert J. Smith Jr.", "Robert", "Smith"),
        ("Robert Smith", "Robert", "Smith"),
        ("ROBERT SMITH", "Robert", "Smith"),
        ("Smith, Robert", "Robert", "Smith"),
        ("SMITH, ROBERT J", "Robert", "Smith"),
        ("Smith, Robert, Jr.", "Robert", "Smith"),
        ("Robert Smith, PhD", "Robert", "Smith"),
        ("María de la Cruz", "María", "de la Cruz"),
        ("Ludwig van Beethoven", "Ludwig", "van Beethoven"),
        ("Anna Maria van der Berg", "Anna", "van der Berg"),
        ("Jean-Claude Van Damme", "Jean-Claude", "Van Damme"),
        ("Mohammed bin Salman", "Mohammed", "bin Salman"),
        ("Leonardo Di Caprio", "Leonardo", "Di Caprio"),
        ("Mary St. John", "Mary", "St. John"),
        # a display name's tagline is not the family name
        ("Mel Manning | books lover", "Mel", "Manning"),
        ("MARY CHANDLER | apparel lover", "Mary", "Chandler"),
        ("Jim | apparel lover", "Jim", None),
        ("Ana Ruiz • Designer", "Ana", "Ruiz"),
        ("o'brien", "O'Brien", None),
        ("Madonna", "Madonna", None),
        ("Unknown Smith", None, "Smith"),
        ("@handle", None, None),
        ("bob@example.com", None, None),
        ("cool_guy_99", None, None),
        ("https://example.com/me", None, None),
        ("n/a", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_split_full_name(con, raw, first, last):
    assert one(con, "cx_split_full_name", raw) == {"first_name": first, "last_name": last}


def test_split_full_name_fields_are_addressable(con):
    row = con.execute(
        "SELECT s.first_name, s.last_name FROM (SELECT cx_split_full_name('Ann Lee') AS s)"
    ).fetchone()
    assert row == ("Ann", "Lee")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Robert", "R163"),
        ("Rupert", "R163"),
        ("Rubin", "R150"),
        ("Tymczak", "T522"),
        ("Pfister", "P236"),
        ("Ashcraft", "A261"),
        ("Ashcroft", "A261"),
        ("Honeyman", "H555"),
        ("Jackson", "J250"),
        ("Washington", "W252"),
        ("Lee", "L000"),
        ("Gutierrez", "G362"),
        ("Aaron", "A650"),
        ("O'Brien", "O165"),
        ("Dr. Robert Smith Jr.", "R163"),  # of the whole standardised name: robertsmith
        ("Núñez", "N520"),
        ("n/a", None),
        ("", None),
        (None, None),
    ],
)
def test_soundex(con, raw, expected):
    assert one(con, "cx_soundex", raw) == expected


def test_soundex_of_multi_word_name_uses_all_letters(con):
    assert one(con, "cx_soundex", "de la Cruz") == one(con, "cx_soundex", "Delacruz")


def test_install_is_idempotent(con):
    names.install(con)
    names.install(con)
    assert one(con, "cx_name_key", "Bobby") == "robert"
    assert con.execute("SELECT count(*) FROM cx_ref_nicknames").fetchone()[0] >= 400


def test_macros_accept_non_text_arguments(con):
    row = con.execute("SELECT cx_name_std(42), cx_name_clean(NULL), cx_soundex(NULL)").fetchone()
    assert row == (None, None, None)


# --- the nickname table -------------------------------------------------------------------


def _nicknames() -> list[dict[str, str]]:
    with names.NICKNAMES_CSV.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_nickname_table_shape():
    rows = _nicknames()
    assert len(rows) >= 400
    assert set(rows[0]) == {"nickname", "formal"}
    # A nickname's first row gives its key; a nickname listed again names another formal name
    # it may stand for (Sammy: Samuel, then Samantha), which the merge guards accept too.
    pairs = [(r["nickname"], r["formal"]) for r in rows]
    assert len(pairs) == len(set(pairs)), "a pair is listed once"
    for row in rows:
        for value in row.values():
            # Keys are looked up with the first word of cx_name_std: one lower-case word.
            assert value.isascii() and value.isalpha() and value == value.lower(), row
        assert row["nickname"] != row["formal"]


def test_nickname_table_is_one_step():
    """A formal name is never itself a nickname, so a key is reached in one lookup."""
    rows = _nicknames()
    nicknames = {r["nickname"] for r in rows}
    assert not nicknames & {r["formal"] for r in rows}


# --- properties ---------------------------------------------------------------------------

_ALL = (
    "cx_name_std(v), cx_name_clean(v), cx_name_suffix(v), cx_name_key(v), "
    "cx_split_full_name(v), cx_soundex(v)"
)

# Values are checked a list per statement (see tests.conftest.each): 15 lists of 5 to 25 values
# are at least the 75 values one at a time that these properties were checked on.
_TEXTS = st.lists(st.text(), min_size=5, max_size=25)


@settings(max_examples=15, deadline=None)
@given(_TEXTS)
def test_never_raises(con, texts):
    assert len(each(con, _ALL, v=texts)) == len(texts)


@settings(max_examples=15, deadline=None)
@given(_TEXTS)
def test_name_std_is_idempotent(con, texts):
    stds = [std for (std,) in each(con, "cx_name_std(v)", v=texts)]
    found = [std for std in stds if std is not None]
    for std, again in zip(found, each(con, "cx_name_std(v)", v=found), strict=True):
        assert again == (std,), std
        assert std == std.strip() and "  " not in std, std


_NAMEY = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzéñøÅÜ'-", min_size=1, max_size=10),
    min_size=1,
    max_size=4,
).map(" ".join)
_TITLED = st.tuples(
    _NAMEY, st.sampled_from(["", "Dr. ", "MR ", "Mrs "]), st.sampled_from(["", " Jr."])
)


@settings(max_examples=15, deadline=None)
@given(st.lists(_TITLED, min_size=5, max_size=25))
@example([("-", "", " Jr.")])  # found by hypothesis: "- Jr." was the name "jr"
@example([("mx", "", " Jr.")])  # found by hypothesis: "MX Jr." was "jr"
@example([("cbe a", "Dr. ", "")])  # found by hypothesis: "Dr. CBE A" was "a"
def test_titles_and_case_do_not_change_the_matching_form(con, cases):
    rows = each(
        con,
        "cx_name_std(n), cx_name_std(t), cx_name_key(n), cx_soundex(n)",
        n=[name for name, _, _ in cases],
        t=[title + name.upper() + suffix for name, title, suffix in cases],
    )
    for (name, title, suffix), (plain, titled, key, code) in zip(cases, rows, strict=True):
        assert titled in (plain, None), (name, title, suffix)
        if plain is not None:
            assert key is not None and " " not in key, name
            assert code is None or (len(code) == 4 and code[0].isalpha() and code[1:].isdigit()), (
                name
            )


# --- vectorised over a large table ----------------------------------------------------------


def test_every_macro_runs_over_a_large_table(con):
    # 960 name shapes, each many times over, and a number in every 97th: a table, not a value.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE many_names AS
        SELECT ['', 'Dr. ', 'MRS ', 'mr. ', ''][i % 5 + 1]
               || ['Robert', 'bob', 'María', 'KATE', 'o''brien', 'Liz', 'n/a', 'Jean-Luc'][
                      i % 8 + 1]
               || ' '
               || ['Smith', 'de la Cruz', 'NÚÑEZ', 'van der Berg', 'Lee', 'O''Neil'][i % 6 + 1]
               || ['', ' Jr.', ', III', ' PhD'][i % 4 + 1]
               || CASE WHEN i % 97 = 0 THEN ' ' || CAST(i AS VARCHAR) ELSE '' END AS name
        FROM range(20000) AS r(i)
        """
    )
    row = con.execute(
        """
        SELECT count(*), count(cx_name_std(name)), count(cx_name_clean(name)),
               count(cx_name_suffix(name)), count(DISTINCT cx_name_key(name)),
               count(cx_split_full_name(name).first_name), count(DISTINCT cx_soundex(name))
        FROM many_names
        """
    ).fetchone()
    total, std, clean, suffix, keys, first, codes = row
    assert total == 20_000
    assert std == clean > 15_000
    assert 15_000 < first <= std  # names carrying digits look like handles: not split
    assert 0 < suffix < total
    assert keys > 1 and codes > 1
