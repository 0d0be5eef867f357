"""Survivorship: each rule picks the hand-expected value and says where it came from."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cxunify.config import ConfigError, ProfileConfig, SurvivorshipRule, validate_config
from cxunify.profile import GOLDEN, PROFILES, build_golden, build_profiles
from cxunify.standardize import RECORDS
from tests.conftest import write
from tests.profile_fixture import by_customer, day, load_records, ts

# Customer A's first name, five ways, in reading order (record keys 1..5; Rob, Robert and Bob
# one name by their key, so no slips of each other):
#   1 social 'Rob' 2022, 2 crm 'Robert' 2023, 3 support 'Bob' 2024,
#   4 orders 'Bob' 2025, 5 orders 'Roberto' with no timestamp.
# Customer B: two names once each (a most_frequent tie), neither the start of the other.
# Customer C: no name, no email, no phone at all.
ROWS = [
    {"customer_id": "A", "kind": "social", "first_name": "Rob", "first_name_key": "robert",
     "handle": "robk", "platform": "x", "last_active_at": ts("2022-05-01 00:00")},
    {"customer_id": "A", "kind": "crm", "first_name": "Robert", "last_name": "King",
     "email": "rob@example.com", "phone": "+15550000001", "street": "1 Main St",
     "city": "Springfield", "postcode": "11111", "state": "il", "country": "USA",
     "dob": day("1980-02-03"), "created_at": ts("2023-01-01 00:00")},
    {"customer_id": "A", "kind": "support", "first_name": "Bob", "first_name_key": "robert",
     "email": "bob@example.com", "phone": "+15550000002", "created_at": ts("2024-06-01 00:00")},
    {"customer_id": "A", "kind": "transactions", "first_name": "Bob", "first_name_key": "robert",
     "postcode": "22222", "email": "rob@example.com", "created_at": ts("2025-01-01 00:00")},
    {"customer_id": "A", "kind": "transactions", "first_name": "Roberto"},
    {"customer_id": "B", "kind": "crm", "first_name": "Annie",
     "created_at": ts("2024-01-01 00:00")},
    {"customer_id": "B", "kind": "crm", "first_name": "Anne",
     "created_at": ts("2024-02-01 00:00")},
    {"customer_id": "C", "kind": "social", "handle": "ghost",
     "last_active_at": ts("2024-03-01 00:00")},
]  # fmt: skip


def golden(rules: dict[str, SurvivorshipRule] | None = None) -> dict[str, dict]:
    settings = ProfileConfig(survivorship=rules or {})
    engine = load_records(ROWS)
    build_golden(engine, settings.survivorship)
    return by_customer(engine, GOLDEN)


def first_name(rule: str, **options) -> tuple[str, str]:
    row = golden({"first_name": SurvivorshipRule(rule=rule, **options)})["A"]
    return row["first_name"], row["first_name_provenance"]["source_record_id"]


def test_default_names_come_from_crm_with_provenance():
    a = golden()["A"]
    assert a["first_name"] == "Robert"
    assert a["first_name_provenance"] == {
        "source": "crm",
        "source_record_id": "crm-2",
        "rule": "source_priority",
        "seen_at": ts("2023-01-01 00:00"),
    }
    assert a["email"] == "rob@example.com"


def test_default_phone_is_the_most_recent():
    a = golden()["A"]
    # the newest record (orders, 2025) has no phone: the support one (2024) wins
    assert a["phone"] == "+15550000002"
    assert a["phone_provenance"]["rule"] == "most_recent"
    assert a["phone_provenance"]["source"] == "tickets"


def test_address_parts_prefer_the_record_with_a_street():
    a = golden()["A"]
    # the order of 2025 is newer but has a postcode only: the CRM address stays whole
    assert (a["street"], a["city"], a["postcode"], a["state"]) == (
        "1 Main St",
        "Springfield",
        "11111",
        "il",
    )
    assert a["postcode_provenance"]["source_record_id"] == "crm-2"


@pytest.mark.parametrize(
    ("rule", "options", "expected"),
    [
        ("most_recent", {}, ("Bob", "orders-4")),  # no-timestamp record 5 sorts last
        ("most_frequent", {}, ("Bob", "orders-4")),  # Bob twice; the newer Bob
        ("longest", {}, ("Roberto", "orders-5")),
        ("first_non_null", {}, ("Rob", "social-1")),
        ("source_priority", {"sources": ["social", "crm"]}, ("Rob", "social-1")),
        # a source *name* works as well as a kind; among its rows, the newest
        ("source_priority", {"sources": ["orders"]}, ("Bob", "orders-4")),
    ],
)
def test_each_rule(rule: str, options: dict, expected: tuple[str, str]):
    assert first_name(rule, **options) == expected


def test_most_frequent_tie_goes_to_the_most_recent():
    b = golden({"first_name": SurvivorshipRule(rule="most_frequent")})["B"]
    assert b["first_name"] == "Anne"


def test_within_a_tier_the_value_on_more_rows_wins_before_the_newest():
    """Two CRMs (HubSpot, Salesforce) are one tier: its newest row's name won, so a 'Mic' typed
    into HubSpot last beat the 'Michael' of Salesforce and of every order and ticket. The value
    held by more of the customer's rows (any source's) wins now; the newest breaks a tie."""
    rows = [
        {"customer_id": "M", "kind": "crm", "source": "salesforce", "first_name": "Michael",
         "created_at": ts("2022-10-01 10:00")},
        {"customer_id": "M", "kind": "crm", "source": "hubspot", "first_name": "Mic",
         "created_at": ts("2025-03-02 11:00")},
        {"customer_id": "M", "kind": "transactions", "first_name": "Michael"},
        {"customer_id": "M", "kind": "support", "first_name": "Michael",
         "created_at": ts("2024-05-10 10:00")},
        # a name on more rows of a lower tier only does not climb into the first
        {"customer_id": "N", "kind": "crm", "first_name": "Robert",
         "created_at": ts("2022-01-01 00:00")},
        {"customer_id": "N", "kind": "transactions", "first_name": "Bob"},
        {"customer_id": "N", "kind": "transactions", "first_name": "Bob"},
    ]  # fmt: skip
    engine = load_records(rows)
    build_golden(engine, ProfileConfig().survivorship)
    golden = by_customer(engine, GOLDEN)
    assert golden["M"]["first_name"] == "Michael"
    assert golden["M"]["first_name_provenance"]["source"] == "salesforce"
    assert golden["N"]["first_name"] == "Robert"


def test_a_slip_of_the_keyboard_gives_way_to_the_spelling_on_twice_as_many_rows():
    """The CRM tier won whatever its value: a contact typed 'Bredna' kept that golden name
    though both of her orders say 'Brenda'. A name one slip away (a letter more, less, changed,
    or two swapped) from a spelling on at least twice as many of the customer's rows ranks
    last now; one row against one, a nickname, or a name under three letters stays as it was."""
    rows = [
        {"customer_id": "B", "kind": "crm", "first_name": "Bredna", "last_name": "Jonhson",
         "created_at": ts("2023-01-01 00:00")},
        {"customer_id": "B", "kind": "transactions", "first_name": "Brenda",
         "last_name": "Johnson"},
        {"customer_id": "B", "kind": "transactions", "first_name": "Brenda",
         "last_name": "Johnson"},
        # one row against one: the CRM's
        {"customer_id": "C", "kind": "crm", "first_name": "Davqd",
         "created_at": ts("2023-01-01 00:00")},
        {"customer_id": "C", "kind": "transactions", "first_name": "David"},
        # a nickname is no slip
        {"customer_id": "D", "kind": "crm", "first_name": "Robert",
         "created_at": ts("2023-01-01 00:00")},
        {"customer_id": "D", "kind": "transactions", "first_name": "Bob"},
        {"customer_id": "D", "kind": "transactions", "first_name": "Bob"},
        # nor are two spellings of one name (their key: the formal name)
        {"customer_id": "F", "kind": "crm", "first_name": "Rob", "first_name_key": "robert",
         "created_at": ts("2023-01-01 00:00")},
        {"customer_id": "F", "kind": "transactions", "first_name": "Bob",
         "first_name_key": "robert"},
        {"customer_id": "F", "kind": "transactions", "first_name": "Bob",
         "first_name_key": "robert"},
        # two letters are too few to tell a slip from another name
        {"customer_id": "E", "kind": "crm", "first_name": "Al",
         "created_at": ts("2023-01-01 00:00")},
        {"customer_id": "E", "kind": "transactions", "first_name": "Ali"},
        {"customer_id": "E", "kind": "transactions", "first_name": "Ali"},
        # a letter's accent is no slip: the CRM's 'Alcántara' stays (it gave way to the
        # orders' and tickets' 'Alcantara')
        {"customer_id": "G", "kind": "crm", "last_name": "Alcántara",
         "created_at": ts("2023-01-01 00:00")},
        {"customer_id": "G", "kind": "transactions", "last_name": "Alcantara"},
        {"customer_id": "G", "kind": "support", "last_name": "Alcantara"},
    ]  # fmt: skip
    engine = load_records(rows)
    build_golden(engine, ProfileConfig().survivorship)
    golden = by_customer(engine, GOLDEN)
    assert (golden["B"]["first_name"], golden["B"]["last_name"]) == ("Brenda", "Johnson")
    assert golden["B"]["first_name_provenance"]["source"] == "orders"
    assert golden["C"]["first_name"] == "Davqd"
    assert golden["D"]["first_name"] == "Robert"
    assert golden["E"]["first_name"] == "Al"
    assert golden["G"]["last_name"] == "Alcántara"
    assert golden["F"]["first_name"] == "Rob"
    # a rule that counts no rows is as it was: the newest (the CRM's, the orders have no time)
    newest = {"first_name": SurvivorshipRule(rule="most_recent")}
    engine = load_records(rows)
    build_golden(engine, ProfileConfig(survivorship=newest).survivorship)
    assert by_customer(engine, GOLDEN)["B"]["first_name"] == "Bredna"


# Michael Chen's exports: the CRMs' newest row (HubSpot's) holds his name cut short, the
# Salesforce contact, his orders and tickets the whole of it (7 of his 9 rows), one ticket a
# nickname.
CHEN_EXPORTS = {
    "hubspot_contacts.csv": (
        "crm",
        "Record ID,First Name,Last Name,Email,Phone Number,Create Date\n"
        "51241,Mic,Chen,mchen88@gmail.com,+1 (312) 555-0199,2025-03-02 11:01\n",
    ),
    "salesforce_contacts.csv": (
        "crm",
        "Id,FirstName,LastName,Email,Phone,CreatedDate\n"
        "0035g00000AbCdGAAV,Michael,Chen,mchen88@gmail.com,(312) 555-0199,"
        "2022-10-01T10:15:22.000Z\n",
    ),
    "shopify_orders.csv": (
        "transactions",
        "Name,Email,Created at,Total,Billing Name\n"
        + "".join(
            f"#100{i},mchen88@gmail.com,2024-0{i}-10 10:00,{i}0.00,Michael Chen\n"
            for i in range(1, 5)
        ),
    ),
    "zendesk_tickets.csv": (
        "support",
        "Id,Requester,Requester email,Subject,Status,Created at\n"
        "10452,Michael Chen,mchen88@gmail.com,Where is my order?,Solved,2024-05-10 10:30\n"
        "10453,Michael Chen,mchen88@gmail.com,Refund,Solved,2024-06-10 10:30\n"
        "10454,Mike Chen,mchen88@gmail.com,Login,Open,2024-07-10 10:30\n",
    ),
}


def test_a_name_cut_short_in_the_newest_crm_row_does_not_win(cli, tmp_path: Path):
    """Michael Chen's golden first name was 'Mic': his HubSpot row is the newest of his CRM
    rows, and the newest won within the CRM tier. 'Michael', on more of his rows, wins now,
    from the Salesforce contact."""
    flags = [
        arg
        for name, (kind, text) in CHEN_EXPORTS.items()
        for arg in (f"--{kind}", write(tmp_path / name, text))
    ]
    result = cli("unify", *flags, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.stderr
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT n_records, first_name, first_name_provenance.source FROM read_parquet($p)",
            {"p": str(tmp_path / "out" / "profiles.parquet")},
        ).fetchall()
    assert rows == [(9, "Michael", "salesforce_contacts")]


@pytest.mark.parametrize(
    ("rule", "older", "newer", "expected"),
    [
        # on as many rows, a value cut short gives way to the one it is the start of
        ("source_priority", "Michael", "Mic", "Michael"),
        ("source_priority", "Jonathan", "J", "Jonathan"),
        ("source_priority", "Donald", "D.", "Donald"),  # an initial with its full stop
        ("most_frequent", "Anne", "Ann", "Anne"),
        # a nickname is no cut: the newest still wins
        ("source_priority", "Robert", "Bob", "Bob"),
        ("source_priority", "Michael", "Mike", "Mike"),
        ("most_frequent", "Anne", "Annie", "Annie"),
    ],
)
def test_a_value_cut_short_loses_to_the_fuller_one_on_as_many_rows(
    rule: str, older: str, newer: str, expected: str
):
    rows = [
        {"customer_id": "A", "kind": "crm", "first_name": older,
         "created_at": ts("2023-01-01 00:00")},
        {"customer_id": "A", "kind": "crm", "first_name": newer,
         "created_at": ts("2025-01-01 00:00")},
        # another customer's rows count for nothing
        {"customer_id": "B", "kind": "crm", "first_name": newer},
        {"customer_id": "B", "kind": "crm", "first_name": newer},
    ]  # fmt: skip
    engine = load_records(rows)
    build_golden(
        engine, {**ProfileConfig().survivorship, "first_name": SurvivorshipRule(rule=rule)}
    )
    assert by_customer(engine, GOLDEN)["A"]["first_name"] == expected


def test_an_initial_gives_way_to_the_name_it_starts_whatever_its_source():
    """A ticket's 'M.' was the golden last name, its tier above the orders' 'Morris' (the CRM's
    'Morrsi', a slip, ranked last). An initial of the customer's full name ranks after every
    other value but slips; an initial of no name of the customer's stays."""
    rows = [
        {"customer_id": "A", "kind": "crm", "last_name": "Morrsi",
         "created_at": ts("2023-01-01 00:00")},
        {"customer_id": "A", "kind": "support", "first_name": "L.", "last_name": "M."},
        {"customer_id": "A", "kind": "transactions", "first_name": "Linda", "last_name": "Morris"},
        {"customer_id": "A", "kind": "transactions", "first_name": "Linda", "last_name": "Morris"},
        {"customer_id": "B", "kind": "crm", "first_name": "R.", "last_name": "Ray"},
        {"customer_id": "B", "kind": "transactions", "first_name": "Sam", "last_name": "Ray"},
    ]  # fmt: skip
    engine = load_records(rows)
    build_golden(engine, ProfileConfig().survivorship)
    golden = by_customer(engine, GOLDEN)
    assert (golden["A"]["first_name"], golden["A"]["last_name"]) == ("Linda", "Morris")
    assert golden["B"]["first_name"] == "R."


