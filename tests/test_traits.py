"""Traits on a tiny fixture, every expected value worked out by hand (as_of 2025-06-30).

Customers:
  C1  three orders in two currencies, three tickets (one open), web/store/email/chat
  C2  one order of 100 USD                      C3  a CRM contact, nothing else
  C4  two orders of 50 USD, long ago            C6  one order of 40 USD, 272 days ago
  C7  a ticket, no order (status and resolution unknown)
  C8  two social accounts, nothing else         C9  one order without amount or currency
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from cxunify.config import ProfileConfig
from cxunify.errors import UserError
from cxunify.traits import TOUCHPOINTS, TRAITS, build_touchpoints, build_traits, rfm_segment_sql
from tests.conftest import ROOT, write
from tests.profile_fixture import SOURCE_OF_KIND, by_customer, load_records, ts

AS_OF = ts("2025-06-30 00:00")
THANKS = "Thank you, great help!"
BROKEN = "The package arrived broken."


def order(customer: str, when: str, amount: float | None, currency: str | None, **extra):
    return {"customer_id": customer, "kind": "transactions", "created_at": ts(when),
            "amount": amount, "currency": currency, **extra}  # fmt: skip


def ticket(customer: str, when: str, **extra):
    return {"customer_id": customer, "kind": "support", "created_at": ts(when), **extra}


ROWS = [
    order("C1", "2025-01-01 09:00", 10.10, "USD", category="Apparel", channel="web"),
    order("C1", "2025-02-01 09:00", 5.05, "EUR", category="Books", channel="store"),
    order("C1", "2025-03-01 09:00", 20.20, "USD", category="Apparel", channel="web"),
    ticket("C1", "2025-04-01 10:00", resolved_at=ts("2025-04-02 10:00"), status="solved",
           csat=4.0, channel="email", text=THANKS),
    ticket("C1", "2025-05-01 00:00", resolved_at=ts("2025-05-01 06:00"), status="closed",
           csat=2.0, channel="chat", text=BROKEN),
    ticket("C1", "2025-06-10 00:00", status="open", channel="email"),
    order("C2", "2025-06-01 12:00", 100.00, "USD", category="Shoes", channel="web"),
    {"customer_id": "C3", "kind": "crm", "created_at": ts("2024-01-01 00:00")},
    order("C4", "2024-01-01 00:00", 50.00, "USD"),
    order("C4", "2024-02-01 00:00", 50.00, "USD"),
    order("C6", "2024-10-01 00:00", 40.00, "USD"),
    ticket("C7", "2025-06-20 00:00", channel="phone"),
    {"customer_id": "C8", "kind": "social", "platform": "instagram", "handle": "ann_k",
     "followers": 100, "posts": 10, "last_active_at": ts("2025-05-01 00:00")},
    {"customer_id": "C8", "kind": "social", "platform": "x", "handle": "annk",
     "followers": 50, "last_active_at": ts("2025-06-01 00:00")},
    order("C9", "2025-06-29 00:00", None, None),
]  # fmt: skip


def traits(settings: ProfileConfig | None = None) -> dict[str, dict]:
    engine = load_records(ROWS)
    settings = settings or ProfileConfig()
    build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, AS_OF)
    return by_customer(engine, TRAITS)


@pytest.fixture(scope="module")
def t() -> dict[str, dict]:
    return traits()


def test_one_touchpoint_per_record_with_kind_amount_and_scores():
    engine = load_records(ROWS)
    touchpoints, scored = build_touchpoints(engine, ProfileConfig().currency)
    assert touchpoints == len(ROWS) and scored == 2  # the two ticket texts
    kinds = engine.rows(f"SELECT kind, count(*) FROM {TOUCHPOINTS} GROUP BY 1 ORDER BY 1")
    assert kinds == [("contact", 1), ("order", 8), ("post", 2), ("ticket", 4)]
    c1_first = engine.rows(
        f"SELECT ts, channel, amount, currency FROM {TOUCHPOINTS} "
        "WHERE customer_id = 'C1' ORDER BY ts LIMIT 1"
    )
    assert c1_first == [(ts("2025-01-01 09:00"), "web", Decimal("10.10"), "USD")]
    posts = engine.rows(f"SELECT ts, channel FROM {TOUCHPOINTS} WHERE kind = 'post' ORDER BY ts")
    assert posts == [(ts("2025-05-01 00:00"), "instagram"), (ts("2025-06-01 00:00"), "x")]


def test_mixed_currencies_are_never_summed(t):
    c1 = t["C1"]
    assert c1["orders"] == 3
    assert c1["revenue_by_currency"] == {"EUR": Decimal("5.05"), "USD": Decimal("30.30")}
    assert c1["revenue"] is None and c1["currency"] is None and c1["avg_order_value"] is None
    assert c1["top_categories"] == ["Apparel", "Books"]
    assert c1["repeat_purchase"] is True


def test_converted_with_configured_rates():
    settings = ProfileConfig.model_validate({"currency": {"base": "usd", "rates": {"EUR": 1.1}}})
    c1 = traits(settings)["C1"]
    # 30.30 USD + round(5.05 x 1.1 = 5.555) = 5.56 -> 35.86 USD over 3 orders
    assert (c1["revenue"], c1["currency"]) == (Decimal("35.86"), "USD")
    assert c1["avg_order_value"] == Decimal("11.95")
    assert c1["revenue_by_currency"] == {"EUR": Decimal("5.05"), "USD": Decimal("30.30")}


def test_a_missing_rate_is_an_error_naming_the_currencies():
    settings = ProfileConfig.model_validate({"currency": {"base": "GBP"}})
    with pytest.raises(UserError, match=r"no rate into GBP for EUR, USD;"):
        traits(settings)


def test_a_transaction_that_did_not_go_through_is_no_order():
    """A failed payment (Stripe's Failed, 99.00) and a refund counted as orders and revenue,
    and the failed one was the last order: revenue 134.00 of 15.00 paid."""
    rows = [
        order("V", "2025-01-02 00:00", 10.00, "USD", status="paid"),
        order("V", "2025-03-02 00:00", 99.00, "USD", status="failed"),
        order("V", "2025-02-02 00:00", 20.00, "USD", status="refunded"),
        order("V", "2025-02-03 00:00", 5.00, "USD", status="partially_refunded"),
        order("V", "2025-02-04 00:00", 7.00, "USD", status="voided", category="Shoes"),
    ]
    engine = load_records(rows)
    settings = ProfileConfig()
    touchpoints, _ = build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, AS_OF)
    v = by_customer(engine, TRAITS)["V"]
    assert touchpoints == 5  # each still a touchpoint of the customer's journey
    assert (v["orders"], v["revenue"], v["avg_order_value"]) == (
        2,
        Decimal("15.00"),
        Decimal("7.50"),
    )
    assert v["last_order_at"] == ts("2025-02-03 00:00") and v["top_categories"] == []


def test_a_refund_written_as_an_order_of_its_own_nets_revenue_and_is_no_order():
    """A refund row with an id of its own and a negative amount (status Refund, -20.00)
    netted revenue but counted as one more order, a later one, in a category bought: two
    orders of 15.00 average, bought last on the refund's date, a repeat buyer of Shoes. A
    customer with refunds only has no order and no revenue."""
    rows = [
        order("V", "2025-01-02 00:00", 50.00, "USD", status="paid", order_id="A1",
              category="Books"),
        order("V", "2025-02-02 00:00", -20.00, "USD", status="refund", order_id="R1",
              category="Shoes"),
        # a partial refund written on a row of the order itself stays part of the order
        order("W", "2025-01-05 00:00", 30.00, "USD", status="paid", order_id="B1"),
        order("W", "2025-01-06 00:00", -5.00, "USD", status="refund", order_id="B1"),
        order("X", "2025-01-07 00:00", -8.00, "USD", status="refund", order_id="C1"),
    ]  # fmt: skip
    engine = load_records(rows)
    settings = ProfileConfig()
    touchpoints, _ = build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, AS_OF)
    got = by_customer(engine, TRAITS)
    v, w, x = got["V"], got["W"], got["X"]
    assert touchpoints == 5
    assert (v["orders"], v["revenue"], v["avg_order_value"]) == (
        1,
        Decimal("30.00"),
        Decimal("30.00"),
    )
    assert v["last_order_at"] == ts("2025-01-02 00:00") and v["top_categories"] == ["Books"]
    assert v["repeat_purchase"] is False
    assert (w["orders"], w["revenue"]) == (1, Decimal("25.00"))
    assert (x["orders"], x["revenue"], x["rfm_segment"]) == (0, None, None)


@pytest.mark.parametrize(
    ("status", "an_order"),
    [
        ("Payment Failed", False),  # as a payments export writes it: spaces and capitals
        ("charge-failed", False),
        ("Blocked", False),  # Stripe Radar
        ("Denied", False),  # PayPal
        ("expired", False),  # an authorisation never captured
        ("Incomplete", False),
        ("Returned", False),  # given back: these five were orders with their revenue
        ("return", False),
        ("Fully Refunded", False),
        ("Cancelled by customer", False),
        ("order_returned", False),
        ("Partially Refunded", True),
        ("Return requested", True),  # not back yet
        ("pending", True),
        ("authorized", True),
        ("Paid", True),
    ],
)
def test_statuses_of_orders_that_did_not_go_through_read_in_any_spelling(status, an_order):
    # lower case, as the records stage reads every status
    engine = load_records([order("V", "2025-01-02 00:00", 10.00, "USD", status=status.lower())])
    build_touchpoints(engine, ProfileConfig().currency)
    build_traits(engine, ProfileConfig(), AS_OF)
    assert by_customer(engine, TRAITS)["V"]["orders"] == int(an_order)


@pytest.mark.parametrize(
    ("status", "an_order"),
    [
        ("Storniert", False),  # the six languages whose headers are read: these were orders
        ("Rückerstattet", False),
        ("Zurueckerstattet", False),  # ü written ue
        ("Zahlung fehlgeschlagen", False),
        ("Teilweise erstattet", True),
        ("Teilerstattet", True),  # a word of its own, not erstattet: a partial refund
        ("Bezahlt", True),
        ("Annulée", False),
        ("Annulee", False),  # the accent taken off
        ("Annule\u0301e", False),  # the accent a letter of its own (NFD)
        ("Remboursée par le vendeur", False),
        ("Paiement refusé", False),
        ("Échouée", False),
        ("Partiellement remboursé", True),
        ("En attente", True),
        ("Cancelado", False),
        ("Tarjeta rechazada", False),
        ("Reembolsado parcialmente", True),
        ("Vencido", True),  # an invoice overdue, not void
        ("Annullato", False),
        ("Rimborsata", False),
        ("Reso richiesto", True),
        ("Reso parziale", True),
        ("Pagamento fallito", False),
        ("Geannuleerd", False),
        ("Betaling mislukt", False),
        ("Gedeeltelijk terugbetaald", True),
        ("Betaald", True),
        ("Estornado", False),
        ("Pagamento recusado", False),
        ("Devolvido parcialmente", True),
        ("Pago", True),  # Portuguese for paid
    ],
)
def test_statuses_in_other_languages_with_or_without_accents(status, an_order):
    engine = load_records([order("V", "2025-01-02 00:00", 10.00, "USD", status=status.lower())])
    build_touchpoints(engine, ProfileConfig().currency)
    build_traits(engine, ProfileConfig(), AS_OF)
    assert by_customer(engine, TRAITS)["V"]["orders"] == int(an_order)


def test_a_german_export_without_a_config_counts_only_the_order_paid(cli, tmp_path):
    """Its header was read, its statuses were not: the cancelled, refunded and failed orders
    were three more orders and 90.00 of revenue."""
    import duckdb

    (tmp_path / "de.csv").write_text(
        "Bestellnummer;Datum;E-Mail;Betrag;Status\n"
        "1;03.04.2024;a@web.de;10,00;bezahlt\n"
        "2;04.04.2024;a@web.de;20,00;storniert\n"
        "3;05.04.2024;a@web.de;30,00;erstattet\n"
        "4;06.04.2024;a@web.de;40,00;fehlgeschlagen\n"
    )
    out = tmp_path / "out"
    result = cli("unify", "--transactions", tmp_path / "de.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    profile = duckdb.sql(f"SELECT orders, revenue FROM '{out}/profiles.parquet'").fetchall()
    assert profile == [(1, Decimal("10.00"))]


def test_single_order_customer(t):
    c2 = t["C2"]
    assert (c2["orders"], c2["revenue"], c2["currency"]) == (1, Decimal("100.00"), "USD")
    assert c2["avg_order_value"] == Decimal("100.00")
    assert c2["first_order_at"] == c2["last_order_at"] == ts("2025-06-01 12:00")
    assert c2["recency_days"] == 29 and c2["repeat_purchase"] is False


def test_customers_without_transactions(t):
    for customer in ("C3", "C7", "C8"):
        row = t[customer]
        assert row["orders"] == 0 and row["revenue"] is None
        assert row["revenue_by_currency"] == {} and row["top_categories"] == []
        assert row["rfm_r"] is None and row["rfm_segment"] is None
        assert row["lifecycle_stage"] == "prospect"


def test_an_order_without_amount_counts_but_adds_no_revenue(t):
    c9 = t["C9"]
    assert (c9["orders"], c9["revenue"], c9["revenue_by_currency"]) == (1, None, {})
    assert c9["rfm_m"] is None


def test_rfm_scores_and_segments(t):
    # recency 515 (C4), 272 (C6), 121 (C1), 29 (C2), 1 (C9): 1 + floor(5 x worse / 5)
    # orders: C2, C6, C9 tie at 1 (nobody worse: F=1), C4 2 (3 worse: F=4), C1 3 (F=5)
    # revenue in USD: C6 40 (M=1), C2 and C4 tie at 100 (1 worse of 3: M=2); C1 has none
    expected = {
        "C1": (3, 5, None, "Loyal"),  # FM = F = 5 (no comparable revenue)
        "C2": (4, 1, 2, "New"),  # FM = (1 + 2 + 1) // 2 = 2, one order
        "C4": (1, 4, 2, "At risk"),  # FM = (4 + 2 + 1) // 2 = 3
        "C6": (2, 1, 1, "Hibernating"),  # FM = 1
        "C9": (5, 1, None, "New"),  # FM = F = 1
    }
    got = {c: (t[c]["rfm_r"], t[c]["rfm_f"], t[c]["rfm_m"], t[c]["rfm_segment"]) for c in expected}
    assert got == expected


@pytest.mark.parametrize(
    ("r", "fm", "orders", "segment"),
    [
        (5, 5, 9, "Champions"),
        (4, 4, 9, "Champions"),
        (2, 5, 9, "Can't lose"),
        (1, 3, 9, "At risk"),
        (3, 3, 9, "Loyal"),
        (4, 3, 9, "Loyal"),
        (5, 1, 1, "New"),
        (5, 2, 2, "Potential loyalist"),
        (3, 1, 1, "Potential loyalist"),
        (2, 2, 2, "Hibernating"),
        (1, 2, 1, "Lost"),
    ],
)
def test_rfm_segment_map(r: int, fm: int, orders: int, segment: str):
    import duckdb

    sql = f"SELECT {rfm_segment_sql('r', 'fm')} FROM (SELECT $r AS r, $fm AS fm, $o AS orders)"
    assert duckdb.execute(sql, {"r": r, "fm": fm, "o": orders}).fetchall() == [(segment,)]


def test_service_experience(t):
    c1 = t["C1"]
    assert (c1["tickets"], c1["open_tickets"]) == (3, 1)
    assert c1["median_resolution_hours"] == 15.0  # median of 24 h and 6 h
    assert c1["last_resolution_hours"] == 6.0  # the newest resolved ticket
    assert (c1["csat_mean"], c1["csat_last"]) == (3.0, 2.0)
    assert c1["ticket_channels"] == ["chat", "email"]
    assert c1["last_contact_at"] == ts("2025-06-10 00:00")


def test_sentiment_is_vader_compound_mean_and_last(t):
    vader = SentimentIntensityAnalyzer()
    thanks = vader.polarity_scores(THANKS)["compound"]
    broken = vader.polarity_scores(BROKEN)["compound"]
    assert thanks > 0.5 and broken < 0
    c1 = t["C1"]
    assert c1["sentiment_mean"] == pytest.approx((thanks + broken) / 2)
    assert c1["sentiment_last"] == pytest.approx(broken)  # the open ticket has no text
    assert t["C2"]["sentiment_mean"] is None


def test_a_ticket_with_unknown_status_and_no_resolution_is_open(t):
    c7 = t["C7"]
    assert (c7["tickets"], c7["open_tickets"], c7["median_resolution_hours"]) == (1, 1, None)
    assert c7["experience_score"] is None  # no CSAT, no text, no resolution


def test_social_presence(t):
    c8 = t["C8"]
    assert c8["handles_by_platform"] == {"instagram": ["ann_k"], "x": ["annk"]}
    assert (c8["social_accounts"], c8["followers"], c8["posts"]) == (2, 150, 10)
    assert c8["last_social_at"] == ts("2025-06-01 00:00")


def test_preferred_channel_ties_go_to_the_latest(t):
    # C1: web twice (last March), email twice (last June), store and chat once
    assert t["C1"]["preferred_channel"] == "email"
    assert t["C1"]["channels"] == ["chat", "email", "store", "web"]
    assert t["C8"]["preferred_channel"] == "x"  # instagram 1, x 1, x newer
    assert t["C3"]["preferred_channel"] is None and t["C3"]["channels"] == []


def test_lifecycle_stages(t):
    # new: first order <= 90 days ago; active: last <= 180; at_risk: <= 365; else lapsed
    stages = {c: t[c]["lifecycle_stage"] for c in ("C1", "C2", "C4", "C6", "C3")}
    assert stages == {
        "C1": "active",  # first order 180 days ago, last 121
        "C2": "new",
        "C4": "lapsed",  # 515 days
        "C6": "at_risk",  # 272 days
        "C3": "prospect",
    }


def test_lifecycle_thresholds_come_from_config():
    settings = ProfileConfig.model_validate({"lifecycle": {"active_days": 300}})
    assert traits(settings)["C6"]["lifecycle_stage"] == "active"


def test_journey_stages(t):
    stages = {c: t[c]["journey_stage"] for c in ("C1", "C2", "C3", "C4", "C7", "C8")}
    assert stages == {
        "C1": "support",  # an open ticket after the last order
        "C2": "purchase",  # one order, no ticket
        "C3": "research",  # one contact
        "C4": "loyalty",  # came back for a second order
        "C7": "comparison",  # asked support before buying
        "C8": "comparison",  # two touchpoints, no order
    }


def test_experience_score_formula(t):
    c1 = t["C1"]
    vader = SentimentIntensityAnalyzer()
    sentiment = (
        vader.polarity_scores(THANKS)["compound"] + vader.polarity_scores(BROKEN)["compound"]
    ) / 2
    csat_part = (3.0 - 1) / 4
    resolution_part = 1 / (1 + 15 / 24)
    expected = 100 * (0.5 * csat_part + 0.3 * (sentiment + 1) / 2 + 0.2 * resolution_part)
    assert c1["experience_score"] == pytest.approx(round(expected, 1))


def test_loyalty_is_buying_again_after_support():
    rows = [
        order("L1", "2025-01-01 00:00", 10.0, "USD"),
        ticket("L1", "2025-02-01 00:00", resolved_at=ts("2025-02-01 05:00"), status="closed"),
        order("L1", "2025-03-01 00:00", 10.0, "USD"),
        order("S1", "2025-01-01 00:00", 10.0, "USD"),
        order("S1", "2025-02-01 00:00", 10.0, "USD"),
        ticket("S1", "2025-03-01 00:00", resolved_at=ts("2025-03-01 05:00"), status="closed"),
    ]
    engine = load_records(rows)
    settings = ProfileConfig()
    build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, AS_OF)
    stages = {c: row["journey_stage"] for c, row in by_customer(engine, TRAITS).items()}
    assert stages == {"L1": "loyalty", "S1": "support"}


def test_orders_without_dates_have_no_lifecycle_stage():
    engine = load_records([{"customer_id": "D1", "kind": "transactions", "amount": 5.0}])
    settings = ProfileConfig()
    build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, None)
    d1 = by_customer(engine, TRAITS)["D1"]
    assert (d1["orders"], d1["revenue"], d1["currency"]) == (1, Decimal("5.00"), "XXX")
    assert d1["recency_days"] is None and d1["lifecycle_stage"] is None
    assert d1["rfm_r"] is None and d1["rfm_segment"] is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-40, 3000)),
            st.integers(1, 30),
            st.one_of(st.none(), st.decimals(-500, 10**7, places=2, allow_nan=False)),
            st.sampled_from(["USD", "EUR", None]),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_rfm_scores_without_a_global_window_equal_the_ranked_definition(customers):
    """Bucketed counts (what Spark can spread over tasks) give exactly the scores of ranking
    all customers in one window: 1 + floor(5 * (customers strictly worse) / customers)."""
    import duckdb

    from cxunify.traits import _rfm_ctes

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE valued (customer_id VARCHAR, recency_days BIGINT, orders BIGINT, "
        "revenue DECIMAL(38, 2), currency VARCHAR)"
    )
    con.executemany(
        "INSERT INTO valued VALUES (?, ?, ?, ?, ?)",
        [(f"c{i}", *row) for i, row in enumerate(customers)],
    )

    def ranked(value: str, direction: str, partition: str = "") -> str:
        window = f"PARTITION BY {value} IS NULL{partition}"
        return (
            f"CASE WHEN {value} IS NOT NULL THEN 1 + floor(5 * (rank() OVER ({window} ORDER BY "
            f"{value} {direction}) - 1) / count(*) OVER ({window}))::INTEGER END"
        )

    expected = con.execute(
        f"SELECT customer_id, {ranked('recency_days', 'DESC')}, {ranked('orders', 'ASC')}, "
        f"{ranked('revenue', 'ASC', ', currency')} FROM valued ORDER BY customer_id"
    ).fetchall()
    got = con.execute(
        f"WITH {_rfm_ctes('valued')} SELECT v.customer_id, r.rfm_r, f.rfm_f, m.rfm_m "
        "FROM valued v LEFT JOIN rfm_r r USING (customer_id) LEFT JOIN rfm_f f "
        "USING (customer_id) LEFT JOIN rfm_m m USING (customer_id) ORDER BY v.customer_id"
    ).fetchall()
    assert got == expected


# The columns of the one-source exports below, by source kind.
COLUMNS = {
    "support": {"email": "email", "created_at": "created", "csat": "csat"},
    "transactions": {"email": "email", "created_at": "ordered", "amount": "amount",
                     "currency": "currency"},
}  # fmt: skip
ZERO_TO_TEN = "experience: {csat_scale: [0, 10]}"


def unify_one_source(cli, tmp_path: Path, kind: str, csv: str, profile: str = ""):
    """`cxunify unify` as of 2025-06-30 on `csv`, an export of `kind` (ids in column `id`,
    other columns as in COLUMNS) and `profile` (YAML under ``profile:``) if given; returns
    the CLI's result and the output folder. Called again, it replaces the export and config."""
    source = SOURCE_OF_KIND[kind]
    (tmp_path / f"{source}.csv").write_text(csv)
    mapped = ", ".join(f"{field}: {column}" for field, column in COLUMNS[kind].items())
    config = tmp_path / "cfg.yaml"
    config.write_text(
        f"sources:\n  - {{name: {source}, kind: {kind}, path: {source}.csv, id: id,\n"
        f"     columns: {{{mapped}}}}}\n" + (f"profile:\n  {profile}\n" if profile else "")
    )
    out = tmp_path / "out"
    return cli("unify", "--config", config, "--out", out, "-q", "--as-of", "2025-06-30"), out


def test_a_csat_outside_1_to_5_is_not_a_rating(cli, tmp_path):
    """CSAT 0 (unrated in many helpdesks), 6, "4/5" (read as 45) and "80%" made csat_mean 26.4
    and the experience score 351.7, on scales documented as 1-5 and 0-100."""
    import duckdb

    tickets = (
        "id,email,created,csat\n"
        "T1,gina.pratt@gmail.com,2025-06-01T10:00:00Z,2\n"
        "T2,gina.pratt@gmail.com,2025-06-02T10:00:00Z,4\n"
        "T3,gina.pratt@gmail.com,2025-06-03T10:00:00Z,0\n"
        "T4,gina.pratt@gmail.com,2025-06-04T10:00:00Z,6\n"
        "T5,gina.pratt@gmail.com,2025-06-05T10:00:00Z,4/5\n"
        "T6,gina.pratt@gmail.com,2025-06-06T10:00:00Z,80%\n"
    )
    result, out = unify_one_source(cli, tmp_path, "support", tickets)
    assert result.exit_code == 0, result.stderr
    profile = duckdb.sql(
        f"SELECT tickets, csat_mean, csat_last, experience_score FROM '{out}/profiles.parquet'"
    ).fetchall()
    assert profile == [(6, 3.0, 4.0, 50.0)]  # 100 x (3 - 1) / 4
    rated = duckdb.sql(
        f"SELECT source_record_id, csat FROM '{out}/touchpoints.parquet' ORDER BY 1"
    ).fetchall()
    assert rated == [("T1", 2.0), ("T2", 4.0)] + [(f"T{i}", None) for i in range(3, 7)]
    counts = json.loads((out / "run.json").read_text())["counts"]
    assert counts["csat_out_of_scale"] == 4
    # A business asking 0-10 sets the scale: 6 and 0 are ratings then; 45 and 80 are not.
    result, out = unify_one_source(cli, tmp_path, "support", tickets, ZERO_TO_TEN)
    assert result.exit_code == 0, result.stderr
    profile = duckdb.sql(
        f"SELECT csat_mean, csat_last, experience_score FROM '{out}/profiles.parquet'"
    ).fetchall()
    assert profile == [(3.0, 6.0, 30.0)]  # mean of 2, 4, 0, 6; 100 x (3 - 0) / 10
    assert json.loads((out / "run.json").read_text())["counts"]["csat_out_of_scale"] == 2


def test_csat_in_words_is_read_on_the_scale_and_words_not_read_are_told(cli, tmp_path):
    """Freshdesk's Awesome, Neutral and Not Good, and a survey's Very dissatisfied, were no
    rating without a word (csat_mean NULL); a word no survey names (Meh) still is none, but the
    run says so. Placeholders of no answer (Offered, n/a, -, empty) are not counted."""
    import duckdb

    tickets = (
        "id,email,created,csat\n"
        "T1,gina.pratt@gmail.com,2025-06-01T10:00:00Z,Awesome\n"
        "T2,gina.pratt@gmail.com,2025-06-02T10:00:00Z,Neutral\n"
        "T3,gina.pratt@gmail.com,2025-06-03T10:00:00Z,Not Good\n"
        "T4,gina.pratt@gmail.com,2025-06-04T10:00:00Z,Very dissatisfied\n"
        "T5,gina.pratt@gmail.com,2025-06-05T10:00:00Z,Meh\n"
        "T6,gina.pratt@gmail.com,2025-06-06T10:00:00Z,Offered\n"
        "T7,gina.pratt@gmail.com,2025-06-07T10:00:00Z,n/a\n"
        "T8,gina.pratt@gmail.com,2025-06-08T10:00:00Z,-\n"
        "T9,gina.pratt@gmail.com,2025-06-09T10:00:00Z,\n"
        "T10,gina.pratt@gmail.com,2025-06-10T10:00:00Z,Satisfied\n"
    )
    (tmp_path / "tickets.csv").write_text(tickets)
    out = tmp_path / "out"
    # without a config, as the tester ran it: the column is read as csat
    result = cli("unify", "--support", tmp_path / "tickets.csv", "--out", out, "--as-of",
                 "2025-06-30", "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    warning = (
        "source 'tickets': 1 of its 6 csat values are not read as ratings (such as 'Meh') and "
        "left empty (the README's profiles.parquet section says which numbers and words are "
        "ratings)"
    )
    assert result.stderr.splitlines() == [f"Warning: {warning}"]
    run = json.loads((out / "run.json").read_text())
    assert warning in run["warnings"] and run["counts"]["csat_out_of_scale"] == 0
    rated = duckdb.sql(
        f"SELECT source_record_id, csat FROM '{out}/touchpoints.parquet' "
        "WHERE csat IS NOT NULL ORDER BY ts"
    ).fetchall()
    assert rated == [("T1", 5.0), ("T2", 3.0), ("T3", 1.0), ("T4", 1.0), ("T10", 5.0)]
    profile = duckdb.sql(f"SELECT csat_mean, csat_last FROM '{out}/profiles.parquet'").fetchall()
    assert profile == [(3.0, 5.0)]
    # on a scale of 0 to 10, neutral is its middle
    result, out = unify_one_source(cli, tmp_path, "support", tickets, ZERO_TO_TEN)
    assert result.exit_code == 0, result.stderr
    rated = duckdb.sql(
        f"SELECT csat FROM '{out}/touchpoints.parquet' WHERE csat IS NOT NULL ORDER BY ts"
    ).fetchall()
    assert rated == [(10.0,), (5.0,), (0.0,), (0.0,), (10.0,)]


@pytest.mark.parametrize("scale", ["[5, 1]", "[3, 3]", "[1]", "five"])
def test_a_csat_scale_must_be_low_then_high(cli, tmp_path, scale):
    (tmp_path / "t.csv").write_text("id,email\nT1,a@b.com\n")
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "sources:\n  - {name: t, kind: support, path: t.csv, id: id, columns: {email: email}}\n"
        f"profile:\n  experience: {{csat_scale: {scale}}}\n"
    )
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert "profile.experience.csat_scale" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_negative_csat_is_outside_the_scale(cli, tmp_path):
    """A -1 (how some helpdesks write "unrated") was read as a rating of 1: the minus was
    dropped with the other characters that are not digits."""
    import duckdb

    tickets = (
        "id,email,created,csat\n"
        "T1,gina.pratt@gmail.com,2025-06-01T10:00:00Z,5\n"
        "T2,gina.pratt@gmail.com,2025-06-02T10:00:00Z,-1\n"
    )
    result, out = unify_one_source(cli, tmp_path, "support", tickets, ZERO_TO_TEN)
    assert result.exit_code == 0, result.stderr
    profile = duckdb.sql(f"SELECT csat_mean, csat_last FROM '{out}/profiles.parquet'").fetchall()
    assert profile == [(5.0, 5.0)]
    rated = duckdb.sql(
        f"SELECT source_record_id, csat FROM '{out}/touchpoints.parquet' ORDER BY 1"
    ).fetchall()
    assert rated == [("T1", 5.0), ("T2", None)]
    assert json.loads((out / "run.json").read_text())["counts"]["csat_out_of_scale"] == 1


