"""The canonical fields every source is mapped onto, and how to recognise them in a header.

A source's columns are mapped to these names (by config, or inferred from header names and
checked against the values). Everything downstream speaks only canonical names.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Kind(StrEnum):
    """What an export is; it decides which traits a source feeds."""

    crm = "crm"
    transactions = "transactions"
    social = "social"
    support = "support"


@dataclass(frozen=True)
class Field:
    name: str
    meaning: str
    # How the values of a column must look for an inferred mapping to be kept.
    sniff: str = "text"
    # Whether a source may map several columns to it, as exports hold a work and a mobile
    # phone: a record matches by the first of them that holds a value. A street, a name or a
    # date pieced together from two columns would mix two people's or two places' parts.
    several_columns: bool = False


FIELDS: tuple[Field, ...] = (
    Field("first_name", "given name", "name"),
    Field("last_name", "family name", "name"),
    Field("full_name", "whole name in one column; split into first/last", "name"),
    Field("email", "email address", "email", several_columns=True),
    Field("phone", "phone number in any format", "phone", several_columns=True),
    Field("street", "street line (number and street)"),
    Field("street_number", "house number when exported apart from the street"),
    Field("address_2", "second address line (unit, building)"),
    Field("city", "city, town or suburb"),
    Field("postcode", "postal or ZIP code"),
    Field("state", "state, county or region"),
    Field("country", "country name or code"),
    Field("location", "where someone is, in one text (a social profile's): city, state, country"),
    Field("dob", "date of birth", "date"),
    Field("gender", "gender"),
    Field("national_id", "national identifier (e.g. social security number)"),
    Field("customer_key", "the source system's own customer key (account, loyalty, member id)"),
    Field("card_last4", "last four digits of a payment card"),
    Field("handle", "social handle or username", "handle"),
    Field("platform", "social platform"),
    Field("created_at", "when the row happened: signup, order, ticket opened, post", "timestamp"),
    Field("resolved_at", "when a ticket was resolved", "timestamp"),
    Field("last_active_at", "last activity on a social account", "timestamp"),
    Field("order_id", "order number"),
    Field("amount", "order amount", "number"),
    Field("currency", "ISO currency code"),
    Field("category", "product category"),
    Field("channel", "channel of the touchpoint (web, store, email, chat, phone)"),
    Field("status", "ticket or order status"),
    Field("csat", "customer satisfaction score", "rating"),
    Field("subject", "ticket subject"),
    Field("text", "free text: ticket body or social post"),
    Field("followers", "social followers", "count"),
    Field("posts", "social post count", "count"),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
SEVERAL_COLUMN_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.several_columns)

# Headers of columns holding several values in a cell (HubSpot's Additional email addresses:
# 'a@x.com;b@y.com'); after a field's first column, each value counts (see ingest).
_SEVERAL_EMAILS = ("additional_email_addresses", "additional_emails", "other_emails")
_SEVERAL_PHONES = (
    "all_phone_numbers",
    "additional_phone_numbers",
    "other_phone_numbers",
    "other_phones",
)

# Header spellings, after normalisation (lower case, words joined by '_'). Prefixes such as
# `customer_` or `billing_` are stripped before lookup, so `customer_email` finds `email`.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "first_name": (
        "first_name",
        "firstname",
        "first",
        "given_name",
        "givenname",
        "forename",
        "fname",
        "first_nm",
        "given",
    ),
    "last_name": (
        "last_name",
        "lastname",
        "last",
        "surname",
        "family_name",
        "familyname",
        "lname",
        "last_nm",
    ),
    "full_name": (
        "name",
        "full_name",
        "fullname",
        "display_name",
        "displayname",
        "contact_name",
        "customer_name",
        "billing_name",
        "requester_name",
        "requester",
        "account_name",
        "shipping_name",
        "cardholder_name",
        "card_holder",
        "card_name",
        "name_on_card",
    ),
    "email": (
        "email",
        "e_mail",
        "email_address",
        "emailaddress",
        "mail",
        "email_addr",
        "mail_address",
        "e_mail_address",
        "primary_email",
        "public_email",  # Instagram's business profile, beside its public_phone_number
        # a second address beside the first (Salesforce's, HubSpot's Secondary Email)
        "secondary_email",
        "alternate_email",
        "alternative_email",
        "alt_email",
        "other_email",
        "additional_email",
        "email_2",
        "email2",
        *_SEVERAL_EMAILS,
    ),
    "phone": (
        "phone",
        "phone_number",
        "phonenumber",
        "telephone",
        "tel",
        "mobile",
        "mobile_number",
        "cell",
        "cellphone",
        "cell_phone",
        "mobile_phone",
        "mobile_phone_number",
        "cell_phone_number",
        "secondary_phone",
        "alternate_phone",
        "alternative_phone",
        "alt_phone",
        "other_phone",
        "additional_phone",
        "phone_2",
        "phone2",
        "phone_no",
        "contact_number",
        "msisdn",
        "landline",
        # a business profile's number as Instagram's account data names it
        "public_phone_number",
        "public_phone",
        *_SEVERAL_PHONES,
    ),
    "street": (
        "street",
        "address",
        "address_1",
        "address1",
        "address_line_1",
        "addressline1",
        "street_address",
        "address_line1",
        "addr",
        "addr1",
        "line1",
    ),
    "street_number": ("street_number", "street_no", "house_number", "house_no", "number"),
    "address_2": (
        "address_2",
        "address2",
        "address_line_2",
        "addressline2",
        "address_line2",
        "addr2",
        "line2",
        "unit",
        "apartment",
        "suite",
    ),
    "city": ("city", "town", "suburb", "locality", "municipality"),
    "postcode": (
        "postcode",
        "post_code",
        "postal_code",
        "postalcode",
        "zip",
        "zipcode",
        "zip_code",
        "postcode_zip",
    ),
    "state": (
        "state",
        "province",
        "region",
        "county",
        "state_code",
        "state_province",
        "province_code",
        # HubSpot's State/Region: a header naming the field twice, as the CRM's forms do
        "state_region",
    ),
    # HubSpot's Country/Region: without it a contact's country was unread, and a German
    # contact's 030 1234567 was read as a number of the source's region (US)
    "country": ("country", "country_code", "nation", "country_region"),
    "location": ("location", "bio_location", "profile_location", "geo_location", "geolocation"),
    "dob": (
        "dob",
        "date_of_birth",
        "dateofbirth",
        "birth_date",
        "birthdate",
        "birthday",
        "born",
        "birth_dt",
    ),
    "gender": ("gender", "sex"),
    "national_id": (
        "national_id",
        "ssn",
        "soc_sec_id",
        "social_security_number",
        "tax_id",
        "nin",
        "national_insurance_number",
    ),
    "customer_key": (
        "account_no",
        "account_number",
        "account_id",
        "customer_id",
        "customer_no",
        "customer_number",
        "loyalty_id",
        "loyalty_number",
        "loyalty_no",
        "member_id",
        "member_no",
        "membership_id",
        "client_id",
        "crm_id",
        "external_id",
    ),
    "card_last4": ("card_last4", "card_last_4", "last4", "last_4", "card_last_four", "cc_last4"),
    "handle": (
        "handle",
        "username",
        "user_name",
        "screen_name",
        "screenname",
        "user_handle",
        "account_handle",
        "social_handle",
    ),
    "platform": ("platform", "network", "social_network", "site"),
    "created_at": (
        "created_at",
        "created",
        "created_date",
        "creation_date",
        "create_date",
        "createdate",
        "date_created",
        "created_on",
        "created_time",
        "order_date",
        "order_dt",
        "ordered_at",
        "purchase_date",
        "purchased_at",
        "date",
        "timestamp",
        "ts",
        "opened_at",
        "signup_date",
        "signed_up_at",
        "registered_at",
        "registration_date",
        "transaction_date",
        "posted_at",
        "event_time",
        "datetime",
        "time",
    ),
    "resolved_at": (
        "resolved_at",
        "resolved",
        "resolution_date",
        "closed_at",
        "solved_at",
        "resolved_date",
        "closed_date",
        "resolved_time",
        "closed_time",
        "solved_time",
    ),
    "last_active_at": (
        "last_active",
        "last_active_at",
        "last_seen",
        "last_seen_at",
        "last_activity",
        "last_activity_date",
        "last_login",
        "last_post_at",
    ),
    "order_id": (
        "order_id",
        "order_no",
        "order_number",
        "ordernumber",
        "invoice_id",
        "invoice_no",
        "transaction_id",
        "txn_id",
        "receipt_no",
    ),
    "amount": (
        "amount",
        "total",
        "order_total",
        "total_amount",
        "price",
        "value",
        "grand_total",
        "revenue",
        "order_value",
        "amount_paid",
        "net_amount",
        # PayPal's activity export: Gross is what the customer paid; its Net is that less
        # PayPal's Fee, the merchant's takings, no order's amount
        "gross",
        "gross_amount",
    ),
    "currency": ("currency", "currency_code", "ccy", "cur"),
    "category": ("category", "product_category", "department", "product_type", "segment"),
    "channel": ("channel", "source_channel", "contact_channel", "via", "medium", "sales_channel"),
    "status": (
        "status",
        "state_name",
        "ticket_status",
        "order_status",
        # whether an order was paid, voided or refunded (Shopify's Financial Status)
        "financial_status",
        "payment_status",
    ),
    "csat": ("csat", "csat_score", "satisfaction", "satisfaction_score", "rating", "score"),
    "subject": ("subject", "title", "summary", "topic"),
    "text": (
        "body",
        "text",
        "description",
        "message",
        "comment",
        "content",
        "post_text",
        "post",
        "details",
        "note",
        "notes",
        "bio",
    ),
    "followers": ("followers", "follower_count", "followers_count", "num_followers"),
    # Instagram's media_count: the posts (photos, videos) of an account
    "posts": ("posts", "post_count", "posts_count", "num_posts", "statuses_count", "media_count"),
}

# Prefixes that say whose value a column holds, or where it sits, not what it is
# (`Default Address City`, `MailingPostalCode`, `Work phone`).
ROLE_PREFIXES: tuple[str, ...] = (
    "customer",
    "cust",
    "client",
    "contact",
    "billing",
    "shipping",
    "requester",
    "user",
    "member",
    "buyer",
    "primary",
    "home",
    "bill",
    "ship",
    "account",
    "person",
    "author",
    "work",
    "personal",
    "mailing",
    "address",
    "default_address",
    # Stripe's payments: Card Address Line1, City, Zip... the cardholder's billing address.
    # Not `card` alone: Card Number, Card ID would be read as a street number and no field.
    "card_address",
)

# Headers read as a field only when they are the whole header and their values look so (the
# check of that name in `cxunify.infer`): Mailchimp's `CC` is its subscriber's country as a
# two-letter code, but CC is a carbon copy's addresses in a helpdesk's export, and a word
# after a prefix (`Contact CC`) says nothing of which. A column the field's own words name
# (`Country`) is mapped before it.
GUARDED_HEADERS: dict[str, tuple[str, str]] = {"cc": ("country", "country_code")}

_NON_WORD = re.compile(r"[^0-9a-z]+")
# A bracketed qualifier of a header (`Created date (UTC)`, `Amount (USD)`) says how a value is
# written, not what it is.
_QUALIFIER = re.compile(r"\([^()]*\)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Letters that carry no accent to take off but have a plain spelling (Straße: strasse).
_PLAIN_LETTERS = str.maketrans(
    {"ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O"}
)


def normalise_header(header: str) -> str:
    """Lower-case a header, take the accents off its letters and join its words with '_'.

    >>> normalise_header("Email Address")
    'email_address'
    >>> normalise_header("customerEmail")
    'customer_email'
    >>> normalise_header("Straße"), normalise_header("Código postal")
    ('strasse', 'codigo_postal')
    """
    decomposed = unicodedata.normalize("NFKD", header.strip().translate(_PLAIN_LETTERS))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    spaced = _CAMEL.sub("_", plain)
    return _NON_WORD.sub("_", spaced.lower()).strip("_")


# Header spellings in German, French, Spanish, Italian, Dutch and Portuguese, as localised
# CRMs, shops and helpdesks write them: one row per header, its field and its language.
# A row's `beside` says when a word is read so only beside another header of its file:
# `language`, any header of its language (Land and Ort are country and city in a German
# export, but Land is a word of English too; Italian and Portuguese Data is a date, English
# data is not); a field, a header of its language naming that field (French Nom is the
# surname beside a Prénom and the whole name alone; Spanish Nombre the given name beside
# Apellidos). Words that name different fields in one language, or across them, are not
# listed: Estado (a Spanish order's status, a Brazilian address's state), Stato, État, Titel
# (a German contact's Dr.), Nota, Numero, Art.
HEADER_NAMES_CSV = Path(__file__).resolve().parent / "data" / "header_names.csv"


@dataclass(frozen=True)
class HeaderName:
    key: str  # the header, normalised
    field: str
    language: str
    beside: str = ""


def read_header_names(source: Path = HEADER_NAMES_CSV) -> tuple[HeaderName, ...]:
    """The reference table of header spellings in other languages than English."""
    with source.open(encoding="utf-8", newline="") as handle:
        return tuple(
            HeaderName(
                normalise_header(row["header"]), row["field"], row["language"], row["beside"]
            )
            for row in csv.DictReader(handle)
        )


HEADER_NAMES: tuple[HeaderName, ...] = read_header_names()

_ENGLISH: dict[str, str] = {
    spelling: field for field, spellings in SYNONYMS.items() for spelling in spellings
}
# An English spelling keeps its field: another language's word spelt alike is read as English
# unless its file says otherwise (see `beside`).
_LOOKUP: dict[str, str] = {
    **{n.key: n.field for n in HEADER_NAMES if not n.beside},
    **_ENGLISH,
}
# The languages whose words a key is (not keys spelt as English words: they show no language)
_LANGUAGES: dict[str, set[str]] = {}
for _name in HEADER_NAMES:
    if not _name.beside and _name.key not in _ENGLISH:
        _LANGUAGES.setdefault(_name.key, set()).add(_name.language)
_BESIDE: dict[str, list[HeaderName]] = {}
for _name in HEADER_NAMES:
    if _name.beside:
        _BESIDE.setdefault(_name.key, []).append(_name)


def _header_key(header: str) -> str:
    return normalise_header(_QUALIFIER.sub(" ", header)) or normalise_header(header)


def _keys(key: str) -> Iterator[str]:
    """A header's key, then what follows each role prefix it starts with."""
    yield key
    for prefix in ROLE_PREFIXES:
        if key.startswith(prefix + "_"):
            yield key[len(prefix) + 1 :]


