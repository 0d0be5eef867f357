"""Email standardisation: examples for each rule, and properties over arbitrary text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import each


def clean_and_std(con, value):
    query = "SELECT cx_email_clean(?), cx_email_parts_std(cx_email_clean(?))"
    return con.execute(query, [value, value]).fetchone()


def stds(con, values: list) -> list:
    """The standard form of each value, in one query: binding the email macros takes tens of
    milliseconds, so the properties below are checked on lists of examples at a time."""
    query = "SELECT list_transform(?::VARCHAR[], lambda v: cx_email_parts_std(cx_email_clean(v)))"
    return con.execute(query, [values]).fetchone()[0]


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


_STD = "cx_email_parts_std(cx_email_clean({}))"


@settings(max_examples=6, deadline=None)
@given(st.lists(st.text(), min_size=15, max_size=50))
def test_never_raises_and_std_is_idempotent(std_con, texts):
    found = [std for std in stds(std_con, texts) if std is not None]
    for std, again in zip(found, stds(std_con, found), strict=True):
        assert again == std, std
        assert std == std.lower() and "+" not in std.split("@")[0], std


@settings(max_examples=6, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z0-9]{1,6})?", fullmatch=True),
            st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True),
            st.sampled_from(["gmail.com", "GoogleMail.com", "yahoo.com", "outlook.com"]),
        ),
        min_size=15,
        max_size=50,
    )
)
def test_plus_tags_and_gmail_dots_do_not_make_another_person(std_con, addresses):
    rows = each(
        std_con,
        f"{_STD.format('p')}, {_STD.format('t')}",
        p=[f"{local}@{domain}" for local, _, domain in addresses],
        t=[f"{local.upper()}+{tag}@{domain}" for local, tag, domain in addresses],
    )
    for (local, tag, domain), (plain, tagged) in zip(addresses, rows, strict=True):
        assert plain == tagged, (local, tag, domain)
        if domain.lower() in ("gmail.com", "googlemail.com"):
            assert plain == local.replace(".", "") + "@gmail.com", (local, domain)


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


@settings(max_examples=20, deadline=None)
@given(st.lists(st.text(LETTERS, min_size=1, max_size=63), min_size=5, max_size=25))
def test_punycode_decodes_like_python(std_con, labels):
    labels = [label.lower() for label in labels]
    encoded = [label.encode("punycode").decode() for label in labels]
    rows = each(std_con, "cx_punycode_decode(v)", v=encoded)
    for label, code, row in zip(labels, encoded, rows, strict=True):
        assert row == (label,), code


def python_punycode(text: str) -> str | None:
    try:
        expected = text.encode().decode("punycode")
    except (UnicodeError, ValueError, IndexError, OverflowError):
        return None
    if any(0xD800 <= ord(c) <= 0xDFFF for c in expected):
        return None  # Python lets a surrogate through, no text can hold one
    return expected


@settings(max_examples=20, deadline=None)
@given(st.lists(st.text(st.characters(codec="ascii"), max_size=20), min_size=5, max_size=25))
def test_punycode_never_raises_and_rejects_what_python_rejects(std_con, texts):
    texts = [text.lower() for text in texts]
    rows = each(std_con, "cx_punycode_decode(v)", v=texts)
    for text, row in zip(texts, rows, strict=True):
        assert row == (python_punycode(text),), text


@settings(max_examples=6, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(LETTERS, min_size=1, max_size=12),
            st.lists(st.text(LETTERS, min_size=1, max_size=12), min_size=1, max_size=3),
            st.sampled_from(["com", "рф", "中国", "de"]),
        ),
        min_size=10,
        max_size=30,
    )
)
def test_unicode_and_punycode_domains_are_one_address(std_con, addresses):
    domains = [".".join([*labels, tld]) for _, labels, tld in addresses]
    # IDNA encodes the lower-case form (lower case as DuckDB has it: 'İ' is 'i', not 'i̇')
    lower = [d for (d,) in each(std_con, "nfc_normalize(lower(d))", d=domains)]
    rows = each(
        std_con,
        f"{_STD.format('u')}, {_STD.format('a')}",
        u=[f"{local}@{d}" for (local, _, _), d in zip(addresses, domains, strict=True)],
        a=[
            f"{local}@{to_ascii_domain(d)}"
            for (local, _, _), d in zip(addresses, lower, strict=True)
        ],
    )
    unicode_stds = [unicode_std for unicode_std, _ in rows]
    for (local, _, _), domain, (unicode_std, ascii_std), again in zip(
        addresses, domains, rows, stds(std_con, unicode_stds), strict=True
    ):
        assert unicode_std == ascii_std, (local, domain)
        assert unicode_std is not None, (local, domain)
        # idempotent, and lower case in Unicode's sense (NFC)
        assert again == unicode_std, (local, domain)
        assert unicode_std == unicodedata.normalize("NFC", unicode_std), (local, domain)