def test_the_currency_beside_an_amount_or_as_a_symbol_is_the_orders_currency(cli, tmp_path):
    """`12.50 EUR` or `EUR 7.50` with an empty currency column, and a column holding `US$`,
    `$` or `€`, went to XXX: euros and dollars were summed in one unknown bucket."""
    import duckdb

    orders = (
        "id,email,ordered,amount,currency\n"
        "O1,gina.pratt@gmail.com,2025-06-01,12.50 EUR,\n"
        "O2,gina.pratt@gmail.com,2025-06-02,EUR 7.50,\n"
        "O3,gina.pratt@gmail.com,2025-06-03,10.00,US$\n"
        "O4,gina.pratt@gmail.com,2025-06-04,5.00,$\n"
        "O5,gina.pratt@gmail.com,2025-06-05,3.00,€\n"
        "O6,gina.pratt@gmail.com,2025-06-06,-2.50 EUR,\n"
        "O7,gina.pratt@gmail.com,2025-06-07,4.00 GBP,USD\n"
    )
    result, out = unify_one_source(cli, tmp_path, "transactions", orders)
    assert (result.exit_code, result.stderr) == (0, "")  # XXX is seen in revenue_by_currency
    [(revenue,)] = duckdb.sql(
        f"SELECT revenue_by_currency FROM '{out}/profiles.parquet'"
    ).fetchall()
    # O7's amount says GBP and its column USD: neither is taken
    assert revenue == {"EUR": Decimal("20.50"), "USD": Decimal("15.00"), "XXX": Decimal("4.00")}
    currencies = duckdb.sql(
        f"SELECT source_record_id, currency FROM '{out}/touchpoints.parquet' ORDER BY 1"
    ).fetchall()
    assert [c for _, c in currencies] == ["EUR", "EUR", "USD", "USD", "EUR", "EUR", "XXX"]
    assert json.loads((out / "run.json").read_text())["counts"]["currency_conflicts"] == 1

    # Converting into a base, an order in two currencies is not taken as the base: it stopped
    # the whole run (one bad order stopped a nightly job); it is left out of what is converted,
    # kept under XXX, and the run says so
    converting = "currency: {base: USD, rates: {EUR: 1.1}}"
    result, out = unify_one_source(cli, tmp_path, "transactions", orders, converting)
    assert result.exit_code == 0, result.stderr
    warning = (
        "1 order whose amount names another currency than its currency column (source "
        "'orders', record 'O7') is left out of the figures converted into USD (revenue, "
        "avg_order_value, rfm_m) and kept under XXX in revenue_by_currency and touchpoints; "
        "correct the export to count them"
    )
    assert result.stderr == f"Warning: {warning}\n"
    manifest = json.loads((out / "run.json").read_text())
    assert (manifest["counts"]["currency_conflicts"], manifest["warnings"]) == (1, [warning])
    converted = duckdb.sql(
        "SELECT revenue, currency, avg_order_value, revenue_by_currency "
        f"FROM '{out}/profiles.parquet'"
    ).fetchall()
    # 15.00 USD + round(20.50 x 1.1) = 22.55, over the 5 orders converted (O6's -2.50 EUR is
    # a refund: it nets the revenue, and is no order)
    assert converted == [
        (Decimal("37.55"), "USD", Decimal("7.51"),
         {"EUR": Decimal("20.50"), "USD": Decimal("15.00"), "XXX": Decimal("4.00")}),
    ]  # fmt: skip
    o7 = f"SELECT amount, currency FROM '{out}/touchpoints.parquet' WHERE source_record_id = 'O7'"
    assert duckdb.sql(o7).fetchall() == [(Decimal("4.00"), "XXX")]
    # ... and the currency beside an amount is converted as its own
    told = orders.replace("4.00 GBP,USD", "4.00,")
    result, out = unify_one_source(cli, tmp_path, "transactions", told, converting)
    assert (result.exit_code, result.stderr) == (0, "")
    converted = duckdb.sql(
        f"SELECT revenue, currency, revenue_by_currency FROM '{out}/profiles.parquet'"
    ).fetchall()
    # 15.00 + 4.00 without a currency, taken as USD, + round(20.50 x 1.1) = 22.55
    assert converted == [
        (Decimal("41.55"), "USD", {"EUR": Decimal("20.50"), "USD": Decimal("19.00")})
    ]
    assert duckdb.sql(o7).fetchall() == [(Decimal("4.00"), "USD")]


