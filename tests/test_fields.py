import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxunify.fields import field_for_header, looks_like_record_key, normalise_header


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("e-mail", "email"),
        ("Email Address", "email"),
        ("customer_email", "email"),
        ("requester_email", "email"),
        ("customerEmail", "email"),
        ("billing_name", "full_name"),
        ("display_name", "full_name"),
        ("requester_name", "full_name"),
        ("given_name", "first_name"),
        ("surname", "last_name"),
        ("suburb", "city"),
        ("location", "location"),  # a social profile's "Boston, MA": read into city, state
        ("bio_location", "location"),
        ("User Location", "location"),
        ("ZIP", "postcode"),
        ("shipping_zip", "postcode"),
        ("date_of_birth", "dob"),
        ("soc_sec_id", "national_id"),
        ("loyalty_id", "customer_key"),
        ("account_no", "customer_key"),
        ("Order Date", "created_at"),
        ("card_last4", "card_last4"),
        ("body", "text"),
        ("Phone Number", "phone"),
        ("Card Name", "full_name"),
        ("Default Address Province Code", "state"),
        ("MailingPostalCode", "postcode"),
        ("Created date (UTC)", "created_at"),
        ("Dispute Date (UTC)", None),
        ("Total Spent", None),
        ("favourite_colour", None),
    ],
)
def test_header_spellings(header: str, field: str | None):
    assert field_for_header(header) == field


@pytest.mark.parametrize(
    ("header", "is_key"),
    [
        ("id", True),
        ("contact_id", True),
        ("account_no", True),
        ("order_number", True),
        ("handle", True),
        ("rec_id", True),
        ("email", False),
        ("video", False),
    ],
)
def test_record_key_headers(header: str, is_key: bool):
    assert looks_like_record_key(header) is is_key


@given(st.text())
def test_normalise_header_never_raises_and_is_idempotent(header: str):
    once = normalise_header(header)
    assert normalise_header(once) == once
