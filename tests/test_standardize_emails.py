"""Email standardisation: examples for each rule, and properties over arbitrary text."""

from __future__ import annotations

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