def test_a_run_stopped_by_a_gate_still_prints_its_warnings(cli, tmp_path):
    """The output set aside holds what a warning is about, so a run stopped by a gate says it
    too: it printed only the gate."""
    orders = (
        "id,email,ordered,amount,currency\n"
        "O1,gina.pratt@gmail.com,2025-06-01,4.00 GBP,USD\n"
        "O2,gina.pratt@gmail.com,2025-06-02,5.00,USD\n"
    )
    # (the profile's YAML ends a line early: gates is a key of the config, not of profile)
    converting = "currency: {base: USD}\ngates: {max_cluster_size: 1}"
    result, _ = unify_one_source(cli, tmp_path, "transactions", orders, converting)
    assert result.exit_code == 3
    warning, gate = result.stderr.splitlines()
    assert warning.startswith("Warning: 1 order whose amount names another currency")
    assert gate.startswith("Error: quality gate failed: gates.max_cluster_size")


def test_converting_orders_naming_two_currencies_add_to_no_converted_figure():
    """A customer whose orders all name two currencies has no converted revenue (nor its
    currency, average or monetary score); the run goes on, and a missing rate still stops it."""
    from cxunify.profile import currency_conflicts

    rows = [
        order("X1", "2025-06-01 00:00", 10.0, "USD"),
        order("X1", "2025-06-02 00:00", 4.0, "XXX"),
        order("X2", "2025-06-03 00:00", 9.0, "XXX"),
        order("X3", "2025-06-04 00:00", 5.0, "EUR"),
    ]
    settings = ProfileConfig.model_validate({"currency": {"base": "USD", "rates": {"EUR": 2}}})
    engine = load_records(rows)
    build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, AS_OF)
    got = {
        customer: (t["orders"], t["revenue"], t["currency"], t["avg_order_value"], t["rfm_m"])
        for customer, t in by_customer(engine, TRAITS).items()
    }
    assert got == {
        "X1": (2, Decimal("10.00"), "USD", Decimal("10.00"), 1),  # 10.00 over one order
        "X2": (1, None, None, None, None),
        "X3": (1, Decimal("10.00"), "USD", Decimal("10.00"), 1),
    }
    assert currency_conflicts(engine, None) == (2, ())
    [(count, [warning])] = [currency_conflicts(engine, "USD")]
    assert count == 2 and warning.startswith(
        "2 orders whose amounts name other currencies than their currency column (the first: "
        "source 'orders', record 'orders-2') are left out of the figures converted into USD "
    )
    settings = ProfileConfig.model_validate({"currency": {"base": "USD"}})
    with pytest.raises(UserError, match=r"no rate into USD for EUR;"):
        build_traits(engine, settings, AS_OF)


