"""Zero-config on exports as SaaS systems write them by default: their header sets and value
formats, a few rows each, read by `cxunify init` with no config (once for the module: each
run installs the standardisation macros, seconds on a busy machine)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxunify.cli import app
from cxunify.engine import DuckDBEngine
from cxunify.fields import misspelt_field
from tests.conftest import write

SHOPIFY_CUSTOMERS = (
    "\ufeffCustomer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,"
    "Default Address Address1,Default Address Address2,Default Address City,"
    "Default Address Province Code,Default Address Country Code,Default Address Zip,"
    "Default Address Phone,Phone,Accepts SMS Marketing,Total Spent,Total Orders,Note,"
    "Tax Exempt,Tags\r\n"
    "'7284919287000,Olivia,Martínez,olivia.martinez@gmail.com,no,,12 Beacon St,Apt 4,Boston,"
    "MA,US,'02108,'+16175550142,'+16175550142,no,37.50,1,,no,\r\n"
    "'7284919288337,James,O'Connor,jim.oconnor@outlook.com,yes,,450 W 33rd St,,New York,NY,"
    "US,'10001,,'+12125550187,no,75.00,2,,no,\"wholesale, vip\"\r\n"
)


SALESFORCE_CONTACTS = (
    "Id,FirstName,LastName,Email,Phone,MobilePhone,MailingStreet,MailingCity,MailingState,"
    "MailingPostalCode,MailingCountry,CreatedDate\n"
    '0035g00000AbCdEAAV,Sarah,Johnson,sarah.johnson@icloud.com,(206) 555-0111,,"400 Broad St\n'
    'Suite 2",Seattle,WA,98109,United States,2022-10-01T10:15:22.000Z\n'
    "0035g00000AbCdFAAV,David,Smith,,,(512) 555-0166,1100 Congress Ave,Austin,TX,78701,"
    "United States,2022-11-02T11:15:22.000Z\n"
)
HUBSPOT_CONTACTS = (
    "\ufeffRecord ID,First Name,Last Name,Email,Phone Number,Mobile Phone Number,Create Date,"
    "Lifecycle Stage,Additional email addresses\r\n"
    "51234,Priya,Raghunathan,priya.r@yahoo.com,4155550123,,2023-01-01 10:00,Customer,"
    "priya@raghunathan.dev;p.raghunathan@acme.com\r\n"
    "51241,Mic,Chen,mchen88@gmail.com,,+1 (312) 555-0199,2023-02-02 11:01,Lead,\r\n"
)
FRESHDESK_TICKETS = (
    "Ticket ID,Subject,Description,Status,Priority,Source,Created time,Resolved time,"
    "Closed time,Full name,Contact ID,Email,Work phone,Mobile phone\n"
    "201,Return label,Need a label,Resolved,Low,Email,2024-01-01 10:25:11,"
    "2024-01-02 08:00:00,,Michael Chen,48000000000,mchen88@gmail.com,(312) 555-0199,\n"
    "202,Return label,Need a label,Open,Low,Email,2024-02-02 11:25:11,,,"
    '"Smith, David",48000000001,dave.smith@hotmail.com,(512) 555-0166,\n'
)
STRIPE_PAYMENTS = (
    "id,Description,Created date (UTC),Amount,Amount Refunded,Currency,Status,"
    "Customer ID,Customer Email,Card Last4,Card Name,Dispute Date (UTC),Invoice ID\n"
    "ch_3Nq00xL2eZvKYlo2C0abcdEF0,,2024-01-10 10:00:10,59.97,0.00,usd,Paid,cus_O000abc,"
    "olivia.martinez@gmail.com,4242,OLIVIA MARTINEZ,,\n"
    'ch_3Nq01xL2eZvKYlo2C0abcdEF1,,2024-02-11 11:01:11,"1,250.00",0.00,usd,Paid,'
    "cus_O001abc,jim.oconnor@outlook.com,4243,,,\n"
)
ZENDESK_TICKETS = (
    "Id,Requester,Requester id,Requester external id,Requester email,Subject,Status,Via,"
    "Created at,Updated at,Solved at,Satisfaction Score,Replies\n"
    "10452,James O'Connor,38123456789,,jim.oconnor@outlook.com,Where is my order?,Solved,"
    "Web form,2024-01-10 10:30,2024-01-20 10:00,2024-01-20 09:10,Good,1\n"
    '10453,James,38123456789,,jim.oconnor@outlook.com,"Refund request, order #1003",Solved,'
    "Email,2024-02-11 11:31,2024-02-21 10:00,2024-02-21 09:11,Bad,2\n"
    "10454,Olivia Martínez,38123456790,,olivia.martinez@gmail.com,Wrong size delivered,Open,"
    "Chat,2024-03-12 12:32,2024-03-22 10:00,,Offered,0\n"
    "10455,Olivia,38123456790,,olivia.martinez@gmail.com,Can't log in,Solved,"
    "Phone call (incoming),2024-04-13 13:33,2024-04-23 10:00,2024-04-23 09:13,Unoffered,1\n"
    "10456,Olivia Martínez,38123456790,,olivia.martinez@gmail.com,Where is my order?,Solved,"
    "Web form,2024-05-14 14:34,2024-05-24 10:00,2024-05-24 09:14,Good,1\n"
)
TWITTER_FOLLOWERS = (
    "id,screen_name,name,description,location,followers_count,friends_count,statuses_count,"
    "created_at,verified\n"
    '1234567890123456789,oliviamar0,Olivia M.,"Coffee, code & cats","Boston, MA",100,200,1000,'
    "Wed Oct 10 20:19:24 +0000 2018,False\n"
    '1234567890123457789,jamesoco1,James O\'Connor,,"New York, NY",150,201,1003,'
    "Thu Oct 11 20:19:24 +0000 2018,False\n"
)
# Instagram's download of an account's followers: each a list of links (no column holds one)
INSTAGRAM_FOLLOWERS = json.dumps(
    [
        {
            "title": "",
            "media_list_data": [],
            "string_list_data": [
                {"href": f"https://www.instagram.com/{h}", "value": h, "timestamp": 1700000000}
            ],
        }
        for h in ("olivia.martinez", "james.oconnor")
    ]
)
INTERCOM_CONVERSATIONS = (
    "Conversation ID,Conversation started at,Conversation state,User ID,User name,User email,"
    "Conversation rating,Conversation rating remark\n"
    "215468743112,2024-03-01 09:12:44,closed,6543a1b2c3d4e5f601234567,Aisha Khan,"
    "aisha.khan@gmail.com,5,Quick and helpful\n"
    "215468743113,2024-03-02 10:13:45,open,6543a1b2c3d4e5f601234568,Thomas Nguyen,"
    "tom.nguyen@yahoo.com,,\n"
)
# One row per line item: an order's second item repeats its Name, Email and Created at alone
# (the Email not even that, in #1003).
SHOPIFY_ORDERS = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Currency,Subtotal,Shipping,Taxes,"
    "Total,Created at,Lineitem quantity,Lineitem name,Lineitem price,Billing Name,"
    "Billing Street,Billing Address1,Billing Address2,Billing City,Billing Zip,"
    "Billing Province,Billing Country,Billing Phone,Shipping Name,Notes,Payment Method,"
    "Refunded Amount,Id,Phone,Shipping Phone\n"
    "#1001,olivia.martinez@gmail.com,paid,2024-01-10 00:40:30 +0100,fulfilled,USD,46.34,"
    "0.00,0.00,46.34,2024-01-10 00:10:30 +0100,1,Organic Cotton Tee - M,46.34,Olivia Martínez,"
    '"12 Beacon St, Apt 4",12 Beacon St,Apt 4,Boston,\'02108,MA,US,(617) 555-0142,'
    "Olivia Martínez,,Shopify Payments,0.00,5612345678901,,+16175550999\n"
    "#1001,olivia.martinez@gmail.com,,,,,,,,,2024-01-10 00:10:30 +0100,2,Wool Socks,12.00,"
    ",,,,,,,,,,,,,,,\n"
    "#1002,jim.oconnor@outlook.com,pending,,fulfilled,USD,69.51,0.00,0.00,69.51,"
    "2024-02-11 11:21:01 -0500,1,Organic Cotton Tee - M,69.51,James O'Connor,450 W 33rd St,"
    "450 W 33rd St,,New York,'10001,NY,US,+12125550187,James O'Connor,,Shopify Payments,"
    "0.00,5612345680012,,+12125550111\n"
    "#1003,olivia.martinez@gmail.com,voided,,unfulfilled,USD,42.00,0.00,0.00,42.00,"
    "2024-03-01 09:00:00 +0100,1,Beanie,30.00,Olivia Martínez,,,,,,,,,Olivia Martínez,,"
    "Shopify Payments,0.00,5612345681123,,\n"
    "#1003,,,,,,,,,,2024-03-01 09:00:00 +0100,1,Wool Socks,12.00,"
    ",,,,,,,,,,,,,,,\n"
)
# A follower export whose locations are written as people write them.
SOCIAL_LOCATIONS = (
    "id,screen_name,name,location\n"
    '1,annlee,Ann Lee,"Boston, MA"\n'
    '2,bobroy,Bob Roy,"Toronto, Ontario"\n'
    '3,catpoe,Cat Poe,"London, England"\n'
    '4,danwu,Dan Wu,"San Francisco, CA, USA"\n'
    "5,evefox,Eve Fox,🌍 everywhere\n"
    "6,faykim,Fay Kim,she/her\n"
    "7,gusorr,Gus Orr,NYC\n"
    '8,halng,Hal Ng,"📍 Berlin, Germany | he/him"\n'
)
# A German shop's orders: amounts and dates as German software writes them, phones with
# their country code.
GERMAN_ORDERS = (
    "Bestellnummer;E-Mail;Betrag;Datum;Vorname;Nachname;Telefon\n"
    "1001;jose@x.com;1.234,50;03.04.2025;José;García;+49 30 1234567\n"
    "1002;ann@y.com;12,00;15.04.2025;Ann;Lee;\n"
)
# The same shop's customers, of no country column, their phones written as each customer
# gave it: mostly with the country code, José's as Germans write a Berlin number at home.
GERMAN_CUSTOMERS = (
    "Kundennummer;Vorname;Nachname;Telefon\n"
    "20001;José;García;030 1234567\n"
    "20002;Heike;Brandt;+49 89 7654321\n"
    "20003;Uwe;Kraus;+49 171 2345678\n"
)
# A German CRM's contacts (as Lexware, sevDesk write them): Name beside Vorname is the
# surname, Ort and Land the city and country; birth dates with dots, no day above 12.
GERMAN_CONTACTS = (
    "Kundennummer;Anrede;Vorname;Name;Straße;PLZ;Ort;Land;Telefon;E-Mail;Geburtsdatum\n"
    "10001;Herr;Jürgen;Weiß;Hauptstraße 5;10115;Berlin;Deutschland;030 1234567;"
    "j.weiss@web.de;03.04.1985\n"
    "10002;Frau;Änne;Groß;Königsallee 12;40212;Düsseldorf;Deutschland;0211 7654321;"
    "aenne.gross@gmx.de;01.12.1990\n"
)
FRENCH_CONTACTS = (
    "ID;Civilité;Prénom;Nom;Adresse e-mail;Téléphone;Téléphone portable;Adresse;Code postal;"
    "Ville;Pays/région;Date de création\n"
    "C-001;Mme;Élodie;Lefèvre;elodie.lefevre@orange.fr;01 42 68 53 00;06 12 34 56 78;"
    "12 rue de Rivoli;75004;Paris;France;03/04/2024\n"
    "C-002;M.;François;Dubois;f.dubois@free.fr;04 91 55 12 34;;8 boulevard Longchamp;13001;"
    "Marseille;France;15/04/2024\n"
)
SPANISH_CONTACTS = (
    "ID;Nombre;Apellidos;Correo electrónico;Teléfono;Móvil;Dirección;Código postal;Ciudad;"
    "Provincia;País;Fecha de alta\n"
    "1;María José;García López;mjgarcia@telefonica.es;912 345 678;612 345 678;"
    "Calle Mayor 5;28013;Madrid;Madrid;España;2024-04-03\n"
    "2;José Luis;Fernández;jl.fernandez@gmail.com;933 456 789;;Avinguda Diagonal 400;08037;"
    "Barcelona;Barcelona;España;2024-04-15\n"
)
# kind and file of each export; each is a source named by its file's stem
EXPORTS = {
    "shopify_customers": ("crm", SHOPIFY_CUSTOMERS),
    "salesforce_contacts": ("crm", SALESFORCE_CONTACTS),
    "hubspot_contacts": ("crm", HUBSPOT_CONTACTS),
    "freshdesk_tickets": ("support", FRESHDESK_TICKETS),
    "stripe_payments": ("transactions", STRIPE_PAYMENTS),
    "shopify_orders": ("transactions", SHOPIFY_ORDERS),
    "zendesk_tickets": ("support", ZENDESK_TICKETS),
    "twitter_followers": ("social", TWITTER_FOLLOWERS),
    "intercom_conversations": ("support", INTERCOM_CONVERSATIONS),
    "instagram_followers_1.json": ("social", INSTAGRAM_FOLLOWERS),
    "social_locations": ("social", SOCIAL_LOCATIONS),
    "german_orders": ("transactions", GERMAN_ORDERS),
    "german_contacts": ("crm", GERMAN_CONTACTS),
    "german_customers": ("crm", GERMAN_CUSTOMERS),
    "french_contacts": ("crm", FRENCH_CONTACTS),
    "spanish_contacts": ("crm", SPANISH_CONTACTS),
}
ENGLISH = [n for n in EXPORTS if not n.startswith(("german", "french", "spanish"))]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Each export's kind and path."""
    folder = tmp_path_factory.mktemp("exports")
    return {
        name.split(".")[0]: (
            kind,
            str(write(folder / (name if "." in name else f"{name}.csv"), text)),
        )
        for name, (kind, text) in EXPORTS.items()
    }


