import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxunify.fields import (
    FIELD_NAMES,
    HEADER_NAMES,
    SYNONYMS,
    field_for_header,
    fields_for_headers,
    looks_like_record_key,
    normalise_header,
)


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
        ("State/Region", "state"),  # HubSpot's
        ("Country/Region", "country"),
        ("MailingPostalCode", "postcode"),
        ("Created date (UTC)", "created_at"),
        ("Dispute Date (UTC)", None),
        ("Card Address Line1", "street"),  # Stripe's cardholder's billing address
        ("Card Address Zip", "postcode"),
        ("Card Address Country", "country"),
        ("Card Number", None),  # not a street number: `card` alone names no address
        ("public_phone_number", "phone"),  # Instagram's
        ("media_count", "posts"),
        ("CC", "country"),  # Mailchimp's, when its values are two-letter codes (see infer)
        ("Contact CC", None),  # a word after a prefix: a carbon copy as likely
        ("Total Spent", None),
        ("Gross", "amount"),  # PayPal's: what the customer paid
        ("Fee", None),  # PayPal's, and its Net: the merchant's, no order's amount
        ("Net", None),
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
        ("Bestellnummer", True),
        ("Kundennummer", True),
        ("Nº de pedido", True),
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


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Vorname", "first_name"),
        ("NACHNAME", "last_name"),
        ("Straße", "street"),
        ("Strasse", "street"),
        ("Hausnummer", "street_number"),
        ("PLZ", "postcode"),
        ("Geburtsdatum", "dob"),
        ("Kundennummer", "customer_key"),
        ("Bestellnummer", "order_id"),
        ("Betrag", "amount"),
        ("Währung", "currency"),
        ("Datum", "created_at"),
        ("Handy", "phone"),
        ("Betreff", "subject"),
        ("Prénom", "first_name"),
        ("Prenom", "first_name"),
        ("Nom de famille", "last_name"),
        ("Adresse e-mail", "email"),
        ("Téléphone portable", "phone"),
        ("Code postal", "postcode"),
        ("Ville", "city"),
        ("Pays/région", "country"),
        ("Date de création", "created_at"),
        ("N° de commande", "order_id"),
        ("Montant TTC", "amount"),
        ("Apellidos", "last_name"),
        ("Correo electrónico", "email"),
        ("Teléfono", "phone"),
        ("Móvil", "phone"),
        ("Código postal", "postcode"),
        ("Población", "city"),
        ("País", "country"),
        ("Nº de pedido", "order_id"),
        ("Importe", "amount"),
        ("Cognome", "last_name"),
        ("Città", "city"),
        ("Codice fiscale", "national_id"),
        ("Data di nascita", "dob"),
        ("Achternaam", "last_name"),
        ("Woonplaats", "city"),
        ("Telefoonnummer", "phone"),
        ("Bedrag", "amount"),
        ("Sobrenome", "last_name"),
        ("Endereço", "street"),
        ("CEP", "postcode"),
        ("Cidade", "city"),
        ("Preço", "amount"),
        ("Nome de usuário", "handle"),
        ("Kunden-Nr. (intern)", "customer_key"),  # a bracketed qualifier, as in English
        ("customer_telefon", "phone"),  # past a role prefix, as in English
        # a word of another language that is English too is read as English, or not at all
        ("Name", "full_name"),
        ("Land", None),
        ("Ort", None),
        ("Data", None),
        ("Art", None),
        ("Note", "text"),
        ("Via", "channel"),
        ("Number", "street_number"),
    ],
)
def test_header_spellings_in_other_languages(header: str, field: str | None):
    assert field_for_header(header) == field


@pytest.mark.parametrize(
    ("headers", "fields"),
    [
        # a German contact's Name beside its Vorname is the surname; Ort and Land beside
        # other German headers are the city and the country
        (["Vorname", "Name", "Ort", "Land"], ["first_name", "last_name", "city", "country"]),
        (["Name", "Ort", "Land"], ["full_name", None, None]),
        (
            ["Voornaam", "Naam", "Woonplaats", "Land"],
            ["first_name", "last_name", "city", "country"],
        ),
        (["Naam", "E-mailadres"], ["full_name", "email"]),
        (["Prénom", "Nom", "CP"], ["first_name", "last_name", "postcode"]),
        (["Nom", "Courriel"], ["full_name", "email"]),
        (["Nombre", "Apellidos", "C.P."], ["first_name", "last_name", "postcode"]),
        (["Nombre", "Correo"], ["full_name", "email"]),
        (["Nome", "Cognome", "CAP", "Data"], ["first_name", "last_name", "postcode", "created_at"]),
        (["Nome", "Sobrenome", "Data"], ["first_name", "last_name", "created_at"]),
        (["Nome", "Cidade"], ["full_name", "city"]),
        # English words are no language's evidence: an English export reads as English
        (["First Name", "Name", "Land", "Data"], ["first_name", "full_name", None, None]),
        (
            ["Name", "Email", "Telephone", "Region", "Cap"],
            ["full_name", "email", "phone", "state", None],
        ),
    ],
)
def test_words_read_beside_others_of_their_language(headers: list[str], fields: list):
    assert fields_for_headers(headers) == fields


LANGUAGES = {"de", "fr", "es", "it", "nl", "pt"}


def test_the_header_table_names_each_header_once():
    """Every row names a field and a language; no header names two fields unless one is
    read only beside others; and no header is read as another field than English reads
    it, unless only beside other words of its language."""
    by_key: dict[str, set[str]] = {}
    for name in HEADER_NAMES:
        assert name.field in FIELD_NAMES and name.language in LANGUAGES, name
        assert name.beside in {"", "language", *FIELD_NAMES}, name
        assert re.fullmatch(r"[0-9a-z]+(_[0-9a-z]+)*", name.key), name
        if not name.beside:
            by_key.setdefault(name.key, set()).add(name.field)
    assert {key: fields for key, fields in by_key.items() if len(fields) > 1} == {}
    english = {s: f for f, spellings in SYNONYMS.items() for s in spellings}
    assert {k: f for k, f in by_key.items() if k in english and {english[k]} != f} == {}
    assert {n.language for n in HEADER_NAMES} == LANGUAGES


_LETTERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz _-", min_size=1)
_ACCENTS = st.sampled_from(["\u0301", "\u0300", "\u0308", "\u0302", "\u0303", "\u0327"])


@given(_LETTERS, st.lists(_ACCENTS), st.booleans())
def test_a_header_reads_alike_with_or_without_accents(word: str, accents: list[str], upper: bool):
    """Straße, STRASSE and strasse; Código and Codigo; a letter written with its accent
    composed (é) or after it (e + U+0301) are the same header."""
    accented = "".join(
        c + (accents[i % len(accents)] if accents and c.isalpha() else "")
        for i, c in enumerate(word)
    )
    for written in (accented, unicodedata.normalize("NFC", accented)):
        written = written.upper() if upper else written
        assert normalise_header(written) == normalise_header(word)


@given(st.text())
def test_a_normalised_header_is_plain_ascii_words(header: str):
    assert re.fullmatch(r"([0-9a-z]+(_[0-9a-z]+)*)?", normalise_header(header))