def test_only_resolved_tickets_have_a_resolution_time():
    """A pending or open ticket with a resolved_at (reopened, or a resolution undone) counted
    in median_resolution_hours and last_resolution_hours as if it were resolved."""
    rows = [
        ticket("R1", "2025-06-01 00:00", resolved_at=ts("2025-06-01 06:00"), status="closed"),
        ticket("R1", "2025-06-02 00:00", resolved_at=ts("2025-06-02 10:00")),  # no status
        ticket("R1", "2025-06-03 00:00", resolved_at=ts("2025-06-05 00:00"), status="pending"),
        ticket("R1", "2025-06-04 00:00", resolved_at=ts("2025-06-05 06:00"), status="open"),
    ]
    engine = load_records(rows)
    settings = ProfileConfig()
    build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, AS_OF)
    r1 = by_customer(engine, TRAITS)["R1"]
    assert (r1["tickets"], r1["open_tickets"]) == (4, 2)
    assert r1["median_resolution_hours"] == 8.0  # of 6 h and 10 h, not of 48 h and 30 h too
    assert r1["last_resolution_hours"] == 10.0  # the newest resolved ticket, not the open one
    assert r1["experience_score"] == round(100 / (1 + 8 / 24), 1)


def test_categories_differing_only_in_case_are_one():
    """Beauty and beauty were two of a customer's top categories, each with half its orders."""
    rows = [
        order("B1", "2025-06-01 00:00", 1.0, "USD", category="beauty"),
        order("B1", "2025-06-02 00:00", 1.0, "USD", category="Beauty"),
        order("B1", "2025-06-03 00:00", 1.0, "USD", category="Beauty"),
        order("B1", "2025-06-04 00:00", 1.0, "USD", category="Grocery"),
        order("B1", "2025-06-05 00:00", 1.0, "USD", category="Grocery"),
        order("B1", "2025-06-06 00:00", 1.0, "USD", category="Toys"),
    ]
    engine = load_records(rows)
    settings = ProfileConfig()
    build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, AS_OF)
    # three Beauty orders first, named as two of them are; Toys no longer pushed out
    assert by_customer(engine, TRAITS)["B1"]["top_categories"] == ["Beauty", "Grocery", "Toys"]