def _flags(exports: dict[str, tuple[str, str]], *names: str) -> list[str]:
    return [arg for name in names for arg in (f"--{exports[name][0]}", exports[name][1])]


@pytest.fixture(scope="module")
def drafted(exports: dict[str, tuple[str, str]]) -> str:
    """The config `cxunify init` infers for all the exports, as it writes it."""
    result = CliRunner().invoke(app, ["init", *_flags(exports, *exports)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def inferred(drafted: str) -> dict[str, dict]:
    """Each export's source in the config `cxunify init` infers for them all."""
    return {s["name"]: s for s in yaml.safe_load(drafted)["sources"]}


def test_address_columns_named_by_where_they_sit_are_mapped(inferred: dict[str, dict]):
    """Shopify's `Default Address City` and Salesforce's `MailingPostalCode` were not
    recognised: the customers of both exports had no address to link or profile by."""
    columns = inferred["shopify_customers"]["columns"]
    assert columns["street"] == "Default Address Address1"
    assert columns["address_2"] == "Default Address Address2"
    assert columns["city"] == "Default Address City"
    assert columns["state"] == "Default Address Province Code"
    assert columns["country"] == "Default Address Country Code"
    assert columns["postcode"] == "Default Address Zip"
    # the column named as the field first, then the address's
    assert columns["phone"] == ["Phone", "Default Address Phone"]
    assert "amount" not in columns  # Total Spent is a lifetime sum, no order
    columns = inferred["salesforce_contacts"]["columns"]
    assert {f: columns.get(f) for f in ("street", "city", "state", "postcode", "country")} == {
        "street": "MailingStreet",
        "city": "MailingCity",
        "state": "MailingState",
        "postcode": "MailingPostalCode",
        "country": "MailingCountry",
    }
    assert columns["created_at"] == "CreatedDate"


def test_dates_and_phones_as_helpdesks_and_crms_name_them_are_mapped(inferred: dict[str, dict]):
    """HubSpot's `Create Date`, Freshdesk's `Created time`, `Resolved time` and `Work phone`,
    Stripe's `Created date (UTC)` were not recognised: every row of those exports had no date,
    so no recency, first or last order, or resolution time."""
    assert inferred["hubspot_contacts"]["columns"]["created_at"] == "Create Date"
    columns = inferred["freshdesk_tickets"]["columns"]
    assert columns["created_at"] == "Created time"
    assert columns["resolved_at"] == "Resolved time"
    assert columns["phone"] == "Work phone"
    columns = inferred["stripe_payments"]["columns"]
    assert columns["created_at"] == "Created date (UTC)"
    assert columns["amount"] == "Amount" and columns["email"] == "Customer Email"


def test_every_phone_column_a_crm_exports_is_mapped_the_plain_one_first(
    inferred: dict[str, dict],
):
    """Salesforce's MobilePhone beside Phone, HubSpot's Mobile Phone Number beside Phone
    Number: one was mapped and the other left out, so a contact whose number was in the other
    column had no phone to link by. A list maps both, the column named as the field first
    (a record matches by the first holding a value); a shipping phone, which may be a gift's
    recipient's, is left out beside the buyer's."""
    assert inferred["salesforce_contacts"]["columns"]["phone"] == ["Phone", "MobilePhone"]
    assert inferred["hubspot_contacts"]["columns"]["phone"] == [
        "Phone Number",
        "Mobile Phone Number",
    ]
    assert inferred["shopify_orders"]["columns"]["phone"] == "Billing Phone"


def test_hubspots_additional_email_addresses_are_in_the_email_list(inferred: dict[str, dict]):
    """HubSpot's `Additional email addresses` holds a contact's other addresses in one cell
    ('a@x.com;b@y.com'): no header of an email, and no cell one address, it was left out. It
    is the email list's last column, whose cells ingest splits."""
    assert inferred["hubspot_contacts"]["columns"]["email"] == [
        "Email",
        "Additional email addresses",
    ]


@pytest.fixture(scope="module")
def unified(exports: dict[str, tuple[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zero-config run over the customers, orders, tickets and social locations exports."""
    out = tmp_path_factory.mktemp("unified") / "out"
    flags = _flags(
        exports,
        "shopify_customers",
        "shopify_orders",
        "zendesk_tickets",
        "social_locations",
        "german_orders",
        "german_customers",
    )
    result = CliRunner().invoke(app, ["unify", *flags, "--out", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    return out


def test_good_and_bad_satisfaction_is_the_top_and_bottom_of_the_scale(
    inferred: dict[str, dict], unified: Path
):
    """Zendesk's Satisfaction Score (Good, Bad, Offered, Unoffered) was no number, so the
    column was left out and no customer had a CSAT: good is now the top of the scale, bad the
    bottom, a survey offered or not offered no rating."""
    assert inferred["zendesk_tickets"]["columns"]["csat"] == "Satisfaction Score"
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT email, csat_mean, csat_last, tickets FROM read_parquet($p) "
            "WHERE tickets > 0 ORDER BY email",
            {"p": str(unified / "profiles.parquet")},
        ).fetchall()
        assert rows == [
            ("jim.oconnor@outlook.com", 3.0, 1.0, 2),
            ("olivia.martinez@gmail.com", 5.0, 5.0, 3),
        ]
        run = json.loads((unified / "run.json").read_text())
        assert run["counts"]["csat_out_of_scale"] == 0


def test_a_column_empty_in_every_row_is_not_mapped(inferred: dict[str, dict]):
    """Stripe's Invoice ID of payments without invoices was mapped as the order number, and
    Zendesk's Requester external id as the customer key, empty in every row; an export whose
    only recognised header names an empty column (Instagram's followers, their `title`) ran as
    customers with nothing to link by, instead of asking for a mapping."""
    stripe = inferred["stripe_payments"]
    assert "order_id" not in stripe["columns"]
    assert "customer_key" not in inferred["zendesk_tickets"]["columns"]
    assert inferred["instagram_followers_1"]["columns"] == {}


def test_twitter_dates_are_read(inferred: dict[str, dict]):
    """Twitter's created_at, written in ctime's order with the year last, read as no date,
    so the column was left out of a follower export."""
    columns = inferred["twitter_followers"]["columns"]
    assert columns["created_at"] == "created_at"
    assert columns["handle"] == "screen_name" and columns["followers"] == "followers_count"


def test_a_payments_cardholder_name_is_its_name(inferred: dict[str, dict]):
    """Stripe's Card Name, often the one name a payment carries, was not recognised: its
    payments had an email alone to be linked by."""
    assert inferred["stripe_payments"]["columns"]["full_name"] == "Card Name"


def test_an_order_numbered_after_a_hash_is_the_order_number(inferred: dict[str, dict]):
    """Shopify's orders are numbered #1001 under the header `Name`, which was tried as a
    person's name and left out: the orders had no order number. The order's date is when it
    was placed (Created at), its amount the Total."""
    columns = inferred["shopify_orders"]["columns"]
    assert columns["order_id"] == "Name"
    assert columns["created_at"] == "Created at" and columns["amount"] == "Total"
    assert columns["full_name"] == "Billing Name" and columns["email"] == "Email"


def test_a_user_name_holding_peoples_names_is_their_name(inferred: dict[str, dict]):
    """A helpdesk's `User name` (Aisha Khan) was mapped as a social handle: the tickets had no
    name to link by, and a handle no one else's could equal. A handle holds no space; the
    Twitter export's screen_name is still one."""
    columns = inferred["intercom_conversations"]["columns"]
    assert columns["full_name"] == "User name"
    assert "handle" not in columns
    assert inferred["twitter_followers"]["columns"]["handle"] == "screen_name"


def test_a_stored_list_of_columns_keeps_the_columns_the_file_has():
    """A zero-config update maps a stored source as its run did: a stored list of phone
    columns was read as no mapping at all (only a column's name was taken)."""
    from cxunify.fields import Kind
    from cxunify.infer import _stored_columns

    stored = ["crm", None, None, "Id", None, {"phone": ["Phone", "MobilePhone"], "email": "Email"}]
    assert _stored_columns(Kind.crm, stored, ["Id", "Email", "Phone", "MobilePhone"]) == {
        "phone": ["Phone", "MobilePhone"],
        "email": "Email",
    }
    assert _stored_columns(Kind.crm, stored, ["Id", "MobilePhone"]) == {"phone": ["MobilePhone"]}


def test_an_order_of_several_line_item_rows_is_one_order(
    inferred: dict[str, dict], drafted: str, unified: Path
):
    """Shopify writes an order of two items as two rows, its Name (#1001) on both, its total
    and Financial Status on the first only. Each row was an order: Olivia had three orders
    (#1001 twice, and the second line of the voided #1003, whose status was not read at
    all). Its Name repeats, so it is no id (rows are numbered), but the order number: the
    rows sharing it are one order, and a line's row without the Email is its order's
    customer's, not a customer of its own with an order of no amount."""
    source = inferred["shopify_orders"]
    assert "id" not in source and source["columns"]["status"] == "Financial Status"
    assert (
        "    # id: (none) no unique key column found; 'Name' repeats, as in an export of one row "
        "per line item: the rows sharing an order number are one order, and each row is named "
        "by its order and its place in it (#1001/2)\n"
    ) in drafted
    with duckdb.connect() as con:
        profiles = con.execute(
            "SELECT email, orders, revenue, avg_order_value, touchpoints FROM read_parquet($p) "
            "WHERE orders > 0 AND NOT list_contains(sources, 'german_orders') ORDER BY email",
            {"p": str(unified / "profiles.parquet")},
        ).fetchall()
        assert profiles == [
            ("jim.oconnor@outlook.com", 1, Decimal("69.51"), Decimal("69.51"), 4),
            ("olivia.martinez@gmail.com", 1, Decimal("46.34"), Decimal("46.34"), 8),
        ]
        lines = con.execute(
            "SELECT source_record_id, order_id, amount FROM read_parquet($p) "
            "WHERE source = 'shopify_orders' ORDER BY source_record_id",
            {"p": str(unified / "touchpoints.parquet")},
        ).fetchall()
        assert lines == [
            ("#1001/1", "#1001", Decimal("46.34")),
            ("#1001/2", "#1001", None),
            ("#1002/1", "#1002", Decimal("69.51")),
            ("#1003/1", "#1003", Decimal("42.00")),
            ("#1003/2", "#1003", None),
        ]
        run = json.loads((unified / "run.json").read_text())
        assert run["counts"]["rows_rejected"] == 0 and run["warnings"] == []


def test_a_social_location_is_read_as_city_state_and_country(
    inferred: dict[str, dict], unified: Path
):
    """A Twitter export's location ("Boston, MA") was mapped whole to the city: profiles read
    'Boston, MA', no state, and a bio of "she/her" or "🌍 everywhere" was a city. The column is
    now the location, read into city, state and country; what names no place gives no city."""
    columns = inferred["twitter_followers"]["columns"]
    assert columns["location"] == "location" and "city" not in columns
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT r.source_record_id, r.city, r.state, r.country, p.city, p.state "
            "FROM read_parquet($records) r JOIN read_parquet($profiles) p USING (customer_id) "
            "WHERE r.source = 'social_locations' ORDER BY r.source_record_id",
            {
                "records": str(unified / "records.parquet"),
                "profiles": str(unified / "profiles.parquet"),
            },
        ).fetchall()
    assert rows == [
        ("1", "Boston", "ma", None, "Boston", "ma"),
        ("2", "Toronto", "on", None, "Toronto", "on"),
        ("3", "London", None, "GB", "London", None),
        ("4", "San Francisco", "ca", "US", "San Francisco", "ca"),
        ("5", None, None, None, None, None),
        ("6", None, None, None, None, None),
        ("7", "NYC", None, None, "NYC", None),
        ("8", "Berlin", None, "DE", "Berlin", None),
    ]


def test_a_german_shops_orders_are_read(inferred: dict[str, dict], unified: Path):
    """A German shop's export mapped its E-Mail alone: the order number, amount, date and
    names were left out (no revenue, no order dates), and its 03.04.2025 would have been read
    as 4 March. Its headers are recognised, its amounts read as written (1.234,50), and its
    dates day first, as every date written with dots is."""
    source = inferred["german_orders"]
    assert source["columns"] == {
        "order_id": "Bestellnummer",
        "email": "E-Mail",
        "amount": "Betrag",
        "created_at": "Datum",
        "first_name": "Vorname",
        "last_name": "Nachname",
        "phone": "Telefon",
    }
    assert source["dayfirst"] is True and source["id"] == "Bestellnummer"
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT email, first_name, last_name, revenue, first_order_at FROM read_parquet($p) "
            "WHERE list_contains(sources, 'german_orders') ORDER BY email",
            {"p": str(unified / "profiles.parquet")},
        ).fetchall()
    assert [row[:4] for row in rows] == [
        ("ann@y.com", "Ann", "Lee", Decimal("12.00")),
        ("jose@x.com", "José", "García", Decimal("1234.50")),
    ]
    assert sum(row[3] for row in rows) == Decimal("1246.50")
    assert [row[4].date().isoformat() for row in rows] == ["2025-04-15", "2025-04-03"]


def test_a_german_crms_contacts_are_read_with_their_dotted_birth_dates(
    inferred: dict[str, dict], drafted: str
):
    """Name beside Vorname is a German contact's surname; Ort and Land, words read so only
    beside other German headers, the city and country. Birth dates written with dots are day
    first even when no day is above 12."""
    source = inferred["german_contacts"]
    assert source["columns"] == {
        "customer_key": "Kundennummer",
        "first_name": "Vorname",
        "last_name": "Name",
        "street": "Straße",
        "postcode": "PLZ",
        "city": "Ort",
        "country": "Land",
        "phone": "Telefon",
        "email": "E-Mail",
        "dob": "Geburtsdatum",
    }
    assert source["dayfirst"] is True and source["id"] == "Kundennummer"
    assert (
        "    dayfirst: true  # 'Geburtsdatum' holds dates read only day first "
        "(15/04/2025, 03.04.2025)\n"
    ) in drafted


def test_a_sources_phone_region_is_the_country_its_values_tell(
    inferred: dict[str, dict], drafted: str
):
    """Zero-config read every source's phones as US numbers: a German shop's customers'
    030 1234567 was +1 030-123-4567. A source's region is the country its country column
    names on two thirds of its rows, else the one whose calling code two thirds of its phones
    carry or, written nationally, start with its trunk prefix; `init` writes it with why."""
    regions = {name: source.get("phone_region") for name, source in inferred.items()}
    assert {n: r for n, r in regions.items() if r is not None} == {
        "german_orders": "DE",
        "german_contacts": "DE",
        "german_customers": "DE",
        "french_contacts": "FR",
        "spanish_contacts": "ES",
    }
    assert (
        "    phone_region: DE  # 'Land' names DE on 100% of the rows with a country or phone\n"
    ) in drafted
    assert (
        "    phone_region: DE  # +49 on 2 of its 3 phones (2 written with a calling code); "
        "1 more written from 0, as DE writes numbers nationally\n"
    ) in drafted
    assert yaml.safe_load(drafted)["standardize"]["phone_region"] == "US"


def test_a_german_customers_phone_written_nationally_finds_their_order(unified: Path):
    """José's 030 1234567 in the shop's customers (no country column) was read as a US
    number and never met the +49 30 1234567 of his order: he was two customers."""
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT source, phone, customer_id FROM read_parquet($p) "
            "WHERE source_record_id IN ('20001', '1001') ORDER BY source",
            {"p": str(unified / "records.parquet")},
        ).fetchall()
    assert [row[:2] for row in rows] == [
        ("german_customers", "+49301234567"),
        ("german_orders", "+49301234567"),
    ]
    assert rows[0][2] == rows[1][2]


@pytest.fixture(scope="module")
def region_engine() -> Iterator[DuckDBEngine]:
    engine = DuckDBEngine()
    yield engine
    engine.close()


@pytest.mark.parametrize(
    ("countries", "phones", "told", "leaning"),
    [
        pytest.param(
            ["Deutschland", "DE", "Österreich"],
            ["030 1234567", "0211 7654321", "01 234567"],
            "DE",
            None,
            id="countries-mostly-germany",
        ),
        pytest.param(
            ["DE", "FR", "DE", "AT"],
            ["030 1234567", "01 42 68 53 00", "+49 89 7654321", "+43 1 234567"],
            None,
            "DE",
            id="countries-mixed",
        ),
        pytest.param(
            ["USA", "United States", ""],
            ["+49 30 1234567", "", "+49 89 7654321"],
            "US",
            None,
            id="countries-us-over-phones",
        ),
        pytest.param(
            None,
            ["+49 30 1234567", "0049 89 7654321", "0171 2345678", "n/a"],
            "DE",
            None,
            id="phones-mostly-49",
        ),
        pytest.param(
            None,
            ["+49 30 1234567", "020 7946 0000", "020 7946 0001", "0161 496 0000"],
            None,
            "DE",
            id="uk-shop-one-german",
        ),
        pytest.param(
            None,
            [
                "+44 20 7946 0000",
                "+44 161 496 0000",
                "(617) 555-0142",
                "(212) 555-0187",
                "(312) 555-0199",
            ],
            None,
            "GB",
            id="us-shop-british-buyers",
        ),
        pytest.param(None, ["(617) 555-0142", "0171 2345678"], None, None, id="no-codes"),
    ],
)
def test_a_region_is_told_by_a_clear_majority_of_countries_or_phones(
    region_engine: DuckDBEngine,
    countries: list[str] | None,
    phones: list[str],
    told: str | None,
    leaning: str | None,
):
    """Countries or phones split between countries tell no region, nor do a few customers
    abroad: a British shop's +49 customer beside its 020 numbers (a trunk prefix of 0 is a
    hundred countries'), a US shop's +44 customers beside its (617) numbers. A country
    column that tells decides before the phones."""
    from cxunify.infer import _phone_region

    rows = [(c, p) for c, p in zip(countries or [None] * len(phones), phones, strict=True)]
    region_engine.execute(
        "CREATE OR REPLACE TABLE t AS SELECT unnest($c) AS country, unnest($p) AS phone",
        {"c": [c for c, _ in rows], "p": [p for _, p in rows]},
    )
    columns: dict[str, str | list[str]] = {"phone": "phone"}
    if countries is not None:
        columns["country"] = "country"
    assert _phone_region(region_engine, "t", columns)[:2] == (told, leaning)


def test_a_phone_region_given_is_every_sources(tmp_path: Path):
    """--phone-region wins over the region a source's phones tell."""
    from cxunify.fields import Kind
    from cxunify.infer import config_from_flags

    german = write(tmp_path / "de.csv", "name,phone\nAnn,+49 30 1234567\nBo,0049 89 7654321\n")
    config, _ = config_from_flags({Kind.crm: [str(german)]}, tmp_path, phone_region="GB")
    assert config.sources[0].phone_region is None
    assert config.standardize.phone_region == "GB"


def test_a_source_whose_values_tell_no_region_takes_the_one_the_others_tell(tmp_path: Path):
    """A German shop's customer list of 030 numbers and no country column tells no region by
    itself, and was read as US beside its orders' +49 numbers: the one region the run's
    other sources tell is its region. A source telling US among them leaves it the default."""
    from cxunify.fields import Kind
    from cxunify.infer import config_from_flags, render_yaml

    customers = write(
        tmp_path / "kunden.csv",
        "Kundennummer;Vorname;Nachname;Telefon\n1;Ann;Lang;030 1234567\n2;Bo;Kurz;089 7654321\n",
    )
    orders = write(
        tmp_path / "bestellungen.csv",
        "Bestellnummer;E-Mail;Telefon\n7;ann@web.de;+49 30 1234567\n8;bo@web.de;+49 89 7654321\n",
    )
    flags = {Kind.crm: [str(customers)], Kind.transactions: [str(orders)]}
    config, inferred = config_from_flags(flags, tmp_path)
    assert [s.phone_region for s in config.sources] == ["DE", "DE"]
    assert "    phone_region: DE  # its values tell none; the region of bestellungen\n" in (
        render_yaml(config, inferred, tmp_path)
    )
    american = write(tmp_path / "us.csv", "id,phone,country\n1,(617) 555-0142,USA\n")
    config, _ = config_from_flags({**flags, Kind.support: [str(american)]}, tmp_path)
    assert [s.phone_region for s in config.sources] == [None, "DE", None]


def test_init_says_when_a_lone_sources_phones_are_no_number_in_the_default_region(
    tmp_path: Path,
):
    """A British shop's one file of 020 numbers tells no region (a trunk prefix of 0 is a
    hundred countries'), and init drafted it for US without a word; a US file gets no note."""
    from cxunify.fields import Kind
    from cxunify.infer import config_from_flags, render_yaml

    british = write(
        tmp_path / "contacts.csv",
        "id,name,phone\n1,Ann Lee,020 7946 0018\n2,Bob Ng,0161 496 0754\n3,Cy Oh,0000000000\n",
    )
    config, inferred = config_from_flags({Kind.crm: [str(british)]}, tmp_path)
    assert config.sources[0].phone_region is None
    assert (
        "    # phone_region: not inferred, and 2 of the 2 phones sampled are no number in US: "
        "set the country they are from here\n"
    ) in render_yaml(config, inferred, tmp_path)
    lone = write(tmp_path / "lone.csv", "id,name,phone\n1,Ann Lee,020 7946 0018\n")
    config, inferred = config_from_flags({Kind.crm: [str(lone)]}, tmp_path)
    assert (
        "    # phone_region: not inferred, and the one phone sampled is no number in US: set "
        "the country it is from here\n"
    ) in render_yaml(config, inferred, tmp_path)
    american = write(tmp_path / "us.csv", "id,name,phone\n1,Ann Lee,(617) 555-0142\n")
    config, inferred = config_from_flags({Kind.crm: [str(american)]}, tmp_path)
    assert "# phone_region" not in render_yaml(config, inferred, tmp_path)


def test_a_run_from_flags_counts_no_phones_for_a_draft_it_does_not_make(tmp_path: Path):
    """The count of phones that are no number in the default region is for init's draft only:
    a run from flags skips it (binding the phone macros cost 0.2 to 0.4 s a source) and
    gets the same config."""
    from cxunify.fields import Kind
    from cxunify.infer import config_from_flags

    british = write(
        tmp_path / "contacts.csv",
        "id,name,phone\n1,Ann Lee,020 7946 0018\n2,Bob Ng,0161 496 0754\n",
    )
    flags = {Kind.crm: [str(british)]}
    drafted, for_init = config_from_flags(flags, tmp_path)
    run, for_run = config_from_flags(flags, tmp_path, for_draft=False)
    assert for_init[0].phones_unread == (2, 2)
    assert for_run[0].phones_unread is None
    assert run == drafted


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "french_contacts",
            {
                "first_name": "Prénom",
                "last_name": "Nom",
                "email": "Adresse e-mail",
                "phone": ["Téléphone", "Téléphone portable"],
                "street": "Adresse",
                "postcode": "Code postal",
                "city": "Ville",
                "country": "Pays/région",
                "created_at": "Date de création",
            },
        ),
        (
            "spanish_contacts",
            {
                "first_name": "Nombre",
                "last_name": "Apellidos",
                "email": "Correo electrónico",
                "phone": ["Teléfono", "Móvil"],
                "street": "Dirección",
                "postcode": "Código postal",
                "city": "Ciudad",
                "state": "Provincia",
                "country": "País",
                "created_at": "Fecha de alta",
            },
        ),
    ],
)
def test_french_and_spanish_crm_exports_are_mapped(
    inferred: dict[str, dict], name: str, expected: dict
):
    """A French or Spanish CRM's export mapped nothing but, by its values, the email: no
    name, phone or address to link by. French Nom beside Prénom is the surname, Spanish
    Nombre beside Apellidos the given name."""
    assert inferred[name]["columns"] == expected