def field_for_header(header: str) -> str | None:
    """The canonical field a header names, if any, read alone (`fields_for_headers` reads a
    file's header as a whole).

    >>> field_for_header("requester_email"), field_for_header("E-mail"), field_for_header("x")
    ('email', 'email', None)
    >>> field_for_header("Bestellnummer"), field_for_header("Código postal")
    ('order_id', 'postcode')
    """
    key = _header_key(header)
    if key in GUARDED_HEADERS:
        return GUARDED_HEADERS[key][0]
    return next((_LOOKUP[k] for k in _keys(key) if k in _LOOKUP), None)


def fields_for_headers(headers: Sequence[str]) -> list[str | None]:
    """The canonical field each header of one file names, if any: as `field_for_header`, and
    a word read only beside others of its language (see `HEADER_NAMES_CSV`) when they are
    there.

    >>> fields_for_headers(["Land"]), fields_for_headers(["Vorname", "Name", "PLZ", "Land"])
    ([None], ['first_name', 'last_name', 'postcode', 'country'])
    >>> fields_for_headers(["Nombre", "Apellidos"]), fields_for_headers(["Nombre"])
    (['first_name', 'last_name'], ['full_name'])
    """
    keys = [_header_key(header) for header in headers]
    fields = [field_for_header(header) for header in headers]
    named: dict[str, set[str]] = {}  # language -> the fields its words name in this header
    for key in keys:
        for k in _keys(key):
            if k in _LOOKUP:
                for language in _LANGUAGES.get(k, ()):
                    named.setdefault(language, set()).add(_LOOKUP[k])
                break
    for i, key in enumerate(keys):
        for k in _keys(key):
            taken = next(
                (
                    n.field
                    for n in _BESIDE.get(k, ())
                    if n.language in named
                    and (n.beside == "language" or n.beside in named[n.language])
                ),
                None,
            )
            if taken is not None:
                fields[i] = taken
                break
    return fields