def test_done_tickets_are_resolved_and_cancelled_ones_neither_open_nor_resolved():
    """done and completed tickets were open, and a cancelled one was open forever."""
    rows = [
        ticket("D1", "2025-06-01 00:00", resolved_at=ts("2025-06-01 04:00"), status="done"),
        ticket("D1", "2025-06-02 00:00", resolved_at=ts("2025-06-02 08:00"), status="completed"),
        ticket("D1", "2025-06-03 00:00", resolved_at=ts("2025-06-05 00:00"), status="cancelled"),
        ticket("D1", "2025-06-04 00:00", status="open"),
    ]
    engine = load_records(rows)
    settings = ProfileConfig()
    build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, AS_OF)
    d1 = by_customer(engine, TRAITS)["D1"]
    assert (d1["tickets"], d1["open_tickets"]) == (4, 1)
    assert d1["median_resolution_hours"] == 6.0  # of 4 h and 8 h, not the cancelled 48 h


def _order_traits(rows: list[dict]) -> tuple[dict[str, dict], list[tuple]]:
    """Traits per customer, and each order touchpoint's (order_id, amount, currency)."""
    engine = load_records(rows)
    settings = ProfileConfig()
    build_touchpoints(engine, settings.currency)
    build_traits(engine, settings, AS_OF)
    lines = engine.rows(
        f"SELECT order_id, amount, currency FROM {TOUCHPOINTS} WHERE kind = 'order' "
        "ORDER BY record_key"
    )
    return by_customer(engine, TRAITS), lines