def test_a_source_dates_tell_day_first_is_read_so(inferred: dict[str, dict]):
    """15/04/2024 can only be day first: the French export's dates are read so (its
    03/04/2024 is 3 April). ISO dates tell nothing: the Spanish export keeps the run's."""
    assert inferred["french_contacts"]["dayfirst"] is True
    assert "dayfirst" not in inferred["spanish_contacts"]


def test_english_exports_are_mapped_as_before(inferred: dict[str, dict]):
    """The other languages' words change no English export's mapping, id or dayfirst."""
    mapped = {name: inferred[name.split(".")[0]] for name in ENGLISH}
    assert {n: s.get("id") for n, s in mapped.items()} == {
        "shopify_customers": "Customer ID",
        "salesforce_contacts": "Id",
        "hubspot_contacts": "Record ID",
        "freshdesk_tickets": "Ticket ID",
        "stripe_payments": "id",
        "shopify_orders": None,
        "zendesk_tickets": "Id",
        "twitter_followers": "id",
        "intercom_conversations": "Conversation ID",
        "instagram_followers_1.json": None,
        "social_locations": "id",
    }
    assert not any("dayfirst" in s or "phone_region" in s for s in mapped.values())
    assert {n: s["columns"] for n, s in mapped.items()} == ENGLISH_COLUMNS