def test_longest_breaks_a_tie_of_length_by_rows_then_by_the_newest():
    rows = [
        {"customer_id": "A", "kind": "crm", "city": "Boston", "street": "1 Main St",
         "created_at": ts("2023-01-01 00:00")},
        {"customer_id": "A", "kind": "support", "city": "Boston", "street": "1 Main St"},
        {"customer_id": "A", "kind": "crm", "city": "Dallas", "street": "2 Elm St",
         "created_at": ts("2025-01-01 00:00")},
    ]  # fmt: skip
    engine = load_records(rows)
    rules = {**ProfileConfig().survivorship, "city": SurvivorshipRule(rule="longest")}
    build_golden(engine, rules)
    assert by_customer(engine, GOLDEN)["A"]["city"] == "Boston"


def test_a_field_nobody_has_is_null_with_null_provenance_and_lists_are_empty():
    c = golden()["C"]
    assert c["first_name"] is None and c["first_name_provenance"] is None
    assert c["emails"] == [] and c["phones"] == [] and c["addresses"] == []
    assert c["handles"] == ["ghost"]


def test_lists_hold_every_distinct_value():
    a = golden()["A"]
    assert a["emails"] == ["bob@example.com", "rob@example.com"]
    assert a["phones"] == ["+15550000001", "+15550000002"]
    assert a["addresses"] == ["1 Main St, Springfield, IL 11111, USA"]
    assert a["handles"] == ["x:robk"]
    assert a["n_records"] == 5
    assert a["sources"] == ["crm", "orders", "social", "tickets"]
    assert a["source_kinds"] == ["crm", "social", "support", "transactions"]
    assert golden()["B"]["source_kinds"] == ["crm"]
    assert (a["first_seen_at"], a["last_seen_at"]) == (
        ts("2022-05-01 00:00"),
        ts("2025-01-01 00:00"),
    )