def test_rows_sharing_an_order_id_are_one_order():
    """An export of one row per line item (Shopify's orders: the order's fields on its first
    row, the Name #1001 repeated on each line) counted each line as an order: #1001 was three
    orders, the voided #1002's second line an order, the socks of one order two categories'
    worth, and its five web rows made web the preferred channel over three store orders."""
    rows = [
        order("S", "2025-01-10 10:00", 46.34, "USD", order_id="#1001", status="paid",
              category="Tees", channel="web"),
        order("S", "2025-01-10 10:00", None, None, order_id="#1001", category="Socks",
              channel="web"),
        order("S", "2025-01-10 10:00", None, None, order_id="#1001", category="Socks",
              channel="web"),
        order("S", "2025-03-01 10:00", 80.00, "USD", order_id="#1002", status="voided",
              category="Hats", channel="web"),
        order("S", "2025-03-01 10:00", None, None, order_id="#1002", category="Hats",
              channel="web"),
        order("S", "2025-02-01 10:00", 20.00, "USD", order_id="#1003", status="paid",
              category="Tees", channel="store"),
        order("S", "2025-02-05 10:00", 30.00, "USD", channel="store"),  # no order id: its own
        order("S", "2025-01-20 10:00", 10.02, "USD", channel="store"),
    ]  # fmt: skip
    by, lines = _order_traits(rows)
    s = by["S"]
    assert s["touchpoints"] == 8  # every row is still a touchpoint
    assert (s["orders"], s["revenue"], s["avg_order_value"]) == (
        4,
        Decimal("106.36"),
        Decimal("26.59"),
    )
    assert (s["first_order_at"], s["last_order_at"]) == (
        ts("2025-01-10 10:00"),
        ts("2025-02-05 10:00"),  # the voided order is none
    )
    assert s["top_categories"] == ["Tees", "Socks"]  # Tees in two orders, Socks in one
    assert s["preferred_channel"] == "store"  # three store orders, two web ones
    assert s["rfm_f"] == 1 and s["repeat_purchase"] is True
    assert [line[0] for line in lines] == ["#1001"] * 3 + ["#1002"] * 2 + ["#1003", None, None]