def test_an_update_reads_tonights_dates_as_the_stored_source_was_read(
    exports: dict[str, tuple[str, str]], unified: Path, tmp_path: Path
):
    """Tonight's orders of the German shop are one, dated 05/04/2025: alone it tells neither
    way, so inferred anew the source's dayfirst was unset, the stored one's true, and the
    update refused the source. Tonight's rows are read as the stored ones were: 5 April, and
    the phone written nationally a German one, though alone it tells no region."""
    night = tmp_path / "night"
    shutil.copytree(unified, night)
    delta = write(
        tmp_path / "tonight.csv",
        GERMAN_ORDERS.splitlines()[0]
        + "\n1003;carl@z.com;99,00;05/04/2025;Carl;Roy;0176 5555555\n",
    )
    result = CliRunner().invoke(
        app, ["update", "--previous", str(night), "--transactions", f"german_orders={delta}"]
    )
    assert result.exit_code == 0, result.stderr
    with duckdb.connect() as con:
        [(ts,)] = con.execute(
            "SELECT ts FROM read_parquet($p) WHERE source_record_id = '1003'",
            {"p": str(night / "touchpoints.parquet")},
        ).fetchall()
    assert ts.date().isoformat() == "2025-04-05"
    with duckdb.connect() as con:
        [(phone,)] = con.execute(
            "SELECT phone FROM read_parquet($p) WHERE source_record_id = '1003'",
            {"p": str(night / "records.parquet")},
        ).fetchall()
    assert phone == "+491765555555"