def test_lists_hold_the_values_of_a_fields_other_columns():
    """A record's other phone and email columns (a mobile beside the work phone) were lost: its
    customer's phones and emails list them now, each value once; the golden phone and email
    stay those a record matched by, and a record whose first column held junk (email n/a)
    still lists its other email."""
    rows = [
        {"customer_id": "A", "kind": "crm", "phone": "+15550000001", "email": "a@x.com",
         "phone_others": ["+15550000002", "+15550000001"], "email_others": ["b@x.com"]},
        {"customer_id": "A", "kind": "support", "phone": "+15550000002"},
        {"customer_id": "B", "kind": "crm", "email_others": ["c@x.com"]},
    ]  # fmt: skip
    engine = load_records(rows)
    build_golden(engine, ProfileConfig().survivorship)
    golden = by_customer(engine, GOLDEN)
    assert golden["A"]["phone"] == "+15550000001"
    assert golden["A"]["phones"] == ["+15550000001", "+15550000002"]
    assert golden["A"]["emails"] == ["a@x.com", "b@x.com"]
    assert (golden["B"]["email"], golden["B"]["emails"]) == (None, ["c@x.com"])


def test_build_profiles_defaults_as_of_to_the_newest_timestamp():
    engine = load_records(ROWS)
    profiled = build_profiles(engine, ProfileConfig())
    assert profiled.as_of == ts("2025-01-01 00:00")
    assert profiled.profiles == 3 and profiled.touchpoints == len(ROWS)
    assert engine.count(PROFILES) == 3