_SEVERAL_IN_A_CELL = frozenset((*_SEVERAL_EMAILS, *_SEVERAL_PHONES))


def holds_several(header: str) -> bool:
    """Whether a header names a column of several emails or phones in a cell.

    >>> holds_several("Additional email addresses"), holds_several("Secondary Email")
    (True, False)
    """
    return normalise_header(header) in _SEVERAL_IN_A_CELL


def looks_like_record_key(header: str) -> bool:
    """Whether a header names a per-row key (``id``, ``*_id``, ``*_no``, ``handle``, an order
    or customer number in any language read: ``Bestellnummer``...)."""
    key = normalise_header(header)
    return (
        key in {"id", "handle", "username", "user_name", "key", "rec_id", "record_id", "uuid"}
        or key.endswith(("_id", "_no", "_number", "_key", "_uuid"))
        or key.startswith("id_")
        or field_for_header(header) in ("order_id", "customer_key")
    )


# A header naming no field is taken for a misspelling of a field's spelling when one slip of
# a typing hand makes it (`frist_name`, `Adress`, `Emial Address`, `Zip Cdoe`): two letters
# swapped, or, in a word of 6 letters or more run together, a letter dropped, doubled or
# typed by a key beside the right one. Not any letter for any other: a word one letter off a
# spelling is as often another word (`consent` and `content`, `device` and French `devise`,
# `status_code` and `state_code` two apart), nor a digit added (`street2` is no `street`); a
# word of 4 or 5 letters (`lat` and `last`, `cost` and `post`) only by a swap, nor a
# plural (`comments` beside `comment`).
_SWAP_FROM = 4
_SLIP_FROM = 6
_KEY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _key_at(letter: str) -> tuple[int, float] | None:
    """Where a key sits on a keyboard: its row, and its place along it (rows are staggered)."""
    for row, keys in enumerate(_KEY_ROWS):
        if letter in keys:
            return row, keys.index(letter) + row * 0.5
    return None