def test_an_orders_amount_is_its_total_once_or_its_rows_added_up():
    """A total written on each row of an order counts once; rows of different amounts (line
    amounts, with the currency on the first row only) add up in the order's currency; a
    failed payment retried under the same order is one order, of the payment that went
    through, dated by it."""
    rows = [
        order("T", "2025-01-01 00:00", 50.00, "USD", order_id="A1"),
        order("T", "2025-01-01 00:00", 50.00, "USD", order_id="A1"),
        order("L", "2025-01-01 00:00", 30.00, "EUR", order_id="B1"),
        order("L", "2025-01-01 00:00", 12.50, None, order_id="B1"),
        order("R", "2025-01-01 00:00", 99.00, "USD", order_id="C1", status="failed"),
        order("R", "2025-01-02 00:00", 99.00, "USD", order_id="C1", status="paid"),
    ]
    by, lines = _order_traits(rows)
    assert (by["T"]["orders"], by["T"]["revenue"]) == (1, Decimal("50.00"))
    assert (by["L"]["orders"], by["L"]["revenue"], by["L"]["currency"]) == (
        1,
        Decimal("42.50"),
        "EUR",
    )
    assert lines[3] == ("B1", Decimal("12.50"), "EUR")  # the order's currency, not XXX
    r = by["R"]
    assert (r["orders"], r["revenue"], r["first_order_at"]) == (
        1,
        Decimal("99.00"),
        ts("2025-01-02 00:00"),
    )