def test_default_as_of_leaves_out_timestamps_after_the_run_started():
    # An order typed with the year 2205 and a ticket resolved "tomorrow": neither is the
    # newest event yet, so neither moves as_of (and recency) for every customer.
    typo = {"customer_id": "B", "kind": "transactions", "first_name": "Ann",
            "created_at": ts("2205-01-02 00:00")}  # fmt: skip
    tomorrow = {"customer_id": "C", "kind": "support", "created_at": ts("2025-01-01 12:00"),
                "resolved_at": ts("2025-06-02 00:00")}  # fmt: skip
    engine = load_records([*ROWS, typo, tomorrow])
    profiled = build_profiles(engine, ProfileConfig(), now=ts("2025-06-01 00:00"))
    assert profiled.as_of == ts("2025-01-01 12:00")
    assert profiled.future_timestamps == 2
    recency = dict(engine.rows(f"SELECT customer_id, recency_days FROM {PROFILES}"))
    assert recency["A"] == 0
    # the run's clock by default; a configured as_of is used whatever the data holds
    assert build_profiles(load_records([*ROWS, typo])).future_timestamps == 1
    given = ProfileConfig(as_of=ts("2230-01-01 00:00"))
    assert build_profiles(load_records([*ROWS, typo]), given).as_of == ts("2230-01-01 00:00")