def _date_checks(con: duckdb.DuckDBPyConnection, written: str) -> tuple[bool, bool]:
    """Whether infer takes a value as a date only read day first, and only month first."""
    from cxunify.infer import _CHECKS

    row = con.execute(
        f"SELECT {_CHECKS['day_first']}, {_CHECKS['month_first']} FROM (SELECT $v AS v)",
        {"v": written},
    ).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


@pytest.fixture(scope="module")
def plain_con() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as con:
        yield con


@settings(max_examples=200, deadline=None)
@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
    st.sampled_from(["/", "-", "."]),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["", " 10:15", "T10:15:00"]),
)
def test_a_date_tells_its_order_only_when_one_reading_makes_it(
    plain_con: duckdb.DuckDBPyConnection,
    day: date,
    sep: str,
    padded: bool,
    short_year: bool,
    time: str,
):
    """Day first when only it reads the date (a day above 12 first) or the date is written
    with dots; month first when only it reads the date; an ISO date tells neither."""
    d, m = (f"{day.day:02}", f"{day.month:02}") if padded else (str(day.day), str(day.month))
    y = f"{day.year % 100:02}" if short_year else str(day.year)
    day_first = f"{d}{sep}{m}{sep}{y}{time}"
    month_first = f"{m}{sep}{d}{sep}{y}{time}"
    told = sep == "." or day.day > 12
    assert _date_checks(plain_con, day_first) == (told, False)
    # (dots read day first: 04.15.2025 tells the month is first, 04.12.2025 is 4 December)
    assert _date_checks(plain_con, month_first) == (sep == "." and day.day <= 12, day.day > 12)
    assert _date_checks(plain_con, day.isoformat()) == (False, False)


# Each English export's columns as `init` mapped them before other languages were read.
ENGLISH_COLUMNS = {
    "shopify_customers": {
        "customer_key": "Customer ID",
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": "Email",
        "street": "Default Address Address1",
        "address_2": "Default Address Address2",
        "city": "Default Address City",
        "state": "Default Address Province Code",
        "country": "Default Address Country Code",
        "postcode": "Default Address Zip",
        "phone": ["Phone", "Default Address Phone"],
    },
    "salesforce_contacts": {
        "first_name": "FirstName",
        "last_name": "LastName",
        "email": "Email",
        "phone": ["Phone", "MobilePhone"],
        "street": "MailingStreet",
        "city": "MailingCity",
        "state": "MailingState",
        "postcode": "MailingPostalCode",
        "country": "MailingCountry",
        "created_at": "CreatedDate",
    },
    "hubspot_contacts": {
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": ["Email", "Additional email addresses"],
        "phone": ["Phone Number", "Mobile Phone Number"],
        "created_at": "Create Date",
    },
    "freshdesk_tickets": {
        "subject": "Subject",
        "text": "Description",
        "status": "Status",
        "created_at": "Created time",
        "resolved_at": "Resolved time",
        "full_name": "Full name",
        "email": "Email",
        "phone": "Work phone",
    },
    "stripe_payments": {
        "created_at": "Created date (UTC)",
        "amount": "Amount",
        "currency": "Currency",
        "status": "Status",
        "customer_key": "Customer ID",
        "email": "Customer Email",
        "card_last4": "Card Last4",
        "full_name": "Card Name",
    },
    "shopify_orders": {
        "email": "Email",
        "status": "Financial Status",
        "currency": "Currency",
        "amount": "Total",
        "created_at": "Created at",
        "full_name": "Billing Name",
        "street": "Billing Street",
        "address_2": "Billing Address2",
        "city": "Billing City",
        "postcode": "Billing Zip",
        "state": "Billing Province",
        "country": "Billing Country",
        "phone": "Billing Phone",
        "order_id": "Name",
    },
    "zendesk_tickets": {
        "full_name": "Requester",
        "email": "Requester email",
        "subject": "Subject",
        "status": "Status",
        "channel": "Via",
        "created_at": "Created at",
        "resolved_at": "Solved at",
        "csat": "Satisfaction Score",
    },
    "twitter_followers": {
        "handle": "screen_name",
        "full_name": "name",
        "text": "description",
        "location": "location",
        "followers": "followers_count",
        "posts": "statuses_count",
        "created_at": "created_at",
    },
    "intercom_conversations": {"full_name": "User name", "email": "User email"},
    "instagram_followers_1.json": {},
    "social_locations": {"handle": "screen_name", "full_name": "name", "location": "location"},
}