# Shopify's orders export, one row per line item: the order's fields on its first row only.
SHOPIFY_LINES = (
    "Name,Email,Financial Status,Currency,Total,Created at,Lineitem name,Id\n"
    "#1001,ann.lee@gmail.com,paid,USD,46.34,2025-01-10 10:00:00 +0100,Tee,5612345678901\n"
    "#1001,ann.lee@gmail.com,,,,2025-01-10 10:00:00 +0100,Socks,\n"
    "#1002,ann.lee@gmail.com,voided,USD,80.00,2025-02-10 10:00:00 +0100,Hat,5612345678902\n"
    "#1002,ann.lee@gmail.com,,,,2025-02-10 10:00:00 +0100,Hat,\n"
    "#1003,ann.lee@gmail.com,paid,USD,20.00,2025-03-10 10:00:00 +0100,Socks,5612345678903\n"
)


def test_an_id_repeated_on_each_line_of_an_order_rejects_the_lines_with_a_warning(cli, tmp_path):
    """A config naming the order number as the id of a line-item export rejected each
    order's further lines as repeated ids, among the other rejects and without a word of
    why; the run now says which rows of which orders, and how to keep them."""
    import duckdb

    (tmp_path / "orders.csv").write_text(SHOPIFY_LINES)
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "sources:\n  - {name: orders, kind: transactions, path: orders.csv, id: Name,\n"
        "     columns: {order_id: Name, email: Email, status: Financial Status, currency: "
        "Currency, amount: Total, created_at: Created at, category: Lineitem name}}\n"
    )
    out = tmp_path / "out"
    result = cli("unify", "--config", config, "--out", out, "-q", "--as-of", "2025-06-30")
    assert result.exit_code == 0, result.stderr
    warning = (
        "source 'orders': 2 rows rejected for their id in 'Name' belong to orders read from "
        "another row (the first: order '#1001'), as an export of one row per line item "
        "writes them; rows sharing an order_id are one order: to keep these rows, leave `id` "
        "out (rows are then named by their order and their place in it: #1001/2) or set it "
        "to a column unique per row"
    )
    assert result.stderr.splitlines() == [f"Warning: {warning}"]
    run = json.loads((out / "run.json").read_text())
    assert run["warnings"] == [warning] and run["counts"]["rows_rejected"] == 2
    reasons = duckdb.sql(f"SELECT reason FROM '{out}/rejects.parquet' ORDER BY 1").fetchall()
    assert reasons == [
        ("duplicate id #1001 (first at row 1) in Name",),
        ("duplicate id #1002 (first at row 3) in Name",),
    ]
    profile = duckdb.sql(f"SELECT orders, revenue FROM '{out}/profiles.parquet'").fetchall()
    assert profile == [(2, Decimal("66.34"))]


def test_every_relative_trait_is_computed_again_for_a_customer_whose_traits_are_copied():
    """An update copies an unchanged customer's traits but for those that move with the as-of
    date or the other customers: a trait added to RELATIVE_TRAITS needs its expression."""
    from cxunify import traits

    assert set(traits._RELATIVE_FROM) == set(traits.RELATIVE_TRAITS)


def test_categories_tied_on_orders_go_by_name_whatever_its_case(cli, tmp_path):
    """Ties were broken by the name as written, so upper case came first: Shoes, garden,
    Apparel and books, one order each, listed Apparel, Shoes, books."""
    import duckdb

    write(
        tmp_path / "orders.csv",
        "order_id,email,order_date,amount,currency,category\n"
        "O1,ann@gmail.com,2025-01-01,10.00,USD,Shoes\n"
        "O2,ann@gmail.com,2025-01-02,10.00,USD,garden\n"
        "O3,ann@gmail.com,2025-01-03,10.00,USD,Apparel\n"
        "O4,ann@gmail.com,2025-01-04,10.00,USD,books\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--transactions", tmp_path / "orders.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    rows = duckdb.sql(f"SELECT orders, top_categories FROM '{out}/profiles.parquet'").fetchall()
    assert rows == [(4, ["Apparel", "books", "garden"])]


def _readme_row(column: str) -> str:
    """The row of `column` in the README's profiles table."""
    readme = (ROOT / "README.md").read_text()
    return next(line for line in readme.splitlines() if line.startswith(f"| {column} |"))


def test_orders_without_a_date_have_no_recency_score_nor_segment(cli, tmp_path):
    """rfm_r and rfm_segment are NULL for a customer whose orders have no date, as the
    README's rows say (they said NULL without orders only); F and M are scored still."""
    import duckdb

    write(
        tmp_path / "orders.csv",
        "order_id,email,order_date,amount,currency\n"
        "O1,ann@gmail.com,2025-01-01,10.00,USD\n"
        "O2,ann@gmail.com,2025-02-01,10.00,USD\n"
        "O3,bob@gmail.com,,30.00,USD\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--transactions", tmp_path / "orders.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    rows = duckdb.sql(
        "SELECT email, orders, recency_days, rfm_r IS NOT NULL, rfm_f IS NOT NULL, "
        "rfm_m IS NOT NULL, rfm_segment IS NOT NULL, lifecycle_stage "
        f"FROM '{out}/profiles.parquet' ORDER BY email"
    ).fetchall()
    assert rows == [
        ("ann@gmail.com", 2, 0, True, True, True, True, "new"),
        ("bob@gmail.com", 1, None, False, True, True, False, None),
    ]
    for column in ("rfm_r", "rfm_segment"):
        assert "when the customer's orders have no date" in _readme_row(column), column


def test_last_seen_at_counts_a_tickets_resolution(cli, tmp_path):
    """A ticket's resolved_at, an agent's action, is among the times last_seen_at takes, so
    it can be later than the customer's latest touchpoint, as the README's row says."""
    import duckdb

    write(
        tmp_path / "tickets.csv",
        "ticket_id,email,created_at,resolved_at,status\n"
        "T1,ann@gmail.com,2025-01-01 09:00,2025-01-05 17:00,solved\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--support", tmp_path / "tickets.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    [(last_seen, last_touch)] = duckdb.sql(
        f"SELECT p.last_seen_at, max(t.ts) FROM '{out}/profiles.parquet' p "
        f"JOIN '{out}/touchpoints.parquet' t USING (customer_id) GROUP BY ALL"
    ).fetchall()
    assert (last_seen, last_touch) == (ts("2025-01-05 17:00"), ts("2025-01-01 09:00"))
    assert "a ticket's `resolved_at`" in _readme_row("last_seen_at")
    assert "later than the customer's latest `touchpoints.ts`" in _readme_row("last_seen_at")