def test_config_rejects_an_unknown_golden_field_and_keeps_other_defaults():
    raw = {
        "sources": [
            {"name": "crm", "kind": "crm", "path": "crm.csv", "columns": {"email": "email"}}
        ],
        "profile": {"survivorship": {"phone": {"rule": "longest"}}},
    }
    rules = validate_config(raw, origin="x.yaml", base_dir=Path(".")).profile.survivorship
    assert rules["phone"].rule == "longest" and rules["first_name"].rule == "source_priority"
    raw["profile"] = {"survivorship": {"phnoe": {"rule": "longest"}}}
    with pytest.raises(ConfigError) as error:
        validate_config(raw, origin="x.yaml", base_dir=Path("."))
    assert str(error.value) == (
        "x.yaml: profile.survivorship: 'phnoe' is not a golden field; did you mean 'phone'?"
    )


def test_profile_config_problems_name_their_keys():
    raw = {
        "sources": [
            {"name": "crm", "kind": "crm", "path": "crm.csv", "columns": {"email": "email"}}
        ],
        "profile": {
            "as_of": "2025-06-30",
            "currency": {"base": "US", "rates": {"eur": -1, "EUE": 1.1}},
            "lifecycle": {"active_days": 400},
        },
    }
    with pytest.raises(ConfigError) as error:
        validate_config(raw, origin="x.yaml", base_dir=Path("."))
    assert error.value.problems == [
        "x.yaml: profile.currency.base: 'US' is not an ISO 4217 currency code",
        "x.yaml: profile.currency.rates: eur: rate must be positive; "
        "'EUE' is not an ISO 4217 currency code",
        "x.yaml: profile.lifecycle: active_days must not exceed lapsed_days",
    ]
    raw["profile"] = {"as_of": "2025-06-30", "currency": {"base": "usd", "rates": {"eur": 1.1}}}
    settings = validate_config(raw, origin="x.yaml", base_dir=Path(".")).profile
    assert settings.as_of == ts("2025-06-30 00:00")
    assert (settings.currency.base, settings.currency.rates) == ("USD", {"EUR": 1.1})


