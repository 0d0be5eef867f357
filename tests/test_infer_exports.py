"""Zero-config on exports as SaaS systems write them by default: their header sets and value
formats, a few rows each, read by `cxunify init` with no config (once for the module: each
run installs the standardisation macros, seconds on a busy machine)."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from cxunify.cli import app
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
    "\ufeffRecord ID,First Name,Last Name,Email,Phone Number,Create Date,Lifecycle Stage\r\n"
    "51234,Priya,Raghunathan,priya.r@yahoo.com,4155550123,2023-01-01 10:00,Customer\r\n"
    "51241,Mic,Chen,mchen88@gmail.com,+1 (312) 555-0199,2023-02-02 11:01,Lead\r\n"
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
    "Customer ID,Customer Email,Card Last4,Dispute Date (UTC)\n"
    "ch_3Nq00xL2eZvKYlo2C0abcdEF0,,2024-01-10 10:00:10,59.97,0.00,usd,Paid,cus_O000abc,"
    "olivia.martinez@gmail.com,4242,\n"
    'ch_3Nq01xL2eZvKYlo2C0abcdEF1,,2024-02-11 11:01:11,"1,250.00",0.00,usd,Paid,'
    "cus_O001abc,jim.oconnor@outlook.com,4243,\n"
)
# kind and file of each export; each is a source named by its file's stem
EXPORTS = {
    "shopify_customers": ("crm", SHOPIFY_CUSTOMERS),
    "salesforce_contacts": ("crm", SALESFORCE_CONTACTS),
    "hubspot_contacts": ("crm", HUBSPOT_CONTACTS),
    "freshdesk_tickets": ("support", FRESHDESK_TICKETS),
    "stripe_payments": ("transactions", STRIPE_PAYMENTS),
}


@pytest.fixture(scope="module")
def inferred(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Each export's source in the config `cxunify init` infers for them all."""
    folder = tmp_path_factory.mktemp("exports")
    flags = []
    for name, (kind, text) in EXPORTS.items():
        flags += [f"--{kind}", str(write(folder / f"{name}.csv", text))]
    result = CliRunner().invoke(app, ["init", *flags], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return {s["name"]: s for s in yaml.safe_load(result.stdout)["sources"]}


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
    assert columns["phone"] == "Phone"  # the column named as the field, before the address's
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
