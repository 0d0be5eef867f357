"""Email standardisation: examples for each rule, and properties over arbitrary text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


def clean_and_std(con, value):
    return con.execute("SELECT cx_email_clean(?), cx_email_std(?)", [value, value]).fetchone()


@pytest.mark.parametrize(
    ("raw", "clean", "std"),
    [
        ("J.Doe+promo@GoogleMail.com", "j.doe+promo@googlemail.com", "jdoe@gmail.com"),
        ("  jane.doe@gmail.com ", "jane.doe@gmail.com", "janedoe@gmail.com"),
        ("Bob.Smith+x@yahoo.co.uk", "bob.smith+x@yahoo.co.uk", "bob.smith@yahoo.co.uk"),
        ("mailto:Jo@Work.COM", "jo@work.com", "jo@work.com"),
        ("test@test.com", None, None),
        ("someone@example.com", None, None),
        ("n/a", None, None),
        ("no-at-sign.com", None, None),
        ("x@y", None, None),
        (None, None, None),
    ],
)
def test_email_rules(std_con, raw, clean, std):
    assert clean_and_std(std_con, raw) == (clean, std)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_raises_and_std_is_idempotent(std_con, text):
    _, std = clean_and_std(std_con, text)
    if std is not None:
        assert clean_and_std(std_con, std)[1] == std
        assert std == std.lower() and "+" not in std.split("@")[0]


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z0-9]{1,6})?", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True),
    st.sampled_from(["gmail.com", "GoogleMail.com", "yahoo.com", "outlook.com"]),
)
def test_plus_tags_and_gmail_dots_do_not_make_another_person(std_con, local, tag, domain):
    plain = clean_and_std(std_con, f"{local}@{domain}")[1]
    tagged = clean_and_std(std_con, f"{local.upper()}+{tag}@{domain}")[1]
    assert plain == tagged
    if domain.lower() in ("gmail.com", "googlemail.com"):
        assert plain == local.replace(".", "") + "@gmail.com"


# --- Internationalised addresses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean", "std"),
    [
        ("дима@пример.рф", "дима@пример.рф", "дима@пример.рф"),
        ("Дима@ПРИМЕР.РФ", "дима@пример.рф", "дима@пример.рф"),
        ("дима@xn--e1afmkfd.xn--p1ai", "дима@xn--e1afmkfd.xn--p1ai", "дима@пример.рф"),
        ("José@Exämple.com", "josé@exämple.com", "josé@exämple.com"),
        # the same letters decomposed (e + combining accent), as macOS files names them
        ("Jose\u0301@Exa\u0308mple.com", "josé@exämple.com", "josé@exämple.com"),
        ("jose+news@XN--EXMPLE-CUA.com", "jose+news@xn--exmple-cua.com", "jose@exämple.com"),
        ("用户@例子.广告", "用户@例子.广告", "用户@例子.广告"),
        ("ab@例子。广告", "ab@例子.广告", "ab@例子.广告"),  # an ideographic full stop
        ("a.b+x@googlemail．com", "a.b+x@googlemail.com", "ab@gmail.com"),
        # not Punycode (or not IDNA): kept as written
        ("x@xn--abc-.com", "x@xn--abc-.com", "x@xn--abc-.com"),
        ("x@xn--a_b.com", "x@xn--a_b.com", "x@xn--a_b.com"),
        ("дима@пример", None, None),
    ],
)
def test_internationalised_addresses(std_con, raw, clean, std):
    assert clean_and_std(std_con, raw) == (clean, std)


def to_ascii_domain(domain: str) -> str:
    """The domain with each non-ASCII label in Punycode, as IDNA writes it."""
    return ".".join(
        label if label.isascii() else "xn--" + label.encode("punycode").decode()
        for label in domain.split(".")
    )


LETTERS = st.characters(categories=["Ll", "Lu", "Lo", "Nd"], exclude_characters="@.")


@settings(max_examples=100, deadline=None)
@given(st.text(LETTERS, min_size=1, max_size=63))
def test_punycode_decodes_like_python(std_con, label):
    label = label.lower()
    encoded = label.encode("punycode").decode()
    assert std_con.execute("SELECT cx_punycode_decode(?)", [encoded]).fetchone() == (label,)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="ascii"), max_size=20))
def test_punycode_never_raises_and_rejects_what_python_rejects(std_con, text):
    text = text.lower()
    try:
        expected = text.encode().decode("punycode")
    except (UnicodeError, ValueError, IndexError, OverflowError):
        expected = None
    if expected is not None and any(0xD800 <= ord(c) <= 0xDFFF for c in expected):
        expected = None  # Python lets a surrogate through, no text can hold one
    assert std_con.execute("SELECT cx_punycode_decode(?)", [text]).fetchone() == (expected,)


@settings(max_examples=100, deadline=None)
@given(
    st.text(LETTERS, min_size=1, max_size=12),
    st.lists(st.text(LETTERS, min_size=1, max_size=12), min_size=1, max_size=3),
    st.sampled_from(["com", "рф", "中国", "de"]),
)
def test_unicode_and_punycode_domains_are_one_address(std_con, local, labels, tld):
    domain = ".".join([*labels, tld])
    unicode_std = clean_and_std(std_con, f"{local}@{domain}")[1]
    # IDNA encodes the lower-case form (lower case as DuckDB has it: 'İ' is 'i', not 'i̇')
    lower = std_con.execute("SELECT nfc_normalize(lower(?))", [domain]).fetchone()[0]
    ascii_std = clean_and_std(std_con, f"{local}@{to_ascii_domain(lower)}")[1]
    assert unicode_std == ascii_std
    assert unicode_std is not None
    # idempotent, and lower case in Unicode's sense (NFC)
    assert clean_and_std(std_con, unicode_std)[1] == unicode_std
    assert unicode_std == unicodedata.normalize("NFC", unicode_std)