def test_dates_told_month_first_or_both_ways_are_said_so(tmp_path: Path):
    """Under --dayfirst, an export whose dates are written month first (04/15/2025) is read
    so, not as the flag says; one whose dates are written both ways is left to the flag, and
    `init` says why."""
    us = write(tmp_path / "us.csv", "email,created_at\nann@x.com,04/15/2025\nbo@y.com,05/03/2025\n")
    both = write(
        tmp_path / "both.csv",
        "email,created_at,date_of_birth\nann@x.com,15/04/2025,03/04/1985\n"
        "bo@y.com,03/04/2025,12/31/1990\n",
    )
    result = CliRunner().invoke(
        app, ["init", "--crm", str(us), "--crm", str(both), "--dayfirst"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    sources = {s["name"]: s for s in yaml.safe_load(result.stdout)["sources"]}
    assert sources["us"]["dayfirst"] is False and "dayfirst" not in sources["both"]
    assert yaml.safe_load(result.stdout)["standardize"]["dayfirst"] is True
    assert (
        "    dayfirst: false  # 'created_at' holds dates read only month first (04/15/2025)\n"
    ) in result.stdout
    assert (
        "    # dayfirst: not inferred: 'created_at' holds dates read only day first "
        "(15/04/2025, 03.04.2025) and 'date_of_birth' dates read only month first "
        "(04/15/2025): set it by hand\n"
    ) in result.stdout


def test_a_glob_sources_id_is_inferred_from_all_its_files(cli, tmp_path: Path):
    """`--transactions 'orders=orders_*.csv'` took its id from the first file alone, where
    each order was one row: the second file's line items sharing an order number were
    rejected as repeats, and their revenue lost."""
    header = "order_id,email,amount,created_at\n"
    write(tmp_path / "orders_1.csv", header + "A1,ann@fastmail.com,10,2026-01-02\n"
          "A2,bob@fastmail.com,20,2026-01-03\n")  # fmt: skip
    write(tmp_path / "orders_2.csv", header + "A3,ann@fastmail.com,5,2026-02-02\n"
          "A3,ann@fastmail.com,7,2026-02-02\n")  # fmt: skip
    out = tmp_path / "out"
    result = cli("unify", "--transactions", f"orders={tmp_path}/orders_*.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["rows_rejected"] == 0, run["warnings"]
    revenue = duckdb.sql(
        f"SELECT email, orders, revenue FROM '{out}/profiles.parquet' ORDER BY email"
    ).fetchall()
    assert revenue == [("ann@fastmail.com", 2, 22), ("bob@fastmail.com", 1, 20)]


def test_a_header_alone_is_mapped_by_its_names_without_a_config(cli, tmp_path: Path):
    """A quiet night's ticket export of a header alone stopped a zero-config run with 'no
    data rows to infer a mapping from', where the README says it contributes 0 rows (as it
    does with a config). A header naming nothing still stops, as no mapping can be told."""
    crm = write(tmp_path / "crm.csv", "id,first_name,email\n1,Ann,ann@fastmail.com\n")
    tickets = write(tmp_path / "tickets.csv", "ticket_id,requester_email,created_at,subject\n")
    out = tmp_path / "out"
    result = cli("unify", "--crm", crm, "--support", tickets, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    inputs = json.loads((out / "run.json").read_text())["inputs"]
    assert [(i["source"], i["rows"]) for i in inputs] == [("crm", 1), ("tickets", 0)]
    drafted = cli("init", "--crm", crm, "--support", tickets)
    assert drafted.exit_code == 0, drafted.stderr
    assert (
        "    id: ticket_id  # its name looks like a key; the file has no rows to check it\n"
        in drafted.stdout
    )
    assert (
        "      email: requester_email  # header 'requester_email'; the file has no rows to "
        "check its values\n" in drafted.stdout
    )
    nothing = write(tmp_path / "blank.csv", "foo,bar\n")
    result = cli("unify", "--support", nothing, "--out", tmp_path / "o2", "-q")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {nothing}: no data rows to infer a mapping from\n",
    )


def test_orders_whose_amounts_were_left_unmapped_are_warned_of(cli, tmp_path: Path):
    """A third of an amount column unreadable (`free`, `n/a`) left it unmapped without a
    config, and every customer's revenue was NULL without a word."""
    orders = write(
        tmp_path / "orders.csv",
        "order_id,email,amount\nA1,ann@fastmail.com,10\nA2,bob@fastmail.com,free\n"
        "A3,cy@fastmail.com,n/a\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--transactions", orders, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    warning = (
        "source 'orders' (transactions) maps no amount: its rows count as orders, with no "
        "revenue; map its column of amounts (columns: {amount: ...}; `cxunify init` on its "
        "file says why no column was mapped)"
    )
    assert json.loads((out / "run.json").read_text())["warnings"] == [warning]
    assert "Warning: " + warning in " ".join(result.stderr.split())
    drafted = cli("init", "--transactions", orders)
    assert "header suggests amount, but only 33% of values look like one" in drafted.stdout
    assert "# amount: no column mapped" not in drafted.stdout  # (the line above says why)


def test_init_says_why_no_amount_is_mapped_when_no_header_suggests_one(cli, tmp_path: Path):
    """The run's warning of orders with no amount sends the user to `init`, which said nothing
    when no header looked like an amount (PayPal's Gross, before it was read as one): the draft
    mapped the other columns as if nothing were missing."""
    orders = write(
        tmp_path / "orders.csv",
        "order_id,email,paid\nA1,ann@fastmail.com,10.00\nA2,bob@fastmail.com,12.50\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--transactions", orders, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert "maps no amount" in json.loads((out / "run.json").read_text())["warnings"][0]
    drafted = cli("init", "--transactions", orders)
    assert drafted.exit_code == 0, drafted.stderr
    assert (
        "    # amount: no column mapped: no header reads as one (Amount, Total, Price, Gross, "
        "...): map the column of what each order cost, or its rows count as orders with no "
        "revenue\n" in drafted.stdout
    )
    # A CRM has no amount to miss.
    contacts = write(tmp_path / "contacts.csv", "id,email\n1,ann@fastmail.com\n")
    assert "# amount" not in cli("init", "--crm", contacts).stdout


def test_paypals_gross_is_the_amount_its_fee_and_net_are_not(cli, tmp_path: Path):
    """PayPal's activity export writes what the customer paid as `Gross` (its `Net` is that
    less PayPal's `Fee`): no header was read as the amount, and every payment counted as an
    order of no revenue."""
    activity = write(
        tmp_path / "paypal.csv",
        "Date,Name,Type,Status,Currency,Gross,Fee,Net,From Email Address,Transaction ID\n"
        "01/02/2024,Jane Doe,Express Checkout Payment,Completed,USD,59.97,-2.04,57.93,"
        "jane@x.com,1AB23456CD789012E\n"
        "01/03/2024,Jane Doe,Express Checkout Payment,Completed,USD,12.50,-0.66,11.84,"
        "jane@x.com,2AB23456CD789012F\n",
    )
    drafted = cli("init", "--transactions", activity)
    assert drafted.exit_code == 0, drafted.stderr
    columns = yaml.safe_load(drafted.stdout)["sources"][0]["columns"]
    assert columns["amount"] == "Gross"
    assert not {"Fee", "Net"} & set(columns.values())
    out = tmp_path / "out"
    result = cli("unify", "--transactions", activity, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["warnings"] == []
    assert duckdb.sql(f"SELECT orders, revenue FROM '{out}/profiles.parquet'").fetchall() == [
        (2, Decimal("72.47"))
    ]


def test_orders_in_two_overlapping_exports_are_warned_of(cli, tmp_path: Path):
    """Two monthly exports overlapping by a few orders, read as a source each, counted the
    shared orders twice without a word; read as one source, they are one order each."""
    header = "order_id,email,amount,created_at\n"
    write(tmp_path / "orders_1.csv", header + "A1,ann@fastmail.com,10,2026-01-02\n"
          "A2,ann@fastmail.com,20,2026-01-31\n")  # fmt: skip
    write(tmp_path / "orders_2.csv", header + "A2,ann@fastmail.com,20,2026-01-31\n"
          "A3,ann@fastmail.com,5,2026-02-02\n")  # fmt: skip
    out = tmp_path / "out"
    result = cli("unify", "--transactions", f"{tmp_path}/orders_*.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["warnings"] == [
        "sources 'orders_1' and 'orders_2' hold 1 order alike (order id and amount; the first: "
        "'A2'), counted once in each: if they are overlapping exports of one system, read them "
        "as one source (a glob in its path; without a config, NAME=PATTERN: --transactions "
        "'orders=orders_*.csv'), where rows sharing an order id are one order"
    ]
    figures = f"SELECT orders, revenue FROM '{out}/profiles.parquet'"
    assert duckdb.sql(figures).fetchall() == [(4, 55)]
    result = cli("unify", "--transactions", f"orders={tmp_path}/orders_*.csv", "--out", out, "-q")
    assert result.exit_code == 0 and "Warning" not in result.stderr, result.stderr
    assert duckdb.sql(figures).fetchall() == [(3, 35)]


def test_a_header_repeating_a_name_maps_every_copy_or_none(cli, tmp_path: Path):
    """`email,email` (home and work) stopped a zero-config run with advice about a config
    the user did not have, and init drafted a config that stopped the same way. The copies
    of a field that takes several columns are mapped together; a name only one column can
    hold, repeated, is left out with a note (which copy holds it cannot be told)."""
    crm = write(
        tmp_path / "crm.csv",
        "contact_id,first_name,first_name,email,email\n"
        "C1,Ann,Anne,ann@fastmail.com,ann.lee@work.example.org\n"
        "C2,Bob,Rob,bob@fastmail.com,\n",
    )
    drafted = cli("init", "--crm", crm)
    assert drafted.exit_code == 0, drafted.stderr
    assert "      email: [email, email_1]  # headers 'email', 'email_1';" in drafted.stdout
    assert (
        "    # not mapped: first_name: header suggests first_name, but the header repeats it: "
        "which copy holds it cannot be told (rename the copies in the file)\n" in drafted.stdout
    )
    out = tmp_path / "out"
    result = cli("unify", "--crm", crm, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    emails = f"SELECT list_sort(emails) FROM '{out}/profiles.parquet' ORDER BY email"
    assert duckdb.sql(emails).fetchall() == [
        (["ann.lee@work.example.org", "ann@fastmail.com"],), (["bob@fastmail.com"],),
    ]  # fmt: skip


def test_a_source_writing_a_decimal_comma_reads_dots_as_thousands(tmp_path: Path):
    """A German shop's `1.234` was 1.23 beside its `12,50` and `3.500,00`: revenue a third of
    what was sold, silently. The source's decimal comma is inferred, kept for its updates,
    and can be set in a config."""
    runner = CliRunner()
    header = "Bestellnummer,E-Mail,Datum,Betrag\n"
    write(
        tmp_path / "bestellungen.csv",
        header + 'B1,ann@x.de,15.03.2025,"12,50"\nB2,ann@x.de,16.03.2025,1.234\n'
        'B3,bob@x.de,17.03.2025,"3.500,00"\nB4,bob@x.de,18.03.2025,2.000\n',
    )
    out = tmp_path / "out"
    args = ["unify", "--transactions", str(tmp_path / "bestellungen.csv"), "--out", str(out)]
    assert runner.invoke(app, [*args, "-q"]).exit_code == 0
    revenue = f"SELECT email, revenue FROM '{out}/profiles.parquet' ORDER BY email"
    assert duckdb.sql(revenue).fetchall() == [
        ("ann@x.de", Decimal("1246.50")), ("bob@x.de", Decimal("5500.00"))
    ]  # fmt: skip
    # Tonight's one order tells nothing of its own: it is read as the stored source was.
    write(tmp_path / "tonight" / "bestellungen.csv", header + "B5,ann@x.de,19.03.2025,1.000\n")
    result = runner.invoke(
        app, ["update", "--previous", str(out), "--transactions",
              str(tmp_path / "tonight" / "bestellungen.csv"), "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert duckdb.sql(revenue).fetchall()[0] == ("ann@x.de", Decimal("2246.50"))
    drafted = runner.invoke(app, ["init", "--transactions", str(tmp_path / "bestellungen.csv")])
    told = "    decimal_comma: true  # 'Betrag' writes a decimal comma (12,50): 1.234 is 1234\n"
    assert told in drafted.stdout
    # A source of points, and one unset in a config, reads 1.234 as 1.234.
    write(tmp_path / "orders.csv", header + "O1,cy@x.com,2025-03-15,12.50\nO2,cy@x.com,,1.234\n")
    mixed = tmp_path / "mixed"
    args = ["unify", "--transactions", str(tmp_path / "orders.csv"), "--out", str(mixed), "-q"]
    assert runner.invoke(app, args).exit_code == 0
    assert duckdb.sql(f"SELECT revenue FROM '{mixed}/profiles.parquet'").fetchall() == [
        (Decimal("13.73"),)
    ]


def test_hubspots_state_region_and_country_region_are_mapped(cli, tmp_path: Path):
    """HubSpot's contact export writes the state and country as `State/Region` and
    `Country/Region`: neither was recognised, nor listed as not mapped, so the contacts had no
    country and a German contact's `030 1234567` was read as a US number, not Berlin's."""
    contacts = write(
        tmp_path / "hubspot.csv",
        "Record ID,First Name,Last Name,Email,Phone Number,City,State/Region,Country/Region\n"
        "51,Jane,Doe,jane@x.com,(617) 555-0142,Boston,Massachusetts,United States\n"
        "52,Hans,Meier,hans@y.de,030 1234567,Berlin,Berlin,Germany\n",
    )
    drafted = cli("init", "--crm", contacts)
    assert drafted.exit_code == 0, drafted.stderr
    columns = yaml.safe_load(drafted.stdout)["sources"][0]["columns"]
    assert (columns["state"], columns["country"]) == ("State/Region", "Country/Region")
    out = tmp_path / "out"
    result = cli("unify", "--crm", contacts, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    phones = f"SELECT email, phone, country FROM '{out}/profiles.parquet' ORDER BY email"
    assert duckdb.sql(phones).fetchall() == [
        ("hans@y.de", "+49301234567", "DE"),
        ("jane@x.com", "+16175550142", "US"),
    ]


def test_card_addresses_instagram_profiles_and_mailchimps_country_are_mapped(cli, tmp_path: Path):
    """Stripe's Card Address Line1, City, State, Country and Zip (the cardholder's billing
    address), Instagram's public_phone_number and media_count, and Mailchimp's CC (its
    subscriber's country, two letters) were left unmapped. CC is the country only as the whole
    header, holding two-letter codes, beside no column named as the country: a helpdesk's CC
    holds a carbon copy's addresses."""
    stripe = write(
        tmp_path / "stripe.csv",
        "id,Amount,Customer Email,Card Number,Card Address Line1,Card Address Line2,"
        "Card Address City,Card Address State,Card Address Country,Card Address Zip,"
        "Card Address Line1 Check\n"
        "ch_1,59.97,ann@x.com,,12 Beacon St,Apt 4,Boston,MA,US,02108,pass\n"
        "ch_2,12.00,bob@y.com,,450 W 33rd St,,New York,NY,US,10001,pass\n",
    )
    profiles = [
        {"username": "ann.lee", "public_phone_number": "+1 617 555 0142", "media_count": 120},
        {"username": "bob.roy", "public_phone_number": "", "media_count": 3},
    ]
    instagram = write(tmp_path / "instagram.json", json.dumps(profiles))
    mailchimp = write(
        tmp_path / "mailchimp.csv",
        "Email Address,First Name,CC,LEID\nann@x.com,Ann,GB,1001\nbob@y.de,Bob,DE,1002\n",
    )
    tickets = write(
        tmp_path / "tickets.csv",
        "Ticket ID,Requester email,CC\n1,ann@x.com,cc@x.com\n2,bob@y.de,\n",
    )
    beside = write(
        tmp_path / "beside.csv",
        "CC,Email Address,Country Code\nGB,ann@x.com,GB\nDE,bob@y.de,DE\n",
    )
    drafted = cli(
        "init", "--transactions", stripe, "--social", instagram, "--crm", mailchimp,
        "--support", tickets, "--crm", beside,
    )  # fmt: skip
    assert drafted.exit_code == 0, drafted.stderr
    sources = {s["name"]: s["columns"] for s in yaml.safe_load(drafted.stdout)["sources"]}
    assert {f: sources["stripe"].get(f) for f in ADDRESS_FIELDS} == {
        "street": "Card Address Line1",
        "address_2": "Card Address Line2",
        "city": "Card Address City",
        "state": "Card Address State",
        "country": "Card Address Country",
        "postcode": "Card Address Zip",
        "street_number": None,  # (not Card Number)
    }
    assert sources["instagram"]["phone"] == "public_phone_number"
    assert sources["instagram"]["posts"] == "media_count"
    assert sources["mailchimp"]["country"] == "CC"
    assert "      country: CC  # header 'CC'; 100% look like country codes\n" in drafted.stdout
    assert "country" not in sources["tickets"]
    assert sources["beside"]["country"] == "Country Code"
    assert "    # not mapped: CC: country is mapped from 'Country Code'\n" in drafted.stdout


ADDRESS_FIELDS = ("street", "address_2", "city", "state", "country", "postcode", "street_number")


def test_a_rating_is_csat_only_in_a_support_export(cli, tmp_path: Path):
    """Mailchimp's MEMBER_RATING, the stars of a subscriber's engagement (its `member` prefix
    read as a role, leaving `rating`), was mapped as csat in a CRM export: a satisfaction
    score is a ticket's, as the run reads it. A helpdesk's Rating is still one."""
    audience = write(
        tmp_path / "mailchimp.csv",
        "Email Address,First Name,MEMBER_RATING\nann@x.com,Ann,2\nbob@y.com,Bob,5\n",
    )
    tickets = write(
        tmp_path / "tickets.csv", "Ticket ID,Email,Rating\n1,ann@x.com,4\n2,bob@y.com,5\n"
    )
    drafted = cli("init", "--crm", audience, "--support", tickets)
    assert drafted.exit_code == 0, drafted.stderr
    sources = {s["name"]: s["columns"] for s in yaml.safe_load(drafted.stdout)["sources"]}
    assert "csat" not in sources["mailchimp"]
    assert (
        "    # not mapped: MEMBER_RATING: header suggests csat, but a crm source's rating is no "
        "satisfaction with a ticket (csat is read from support sources)\n" in drafted.stdout
    )
    assert sources["tickets"]["csat"] == "Rating"


def test_a_misspelt_header_is_listed_and_warned_of(cli, tmp_path: Path):
    """`frist_name` was left unmapped without a word: init listed neither it nor
    `favourite_colour`, and the run's first names were all NULL with no warning. init lists
    every column it does not map, and a run without a config names the field a misspelt
    header is one slip off (not an unrelated column's)."""
    crm = write(
        tmp_path / "crm.csv",
        "id,frist_name,lastname,emial,favourite_colour,consent\n"
        "1,Jane,Doe,jane@fastmail.com,blue,yes\n2,John,Smith,john@fastmail.com,red,no\n",
    )
    drafted = cli("init", "--crm", crm)
    assert drafted.exit_code == 0, drafted.stderr
    assert (
        "    # not mapped: frist_name: its header names no field; did you mean first_name? map "
        "it so if that is what it holds (a run warns of it)\n" in drafted.stdout
    )
    assert (
        "    # not mapped: favourite_colour: its header names no field cxunify reads\n"
        in drafted.stdout
    )
    assert "    # not mapped: consent: its header names no field cxunify reads\n" in drafted.stdout
    out = tmp_path / "out"
    result = cli("unify", "--crm", crm, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    warning = (
        "column 'frist_name' of crm.csv is not mapped; did you mean first_name? map it with a "
        "config (cxunify init)"
    )
    assert json.loads((out / "run.json").read_text())["warnings"] == [warning]
    assert result.stderr.count("Warning: ") == 1 and f"Warning: {warning}" in result.stderr


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("frist_name", "first_name"), ("E-Mial", "email"), ("Phnoe", "phone"),
        ("Adress", "street"), ("Zip Cdoe", "postcode"), ("Craeted at", "created_at"),
        ("customer_emial", "email"), ("Last Nmae", "last_name"), ("ammount", "amount"),
        ("first_nane", "first_name"),  # n beside m
        # another word, not a slip: one letter of no neighbouring key, a short word, a plural,
        # a digit, a key, or a slip of two fields' spellings alike
        ("favourite_colour", None), ("consent", None), ("device", None), ("lat", None),
        ("cost", None), ("comments", None), ("street2", None), ("category_id", None),
        ("status_code", None), ("stats", None), ("Lineitem name", None), ("Vendor", None),
        ("first_name", None),  # (a field's own spelling)
    ],
)  # fmt: skip
def test_a_header_one_slip_off_a_fields_is_taken_for_its_misspelling(
    header: str, field: str | None
):
    assert misspelt_field(header) == field


def test_a_misspelling_of_a_field_mapped_from_another_column_is_not_warned_of(cli, tmp_path: Path):
    """The field is read from its own column: the other is no value lost."""
    crm = write(
        tmp_path / "crm.csv",
        "id,first_name,frist_name,email\n1,Jane,J,jane@fastmail.com\n2,John,J,john@fastmail.com\n",
    )
    result = cli("unify", "--crm", crm, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0 and "Warning" not in result.stderr, result.stderr


def _orders(count: int) -> str:
    return "order_id,order_date,email,amount\n" + "".join(
        f"ORD-{n},2025-01-{n % 28 + 1:02d},buyer{n}@fastmail.com,{n}.50\n"
        for n in range(1, count + 1)
    )


def test_an_order_row_written_twice_keeps_the_order_id_as_the_id(cli, tmp_path: Path):
    """One order's row copied at the end of an export made its order_id repeat, and the
    source was read as line items without a word: every record renamed ORD-1/1, so truth
    files, `explain orders:ORD-1` and deletions keyed on the real ids named nothing. A row
    repeating another whole is a duplicate: order_id stays the id, and the copy is rejected
    as `duplicate id`, as with a config, whose run no longer sends the user to leave `id`
    out for it either."""
    text = _orders(5)
    orders = write(tmp_path / "orders.csv", text + text.splitlines()[3] + "\n")
    drafted = cli("init", "--transactions", orders)
    assert drafted.exit_code == 0, drafted.stderr
    assert (
        "    id: order_id  # unique and non-empty in the first 6 rows but for 1 row repeating "
        "another whole (a duplicate, rejected as such)\n" in drafted.stdout
    )
    config = write(
        tmp_path / "cx.yaml",
        f"sources:\n  - {{name: orders, kind: transactions, path: {orders}, id: order_id, "
        "columns: {order_id: order_id, created_at: order_date, email: email, amount: amount}}\n",
    )
    for run in (("--transactions", orders), ("--config", config)):
        out = tmp_path / run[0].strip("-")
        result = cli("unify", *run, "--out", out, "-q")
        assert result.exit_code == 0 and "Warning" not in result.stderr, result.stderr
        ids = duckdb.sql(f"SELECT source_record_id FROM '{out}/identity_map.parquet' ORDER BY 1")
        assert [i for (i,) in ids.fetchall()] == [f"ORD-{n}" for n in range(1, 6)]
        rejects = duckdb.sql(f"SELECT reason FROM '{out}/rejects.parquet'").fetchall()
        assert rejects == [("duplicate id ORD-3 (first at row 3) in order_id",)]


def test_line_items_told_by_few_repeated_order_ids_are_warned_of(cli, tmp_path: Path):
    """Rows of one order id that differ are line items (see the Shopify export above, where
    most orders repeat, read without a warning); when 1 in 100 or fewer of the ids repeat,
    they may as well be an order written twice with a change, and reading them as line items
    renames every row: init and the run say how many repeat."""
    orders = write(
        tmp_path / "orders.csv", _orders(100) + "ORD-7,2025-01-08,buyer7@fastmail.com,1\n"
    )
    drafted = cli("init", "--transactions", orders)
    assert drafted.exit_code == 0, drafted.stderr
    assert (
        "per line item: the rows sharing an order number are one order, and each row is named "
        "by its order and its place in it (#1001/2); but only 1 of its 100 order numbers "
        "repeats (the run warns): if those are orders written twice, set `id: order_id`\n"
    ) in drafted.stdout
    out = tmp_path / "out"
    result = cli("unify", "--transactions", orders, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["warnings"] == [
        "source 'orders': 1 of its 100 order ids in 'order_id' repeats (the first: order "
        "'ORD-7') on rows that differ, so its rows are read as line items, each named by its "
        "order and its place in it (#1001/2), not by its id; if the repeats are orders written "
        "twice, map 'order_id' as the id in a config (`cxunify init` drafts one): the repeats "
        "are then rejected as duplicate ids"
    ]
    # (more than 1 in 100 repeating: line items, as an export of them writes)
    orders = write(tmp_path / "few.csv", _orders(50) + "ORD-7,2025-01-08,buyer7@fastmail.com,1\n")
    result = cli("unify", "--transactions", orders, "--out", tmp_path / "few", "-q")
    assert result.exit_code == 0 and "Warning" not in result.stderr, result.stderr