def _beside(a: str, b: str) -> bool:
    """Whether keys `a` and `b` are neighbours (on a row, or above and below each other)."""
    at_a, at_b = _key_at(a), _key_at(b)
    return (
        at_a is not None
        and at_b is not None
        and abs(at_a[0] - at_b[0]) <= 1
        and abs(at_a[1] - at_b[1]) <= 1
    )


def _one_slip(typed: str, meant: str) -> bool:
    """Whether `typed` is `meant` with one slip (see the note above `_SWAP_FROM`)."""
    if (
        abs(len(typed) - len(meant)) > 1
        or typed == meant
        or len(typed) < _SWAP_FROM
        or re.sub(r"\D", "", typed) != re.sub(r"\D", "", meant)
        or typed == meant + "s"  # (a plural, `comments`, is a word of its own)
    ):
        return False
    if len(typed) == len(meant):
        differ = [i for i, (a, b) in enumerate(zip(typed, meant, strict=True)) if a != b]
        if len(differ) == 2 and differ[1] == differ[0] + 1:
            i = differ[0]
            return typed[i] == meant[i + 1] and typed[i + 1] == meant[i]
        return (
            len(differ) == 1
            and len(typed) >= _SLIP_FROM
            and _beside(typed[differ[0]], meant[differ[0]])
        )
    if len(typed) < _SLIP_FROM:
        return False
    longer, shorter = (typed, meant) if len(typed) > len(meant) else (meant, typed)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def misspelt_field(header: str, taken: Collection[str] = ()) -> str | None:
    """The field a header naming none is a misspelling of (`frist_name`: first_name), when
    one slip makes it from a spelling of that field and of no other (see `_one_slip`); fields
    in `taken` (those a source already maps from another column) are none of its.

    >>> misspelt_field("frist_name"), misspelt_field("E-Mial"), misspelt_field("Adress")
    ('first_name', 'email', 'street')
    >>> misspelt_field("favourite_colour"), misspelt_field("consent"), misspelt_field("lat")
    (None, None, None)
    """
    if field_for_header(header) is not None:
        return None
    found = {
        field_name
        for key in _keys(_header_key(header))
        for spelling, field_name in _LOOKUP.items()
        if field_name not in taken and _one_slip(key.replace("_", ""), spelling.replace("_", ""))
    }
    # (a slip of two fields' spellings alike, `stats` of state and status, tells neither)
    return found.pop() if len(found) == 1 else None