def test_many_sources_are_listed_without_the_bit_mask(monkeypatch):
    monkeypatch.setattr("cxunify.profile.MASK_BITS", 2)  # 4 sources in the fixture
    a = golden()["A"]
    assert a["sources"] == ["crm", "orders", "social", "tickets"]
    assert a["source_kinds"] == ["crm", "social", "support", "transactions"]


def test_golden_records_are_the_same_put_side_by_side_by_position_or_by_customer():
    """DuckDB lines the per-field tables up by position; other engines join them by customer."""
    settings = ProfileConfig()
    by_position = load_records(ROWS)
    build_golden(by_position, settings.survivorship)
    by_key = load_records(ROWS)
    by_key.name = "spark"  # the join other engines run, on DuckDB
    build_golden(by_key, settings.survivorship)
    assert by_customer(by_key, GOLDEN) == by_customer(by_position, GOLDEN)


def test_golden_records_of_no_records_keep_their_column_types():
    """A run whose every row was rejected wrote profiles.sources as NULL[] (the empty list
    of source names has no element type): a warehouse loading tonight's file met a schema
    other than the README's and last night's."""
    engine = load_records(ROWS[:1])
    engine.execute(f"DELETE FROM {RECORDS}")
    build_golden(engine, ProfileConfig().survivorship)
    types = dict(engine.rows(f"SELECT column_name, column_type FROM (DESCRIBE {GOLDEN})"))
    assert (types["sources"], types["source_kinds"]) == ("VARCHAR[]", "VARCHAR[]")
