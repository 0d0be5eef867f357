"""Customer-experience traits: touchpoints, value and loyalty, service, social, journey.

Every source row of a customer becomes a *touchpoint* (contact, order, ticket or post) in
``cx_touchpoints``; each family of traits is one SQL builder over it, aggregated per customer:

- ``valued_sql``: orders, revenue (DECIMAL, per currency or converted), dates, categories
- ``value_sql``: those with RFM scores and segment (both tables of their own)
- ``service_sql``: tickets, open tickets, resolution hours, CSAT, sentiment
- ``social_sql``: handles per platform, followers, posts, last activity
- ``channel_sql``: channels used and the preferred one
- ``traits_sql``: joins them and derives lifecycle stage, journey stage and experience score

Everything relative to time uses ``$as_of`` so a run is reproducible. A DOUBLE that is rounded
is written ``round(CAST(x AS DOUBLE), n)``: that is how the Spark engine knows to round it as
DuckDB does (its exact binary value, half away from zero).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cxunify.config import UNKNOWN_CURRENCY, CurrencyConfig, ProfileConfig
from cxunify.engine import DuckDBEngine
from cxunify.errors import UserError
from cxunify.identity import IDENTITY
from cxunify.sentiment import SENTIMENT, score_texts
from cxunify.sql import ident, parquet, table
from cxunify.standardize import RECORDS

TOUCHPOINTS = table("touchpoints")
TRAITS = table("traits")
# Value and loyalty traits, before and with RFM scores, joined into TRAITS (see trait_parts).
VALUED, VALUE = table("trait_valued"), table("trait_value")
RATES = table("currency_rates")

# An amount without a currency that can be told is reported under XXX, the ISO 4217 code for
# "no currency", unless a base currency is configured (then it is taken as base). One whose
# amount and currency column name different currencies is XXX already (see standardize) and
# is never taken as base: converting, it has no rate and is left out of the converted figures.
# Ticket statuses (lower case) of a resolved ticket, and of one that ended unresolved: a
# cancelled ticket is neither open nor a resolution.
CLOSED_STATUSES = ("closed", "solved", "resolved", "done", "completed", "complete")
CANCELLED_STATUSES = ("cancelled", "canceled")
# Statuses (lower case, spaces and hyphens read as underscores: "Payment Failed" is
# payment_failed) of a transaction that did not go through or was given back: a payment that
# failed, was declined, blocked or denied, an authorisation that expired, a checkout abandoned
# or left incomplete, an order cancelled, voided, refunded whole or reversed (Stripe's Failed,
# Blocked, Incomplete and Refunded, PayPal's Denied, Shopify's voided, expired and refunded).
# It stays a touchpoint, but is no order: not in orders, revenue, the average order, order
# dates or RFM. A partial refund stays one, and so does a payment pending or authorised.
VOID_ORDER_STATUSES = (
    "failed", "declined", "refunded", "cancelled", "canceled", "voided", "void", "reversed",
    "rejected", "payment_failed", "charge_failed", "chargeback", "blocked", "denied", "expired",
    "abandoned", "incomplete", "card_declined", "payment_declined", "returned", "return",
)  # fmt: skip
# A status of more words naming one of these is void too (Fully Refunded, Cancelled by
# customer, order_returned), unless it says the thing is partial or not done yet (Partially
# refunded, Return requested).
VOID_ORDER_WORDS = (
    r"(^|_)(cancell?ed|refunded|returned|voided|reversed"
    # The same in the other languages whose headers are read, matched without accents (see
    # STATUS_ACCENTS) and in each gender and number: annulé, annulée, annulees.
    r"|storniert|annulliert|((zur|r)(u|ue)ck)?erstattet|zur(u|ue)ckgegeben|retourniert"
    r"|(zur(u|ue)ck|r(u|ue)ck)gebucht|widerrufen"  # German
    r"|annulee?s?|remboursee?s?|retournee?s?"  # French
    r"|(cancel|anul|reembols)ad[ao]s?|revertid[ao]s?|devuelt[ao]s?"  # Spanish, Portuguese
    r"|devolvid[ao]s?|estornad[ao]s?"  # Portuguese
    r"|(annull|cancell|rimbors|storn)at[aoie]|restituit[aoie]|res[oi]"  # Italian
    r"|geannuleerd|terugbetaald|gecrediteerd|geretourneerd|teruggestuurd|teruggeboekt"
    r"|teruggedraaid|gestorneerd"  # Dutch
    r")(_|$)"
)
UNFINISHED_WORDS = (
    r"(^|_)(partial|partially|part|requested|request|pending|initiated"
    r"|teilweise|teil|angefordert|beantragt|ausstehend|eingeleitet"  # German
    r"|partiel(le)?s?|partiellement|demandee?s?|attente|initiee?s?"  # French (en attente)
    r"|parcial(es)?|parcialmente|solicitad[ao]s?|pendientes?|iniciad[ao]s?"  # Spanish
    r"|parzial[ei]|parzialmente|richiest[aoie]|attesa|sospes[aoie]|avviat[aoie]"  # Italian
    r"|gedeeltelijke?|deels|aangevraagd|verzocht|afwachting|openstaand|geinitieerd"  # Dutch
    r"|parciais|pendentes?"  # Portuguese (parcial, solicitado, iniciado: as in Spanish)
    r")(_|$)"
)
# A status in those languages saying the payment failed, was declined, blocked or denied,
# the authorisation expired or the checkout was abandoned or left incomplete: as with
# VOID_ORDER_STATUSES, the whole status, here alone or after a word for payment or card
# (Zahlung fehlgeschlagen, paiement refusé, tarjeta rechazada, betaling mislukt).
VOID_ORDER_STATUS_PATTERN = (
    r"^((zahlung|karte|paiement|carte|pago|tarjeta|pagamento|carta|cartao|betaling|kaart)_)?("
    r"fehlgeschlagen|gescheitert|abgelehnt|verweigert|gesperrt|blockiert|abgelaufen"
    r"|verfallen|abgebrochen|unvollst(a|ae)ndig"  # German
    r"|echouee?s?|echec|refusee?s?|rejetee?s?|expiree?s?|abandonnee?s?|bloquee?s?"
    r"|incomplete?s?"  # French
    r"|fallid[ao]s?|(rechaz|deneg|caduc)ad[ao]s?"  # Spanish
    r"|(expir|abandon|bloque)ad[ao]s?|incomplet[ao]s?"  # Spanish and Portuguese
    r"|fallit[aoie]|(rifiut|neg|abbandon|blocc)at[aoie]|non_riuscit[aoie]|respint[aoie]"
    r"|scadut[aoie]|incomplet[aoie]"  # Italian
    r"|mislukt|geweigerd|afgewezen|geblokkeerd|verlopen|vervallen|afgebroken|verlaten"
    r"|onvolledig"  # Dutch
    r"|falhad[ao]s?|falhou|falha|malsucedid[ao]s?|(recus|rejeit|neg)ad[ao]s?"  # Portuguese
    r")$|^(echec_(du|de)_paiement|paiement_en_echec|falha_no_pagamento)$"
)
# Status text may come with accents or without (annulée, annulee: an export may have taken
# them off): the words above are written without, and a status is matched with its accents
# taken off, those of the six languages written as one letter, and any written as a letter
# followed by its accent (text decomposed, NFD). DuckDB's strip_accents has no Spark
# equivalent; translate and regexp_replace run alike on both engines.
STATUS_ACCENTS = ("àáâãäåçèéêëìíîïñòóôõöùúûüýÿ", "aaaaaaceeeeiiiinooooouuuuyy")
# Traits that move while a customer's records stay as they were: with the as-of date
# (recency, and the lifecycle stage read from it) and with the other customers (RFM scores
# are ranks among them). `cxunify diff` does not count them as a change of the customer.
RELATIVE_TRAITS = ("recency_days", "lifecycle_stage", "rfm_r", "rfm_f", "rfm_m", "rfm_segment")
# The values of lifecycle_stage and journey_stage, each in its own order (a customer's way
# through them), as the README lists them and the report draws them.
LIFECYCLE_STAGES = ("prospect", "new", "active", "at_risk", "lapsed")
JOURNEY_STAGES = ("research", "comparison", "purchase", "support", "loyalty")
# The values of rfm_segment, best to worst, as the README's profiles table lists them (the
# segment map below takes them in another order: the first rule that matches wins).
RFM_SEGMENTS = (
    "Champions", "Loyal", "Potential loyalist", "New", "At risk", "Can't lose", "Hibernating",
    "Lost",
)  # fmt: skip

# The touchpoints output: the documented columns of ``cx_touchpoints`` in contract order.
TOUCHPOINTS_QUERY = f"""
    SELECT customer_id, ts, source, source_record_id, kind, order_id, channel, amount, currency,
           csat, sentiment
    FROM {TOUCHPOINTS} ORDER BY customer_id, ts NULLS LAST, record_key
"""


def scored_text(text_sql: str) -> str:
    """The text VADER scores for `text_sql`: runs of five digits or more read as ``00000``.

    Order numbers and postcodes make otherwise identical texts distinct. No word of VADER's
    lexicon holds five digits in a row and digits have no case, so the score is unchanged (a test
    checks it on the sample texts) while there are 40% fewer distinct texts to score at 1M rows.
    """
    return f"regexp_replace({text_sql}, '[0-9]{{5,}}', '00000', 'g')"


def status_words(status_sql: str) -> str:
    """`status_sql` (lower case, as the records stage reads a status) as the void-order words
    are matched: accents taken off (see STATUS_ACCENTS), and a run of spaces, hyphens and
    underscores one underscore (Payment Failed, payment-failed: payment_failed)."""
    accented, plain = STATUS_ACCENTS
    folded = (
        f"translate(regexp_replace({status_sql}, '\\p{{Mn}}', '', 'g'), '{accented}', '{plain}')"
    )
    return f"regexp_replace({folded}, '[\\s_-]+', '_', 'g')"


def touchpoints_sql() -> str:
    """One event per record: who, when, where, what kind, and its amount or scores.

    Parameters: ``$unknown_currency`` (currency for amounts without a valid one).
    """
    return f"""
        WITH records AS (
            SELECT * EXCLUDE (currency),
                   CASE WHEN regexp_full_match(currency, '[A-Z]{{3}}') THEN currency END
                       AS currency
            FROM {RECORDS}
        ),
        order_currencies AS (
            -- the one currency an order's rows name, for its rows that name none
            SELECT source, order_id, min(currency) AS currency
            FROM records
            WHERE source_kind = 'transactions' AND order_id IS NOT NULL
            GROUP BY source, order_id
            HAVING min(currency) = max(currency)
        )
        SELECT i.customer_id, r.record_key,
               CASE r.source_kind WHEN 'social' THEN coalesce(r.last_active_at, r.created_at)
                    ELSE coalesce(r.created_at, r.last_active_at) END AS ts,
               r.source, r.source_record_id,
               CASE r.source_kind WHEN 'crm' THEN 'contact' WHEN 'transactions' THEN 'order'
                    WHEN 'support' THEN 'ticket' ELSE 'post' END AS kind,
               CASE WHEN r.source_kind = 'social' THEN coalesce(r.platform, r.channel)
                    ELSE r.channel END AS channel,
               CASE WHEN r.source_kind = 'transactions'
                    THEN TRY_CAST(r.amount AS DECIMAL(18, 2)) END AS amount,
               CASE WHEN r.source_kind = 'transactions' THEN r.order_id END AS order_id,
               -- A row without a currency of its own is in its order's, when the order's
               -- other rows name one (an export of one row per line item may write it once)
               CASE WHEN r.source_kind = 'transactions' AND r.amount IS NOT NULL
                    THEN coalesce(r.currency, o.currency, $unknown_currency) END AS currency,
               -- On the configured scale (1-5 by default) only: a 0 (unrated in many
               -- helpdesks), a 6 or '4/5' (read as 45) is no rating to average
               CASE WHEN r.source_kind <> 'support' THEN NULL
                    -- good, neutral and bad (see cx_rating): the scale's top, middle, bottom
                    WHEN r.csat = CAST('Infinity' AS DOUBLE) THEN CAST($csat_max AS DOUBLE)
                    WHEN r.csat = CAST('-Infinity' AS DOUBLE) THEN CAST($csat_min AS DOUBLE)
                    WHEN isnan(r.csat) THEN (CAST($csat_min AS DOUBLE) + $csat_max) / 2
                    WHEN r.csat >= $csat_min AND r.csat <= $csat_max THEN r.csat END AS csat,
               CASE WHEN r.source_kind IN ('support', 'social')
                    THEN {scored_text("nullif(concat_ws('. ', r.subject, r.text), '')")}
                    END AS scored_text,
               r.category, r.status, r.resolved_at, r.handle, r.platform, r.followers, r.posts
        FROM records r
        JOIN {IDENTITY} i USING (record_key)
        LEFT JOIN order_currencies o
            ON r.source_kind = 'transactions' AND o.source = r.source
               AND o.order_id = r.order_id
    """


def build_touchpoints(
    engine: DuckDBEngine,
    currency: CurrencyConfig,
    known_sentiment: Path | None = None,
    csat_scale: tuple[float, float] = (1, 5),
) -> tuple[int, int]:
    """Create ``cx_touchpoints`` with sentiment, and keep ``cx_sentiment`` (each distinct text's
    score, for the state); return (touchpoints, distinct texts scored). Texts in the
    `known_sentiment` file (an update's stored scores) are not scored again; a CSAT outside
    `csat_scale` is no rating."""
    base = table("touchpoints_base")
    engine.execute(
        f"CREATE OR REPLACE TABLE {base} AS {touchpoints_sql()}",
        {
            "unknown_currency": currency.base or UNKNOWN_CURRENCY,
            "csat_min": csat_scale[0],
            "csat_max": csat_scale[1],
        },
    )
    known_sql = known_params = None
    if known_sentiment is not None:
        known_sql = f"SELECT text, sentiment FROM {parquet('$known')}"
        known_params = {"known": str(known_sentiment)}
    scored = score_texts(engine, f"SELECT scored_text AS text FROM {base}", known_sql, known_params)
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {TOUCHPOINTS} AS
        SELECT b.* EXCLUDE (scored_text), s.sentiment
        FROM {base} b LEFT JOIN {SENTIMENT} s ON s.text = b.scored_text
        """
    )
    engine.drop(base)
    return engine.count(TOUCHPOINTS), scored


# RFM scores: 1 + the share of customers strictly worse, in fifths. Ties share a score, and
# most single-order customers get F = 1 instead of being spread over scores at random as ntile
# does. "Strictly worse" is counted without a window over all customers (Spark runs such a
# window in one task): values fall into buckets by a function that only grows with the value
# (sign and binary magnitude, eighths of a doubling), the customers in worse buckets are summed
# from per-bucket counts, and ranks are taken within each bucket. Any growing bucket function
# gives the same, exact counts; this one keeps buckets few (about 8 per doubling).
RFM_VALUES = {"r": ("recency_days", False, ()), "f": ("orders", True, ()),
              "m": ("revenue", True, ("currency",))}  # fmt: skip


def _rfm_bucket(value: str) -> str:
    magnitude = f"floor(log2(abs(CAST({value} AS DOUBLE)) + 1) * 8)"
    return f"CAST(sign(CAST({value} AS DOUBLE)) * {magnitude} AS BIGINT)"


def _rfm_ctes(source: str) -> str:
    """CTEs ``rfm_<x>(customer_id, rfm_<x>)`` for r, f and m from the customers in `source`."""
    ctes = []
    for name, (value, ascending, partition) in RFM_VALUES.items():
        keys = ["b", *partition]
        listed = ", ".join(keys)

        def same(left: str, right: str, columns: tuple[str, ...] = partition) -> str:
            return "".join(f" AND {left}.{c} IS NOT DISTINCT FROM {right}.{c}" for c in columns)

        totals_by = f" GROUP BY {', '.join(partition)}" if partition else ""
        bucket, extra = _rfm_bucket(value), "".join(", " + c for c in partition)
        order, worse = ("ASC", "<") if ascending else ("DESC", ">")
        ctes.append(
            f"""rfm_{name}_ranked AS (
                SELECT customer_id, {bucket} AS b{extra},
                       rank() OVER (PARTITION BY {bucket}{extra} ORDER BY {value} {order}) - 1
                           AS within
                FROM {source} WHERE {value} IS NOT NULL
            ), rfm_{name}_buckets AS (
                SELECT {listed}, count(*) AS n FROM rfm_{name}_ranked GROUP BY {listed}
            ), rfm_{name}_totals AS (
                SELECT {"".join(c + ", " for c in partition)}sum(n) AS total
                FROM rfm_{name}_buckets{totals_by}
            ), rfm_{name}_before AS (
                SELECT {", ".join("x." + c for c in keys)},
                       coalesce(sum(y.n), 0) AS before, any_value(t.total) AS total
                FROM rfm_{name}_buckets x
                JOIN rfm_{name}_totals t ON true{same("t", "x")}
                LEFT JOIN rfm_{name}_buckets y ON y.b {worse} x.b{same("y", "x")}
                GROUP BY {", ".join("x." + c for c in keys)}
            ), rfm_{name} AS (
                SELECT k.customer_id,
                       1 + floor(5 * (g.before + k.within) / g.total)::INTEGER AS rfm_{name}
                FROM rfm_{name}_ranked k
                JOIN rfm_{name}_before g ON g.b = k.b{same("g", "k")}
            )"""
        )
    return ",\n".join(ctes)


def valued_sql(top_categories: int, convert: bool, touchpoints: str = TOUCHPOINTS) -> str:
    """Per customer with at least one order: orders, revenue, dates and top categories.

    Revenue is exact DECIMAL. Without conversion, ``revenue`` and ``currency`` are set only when
    every order of the customer is in one currency; ``revenue_by_currency`` always holds each
    currency's total. With conversion (``convert``), each currency's total is multiplied by its
    rate in ``cx_currency_rates`` and rounded to cents; XXX, without a rate, adds to neither
    revenue nor the orders averaged. Parameter: ``$as_of``.
    """
    rate = "r.rate" if convert else "NULL::DECIMAL(18, 6)"
    # Converting, the only currency without a rate is XXX (orders whose amount and currency
    # column disagree; build_rates refuses any other): in none of the converted figures.
    converted = (
        "CAST(sum(round(revenue * rate, 2)) AS DECIMAL(38, 2))"
        if convert
        else "CASE WHEN count(*) = 1 THEN CAST(sum(revenue) AS DECIMAL(38, 2)) END"
    )
    money_currency = (
        "CASE WHEN count(rate) > 0 THEN $base END"
        if convert
        else "CASE WHEN count(*) = 1 THEN min(currency) END"
    )
    priced = "sum(priced) FILTER (WHERE rate IS NOT NULL)" if convert else "sum(priced)"
    rates_join = f"LEFT JOIN {RATES} r USING (currency)" if convert else ""
    return f"""
        WITH order_rows AS (
            -- Rows of a transactions source sharing an order_id are one order (an export of
            -- one row per line item); a row without one is an order of its own.
            SELECT *,
                   CASE WHEN status IS NOT NULL
                        THEN list_contains($void_order_statuses, status_words)
                             OR regexp_matches(status_words, $void_order_status_pattern)
                             OR regexp_matches(status_words, $void_order_words)
                                AND NOT regexp_matches(status_words, $unfinished_words)
                        END AS void_row,
                   CASE WHEN order_id IS NULL THEN record_key END AS lone
            FROM (SELECT *, {status_words("status")} AS status_words
                  FROM {touchpoints} WHERE kind = 'order')
        ),
        orders AS (
            -- An order did not go through when a row of it says so and none says otherwise
            -- (its other rows, a line item's, have no status); its date is that of its first
            -- row that went through (a failed payment retried is the retry's).
            SELECT customer_id, source, order_id, lone,
                   min(ts) FILTER (WHERE NOT coalesce(void_row, false)) AS ts
            FROM order_rows
            GROUP BY customer_id, source, order_id, lone
            HAVING NOT coalesce(bool_or(void_row), false) OR coalesce(bool_or(NOT void_row), false)
        ),
        kept_rows AS (
            SELECT r.* FROM order_rows r
            JOIN orders o ON o.customer_id = r.customer_id AND o.source = r.source
                 AND o.order_id IS NOT DISTINCT FROM r.order_id
                 AND o.lone IS NOT DISTINCT FROM r.lone
        ),
        order_amounts AS (
            -- The order's total: written once (Shopify's first row), or on each of its rows
            -- alike, it counts once; rows of different amounts (line amounts, a refund row)
            -- add up.
            SELECT customer_id, source, order_id, lone, currency,
                   CASE WHEN min(amount) = max(amount) THEN min(amount) ELSE sum(amount) END
                       AS amount
            FROM kept_rows
            WHERE amount IS NOT NULL AND NOT coalesce(void_row, false)
            GROUP BY customer_id, source, order_id, lone, currency
        ),
        refunds AS (
            -- An order of amounts below zero only is money given back (a row of its own,
            -- status Refund, -25.00): it nets the revenue, but is no order bought.
            SELECT customer_id, source, order_id, lone FROM order_amounts
            GROUP BY customer_id, source, order_id, lone HAVING max(amount) < 0
        ),
        bought AS (
            SELECT o.* FROM orders o
            LEFT JOIN refunds f ON f.customer_id = o.customer_id AND f.source = o.source
                 AND f.order_id IS NOT DISTINCT FROM o.order_id
                 AND f.lone IS NOT DISTINCT FROM o.lone
            WHERE f.customer_id IS NULL
        ),
        per_currency AS (
            SELECT customer_id, currency, sum(amount) AS revenue,
                   count(amount) FILTER (WHERE amount >= 0) AS priced, {rate} AS rate
            FROM order_amounts o {rates_join}
            GROUP BY customer_id, currency, rate
        ),
        money AS (
            SELECT customer_id,
                   map_from_entries(list({{'k': currency, 'v': CAST(revenue AS DECIMAL(38, 2))}}
                                         ORDER BY currency)) AS revenue_by_currency,
                   {converted} AS revenue,
                   {money_currency} AS currency,
                   {priced} AS priced_orders
            FROM per_currency GROUP BY customer_id
        ),
        category_orders AS (
            -- each category once per order bought naming it, on any of its rows
            SELECT DISTINCT r.customer_id, r.source, r.order_id, r.lone, r.category,
                   lower(r.category) AS folded
            FROM kept_rows r
            JOIN bought b ON b.customer_id = r.customer_id AND b.source = r.source
                 AND b.order_id IS NOT DISTINCT FROM r.order_id
                 AND b.lone IS NOT DISTINCT FROM r.lone
            WHERE r.category IS NOT NULL
        ),
        categories AS (
            -- Beauty and beauty are one category, named as the customer's orders name it most
            -- (ties: the first spelling in sort order); ranked by the orders naming it, ties
            -- by the name whatever its case (books before Shoes), then as written.
            SELECT customer_id,
                   list(category ORDER BY n DESC, lower(category), category)
                       [1:{int(top_categories)}] AS top_categories
            FROM (SELECT s.customer_id, first(s.category ORDER BY s.n DESC, s.category)
                             AS category,
                         any_value(f.n) AS n
                  FROM (SELECT customer_id, folded, category, count(*) AS n
                        FROM category_orders GROUP BY ALL) s
                  JOIN (SELECT customer_id, folded, count(*) AS n
                        FROM (SELECT DISTINCT customer_id, source, order_id, lone, folded
                              FROM category_orders)
                        GROUP BY ALL) f USING (customer_id, folded)
                  GROUP BY s.customer_id, s.folded)
            GROUP BY customer_id
        ),
        per_customer AS (
            SELECT o.customer_id, count(*) AS orders,
                   min(ts) AS first_order_at, max(ts) AS last_order_at
            FROM bought o GROUP BY o.customer_id
        ),
        valued AS (
            SELECT p.*, m.revenue, m.currency, m.revenue_by_currency,
                   CAST(round(CAST(m.revenue / nullif(m.priced_orders, 0) AS DOUBLE), 2)
                        AS DECIMAL(38, 2)) AS avg_order_value,
                   {recency_sql("p.last_order_at")} AS recency_days,
                   p.orders >= 2 AS repeat_purchase,
                   coalesce(c.top_categories, []) AS top_categories
            FROM per_customer p
            LEFT JOIN money m USING (customer_id)
            LEFT JOIN categories c USING (customer_id)
        )
        SELECT * FROM valued
    """


def value_sql() -> str:
    """:func:`valued_sql`'s customers (in ``cx_trait_valued``) with RFM scores and segment."""
    return f"""
        WITH {_rfm_ctes(VALUED)},
        scored AS (
            SELECT v.*, r.rfm_r, f.rfm_f, m.rfm_m
            FROM {VALUED} v
            LEFT JOIN rfm_r r USING (customer_id)
            LEFT JOIN rfm_f f USING (customer_id)
            LEFT JOIN rfm_m m USING (customer_id)
        )
        SELECT *,
               CASE WHEN rfm_r IS NULL THEN NULL
                    ELSE {rfm_segment_sql("rfm_r", "coalesce((rfm_f + rfm_m + 1) // 2, rfm_f)")}
               END AS rfm_segment
        FROM scored
    """


def rfm_segment_sql(r: str, fm: str) -> str:
    """The named RFM segment from recency `r` and frequency-monetary `fm` (both 1–5).

    The first matching row wins; ``orders = 1`` separates New from Potential loyalist.
    """
    return f"""CASE
        WHEN {r} >= 4 AND {fm} >= 4 THEN 'Champions'
        WHEN {r} <= 2 AND {fm} = 5 THEN 'Can''t lose'
        WHEN {r} <= 2 AND {fm} >= 3 THEN 'At risk'
        WHEN {fm} >= 3 THEN 'Loyal'
        WHEN {r} >= 4 AND orders = 1 THEN 'New'
        WHEN {r} >= 3 THEN 'Potential loyalist'
        WHEN {r} = 2 THEN 'Hibernating'
        ELSE 'Lost' END"""


def _exact_mean(column: str) -> str:
    """The mean of a DOUBLE column, added as decimals (to 10 places): exact, so the same
    whatever order an engine or its threads add in (`avg` over doubles can differ in the last
    bit from run to run). CSAT scores and VADER's 4-decimal scores lose nothing."""
    return f"CAST(sum(CAST({column} AS DECIMAL(38, 10))) AS DOUBLE) / nullif(count({column}), 0)"


def service_sql(touchpoints: str = TOUCHPOINTS) -> str:
    """Per customer with a ticket or a scored text: support and sentiment traits.

    A ticket is resolved when its status is one of `CLOSED_STATUSES`, or when it has no
    status and a resolution time; a cancelled one (`CANCELLED_STATUSES`) is neither resolved
    nor open; any other is open. Only resolved tickets have a resolution time: a pending or
    reopened ticket's ``resolved_at`` is a resolution since undone.
    """
    hours = "date_diff('second', ts, resolved_at) / 3600.0"
    latest = "ts DESC NULLS LAST, record_key DESC"
    resolved = (
        "CASE WHEN status IS NULL THEN resolved_at IS NOT NULL "
        "ELSE list_contains($closed_statuses, status) END"
    )
    timed = f"kind = 'ticket' AND resolved_at >= ts AND {resolved}"
    return f"""
        SELECT customer_id,
               count(*) FILTER (WHERE kind = 'ticket') AS tickets,
               count(*) FILTER (WHERE kind = 'ticket' AND NOT ({resolved})
                                AND NOT coalesce(list_contains($cancelled_statuses, status),
                                                 false)) AS open_tickets,
               median({hours}) FILTER (WHERE {timed}) AS median_resolution_hours,
               first({hours} ORDER BY {latest}) FILTER (WHERE {timed}) AS last_resolution_hours,
               {_exact_mean("csat")} AS csat_mean,
               first(csat ORDER BY {latest}) FILTER (WHERE csat IS NOT NULL) AS csat_last,
               coalesce(list(DISTINCT channel ORDER BY channel)
                        FILTER (WHERE kind = 'ticket' AND channel IS NOT NULL), [])
                   AS ticket_channels,
               max(ts) FILTER (WHERE kind = 'ticket') AS last_contact_at,
               {_exact_mean("sentiment")} AS sentiment_mean,
               first(sentiment ORDER BY {latest}) FILTER (WHERE sentiment IS NOT NULL)
                   AS sentiment_last
        FROM {touchpoints}
        WHERE kind = 'ticket' OR sentiment IS NOT NULL
        GROUP BY customer_id
    """


def social_sql(touchpoints: str = TOUCHPOINTS) -> str:
    """Per customer with a social account: handles per platform, reach and activity."""
    return f"""
        SELECT customer_id,
               map_from_entries(list({{'k': platform, 'v': handles}} ORDER BY platform))
                   AS handles_by_platform,
               CAST(sum(accounts) AS BIGINT) AS social_accounts,
               CAST(sum(followers) AS BIGINT) AS followers,
               CAST(sum(posts) AS BIGINT) AS posts,
               max(last_active) AS last_social_at
        FROM (
            SELECT customer_id, coalesce(platform, 'unknown') AS platform,
                   list(DISTINCT handle ORDER BY handle) FILTER (WHERE handle IS NOT NULL)
                       AS handles,
                   count(*) AS accounts, sum(followers) AS followers, sum(posts) AS posts,
                   max(ts) AS last_active
            FROM {touchpoints} WHERE kind = 'post'
            GROUP BY ALL
        )
        GROUP BY customer_id
    """


def channel_sql(touchpoints: str = TOUCHPOINTS) -> str:
    """Per customer: every channel used and the preferred one (most touchpoints, then latest);
    an order written on several rows (sharing an order_id) is one touchpoint of its channel."""
    return f"""
        SELECT customer_id,
               list(channel ORDER BY channel) AS channels,
               first(channel ORDER BY n DESC, last_ts DESC NULLS LAST, channel)
                   AS preferred_channel,
               sum(n) AS channel_touchpoints
        FROM (SELECT customer_id, channel, count(*) AS n, max(ts) AS last_ts
              FROM (SELECT customer_id, channel, ts FROM {touchpoints}
                    WHERE channel IS NOT NULL AND (kind <> 'order' OR order_id IS NULL)
                    UNION ALL
                    SELECT customer_id, channel, max(ts) AS ts FROM {touchpoints}
                    WHERE channel IS NOT NULL AND kind = 'order' AND order_id IS NOT NULL
                    GROUP BY customer_id, source, order_id, channel)
              GROUP BY ALL)
        GROUP BY customer_id
    """


def trait_parts(
    settings: ProfileConfig, convert: bool, touchpoints: str = TOUCHPOINTS
) -> list[tuple[str, str]]:
    """The tables :func:`traits_sql` joins, in the order they are built: (table, query).

    Value traits, then their RFM scores, are statements of their own. As CTEs of the traits
    statement, Spark inlined RFM's CTEs at each of their two or three uses and planned them
    together: 32 s for the traits of 120 people, now 12 s. Service, social and channel stay
    CTEs: as tables of their own DuckDB took 5.2 s instead of 3.0 s for the traits of 277k
    customers (the social aggregate alone 2.4 s), as CTEs 3.2 to 3.6 s."""
    return [
        (VALUED, valued_sql(settings.top_categories, convert, touchpoints)),
        (VALUE, value_sql()),
    ]


def traits_sql(touchpoints: str = TOUCHPOINTS) -> str:
    """Every trait per customer of `touchpoints`, with lifecycle stage, journey stage and
    experience score, from the tables of :func:`trait_parts`. Parameters: ``$as_of`` and those
    of :func:`trait_params` it names."""
    return f"""
        WITH everyone AS (
            SELECT customer_id, count(*) AS touchpoints FROM {touchpoints} GROUP BY customer_id
        ),
        service AS ({service_sql(touchpoints)}),
        social AS ({social_sql(touchpoints)}),
        channel AS ({channel_sql(touchpoints)}),
        joined AS (
            SELECT e.customer_id, e.touchpoints,
                   coalesce(v.orders, 0) AS orders, v.revenue, v.currency,
                   coalesce(v.revenue_by_currency, MAP()) AS revenue_by_currency,
                   v.avg_order_value, v.first_order_at, v.last_order_at, v.recency_days,
                   coalesce(v.repeat_purchase, false) AS repeat_purchase,
                   v.rfm_r, v.rfm_f, v.rfm_m, v.rfm_segment,
                   coalesce(v.top_categories, []) AS top_categories,
                   coalesce(s.tickets, 0) AS tickets, coalesce(s.open_tickets, 0) AS open_tickets,
                   s.median_resolution_hours, s.last_resolution_hours, s.csat_mean, s.csat_last,
                   coalesce(s.ticket_channels, []) AS ticket_channels, s.last_contact_at,
                   s.sentiment_mean, s.sentiment_last,
                   coalesce(so.handles_by_platform, MAP()) AS handles_by_platform,
                   coalesce(so.social_accounts, 0) AS social_accounts,
                   so.followers, so.posts, so.last_social_at,
                   coalesce(c.channels, []) AS channels, c.preferred_channel
            FROM everyone e
            LEFT JOIN {VALUE} v USING (customer_id)
            LEFT JOIN service s USING (customer_id)
            LEFT JOIN social so USING (customer_id)
            LEFT JOIN channel c USING (customer_id)
        ),
        experience AS (
            SELECT *,
                   (csat_mean - $csat_min) / ($csat_max - $csat_min) AS csat_part,
                   (sentiment_mean + 1) / 2 AS sentiment_part,
                   1 / (1 + median_resolution_hours / $resolution_target_hours)
                       AS resolution_part
            FROM joined
        )
        SELECT * EXCLUDE (csat_part, sentiment_part, resolution_part),
               {lifecycle_sql()} AS lifecycle_stage,
               CASE WHEN orders = 0 AND tickets = 0 AND touchpoints < $comparison_touchpoints
                        THEN 'research'
                    WHEN orders = 0 THEN 'comparison'
                    WHEN open_tickets > 0 OR last_contact_at >= last_order_at THEN 'support'
                    WHEN orders >= $loyalty_orders THEN 'loyalty'
                    ELSE 'purchase' END AS journey_stage,
               round(CAST(100 * (
                   coalesce($csat_weight * csat_part, 0)
                   + coalesce($sentiment_weight * sentiment_part, 0)
                   + coalesce($resolution_weight * resolution_part, 0)
               ) / nullif(
                   CASE WHEN csat_part IS NOT NULL THEN $csat_weight ELSE 0 END
                   + CASE WHEN sentiment_part IS NOT NULL THEN $sentiment_weight ELSE 0 END
                   + CASE WHEN resolution_part IS NOT NULL THEN $resolution_weight ELSE 0 END,
                   0) AS DOUBLE), 1) AS experience_score
        FROM experience
    """


def recency_sql(last_order_at: str) -> str:
    """Days from the last order to the as-of date (``$as_of``)."""
    return f"date_diff('day', {last_order_at}, $as_of::TIMESTAMP)"


def lifecycle_sql(
    orders: str = "orders",
    first: str = "first_order_at",
    last: str = "last_order_at",
    recency: str = "recency_days",
) -> str:
    """The lifecycle stage from a customer's orders, first and last order and recency.
    Parameters: ``$as_of``, ``$new_days``, ``$active_days``, ``$lapsed_days``."""
    return f"""CASE WHEN {orders} = 0 THEN 'prospect'
                    -- orders without dates (or data without any): no stage can be told
                    WHEN {last} IS NULL OR $as_of IS NULL THEN NULL
                    WHEN date_diff('day', {first}, $as_of::TIMESTAMP) <= $new_days THEN 'new'
                    WHEN {recency} <= $active_days THEN 'active'
                    WHEN {recency} <= $lapsed_days THEN 'at_risk'
                    ELSE 'lapsed' END"""


def trait_params(settings: ProfileConfig, as_of: datetime | None) -> dict[str, object]:
    """The parameters of :func:`traits_sql`."""
    lifecycle, journey, experience = settings.lifecycle, settings.journey, settings.experience
    return {
        "as_of": as_of,
        "closed_statuses": list(CLOSED_STATUSES),
        "cancelled_statuses": list(CANCELLED_STATUSES),
        "void_order_statuses": list(VOID_ORDER_STATUSES),
        "void_order_words": VOID_ORDER_WORDS,
        "void_order_status_pattern": VOID_ORDER_STATUS_PATTERN,
        "unfinished_words": UNFINISHED_WORDS,
        "new_days": lifecycle.new_days,
        "active_days": lifecycle.active_days,
        "lapsed_days": lifecycle.lapsed_days,
        "loyalty_orders": journey.loyalty_orders,
        "comparison_touchpoints": journey.comparison_touchpoints,
        "csat_weight": experience.csat_weight,
        "csat_min": experience.csat_scale[0],
        "csat_max": experience.csat_scale[1],
        "sentiment_weight": experience.sentiment_weight,
        "resolution_weight": experience.resolution_weight,
        "resolution_target_hours": experience.resolution_target_hours,
        **({"base": settings.currency.base} if settings.currency.base else {}),
    }


def build_rates(engine: DuckDBEngine, currency: CurrencyConfig) -> None:
    """Create ``cx_currency_rates`` for conversion into the base, or refuse a missing rate.

    XXX needs none: its orders (amount and currency column naming two currencies) are left
    out of the converted figures, and the run says so (see profile)."""
    assert currency.base is not None
    rates = {**currency.rates, currency.base: 1.0}
    missing = [
        code
        for (code,) in engine.rows(
            f"SELECT DISTINCT currency FROM {TOUCHPOINTS} WHERE kind = 'order' "
            "AND currency IS NOT NULL AND currency <> $unknown "
            "AND NOT list_contains($codes, currency) ORDER BY 1",
            {"codes": list(rates), "unknown": UNKNOWN_CURRENCY},
        )
    ]
    if missing:
        raise UserError(
            f"profile.currency.rates: no rate into {currency.base} for {', '.join(missing)}; "
            "add one per currency, or remove profile.currency.base to report revenue per currency"
        )
    engine.execute(
        f"CREATE OR REPLACE TABLE {RATES} AS SELECT unnest($codes) AS currency, "
        "CAST(unnest($rates) AS DECIMAL(18, 6)) AS rate",
        {"codes": list(rates), "rates": list(rates.values())},
    )


@dataclass(frozen=True)
class Copied:
    """An update's customers whose traits are those of their previous profile, but for the
    RELATIVE_TRAITS, which move with the as-of date and with the other customers.

    `customers` is a table of their customer_id: customers whose records are the stored ones,
    unchanged, and were all theirs before, none of whose orders gained or lost a row (an
    order's rows share its currency, see `touchpoints_sql`). Every other trait is read from
    their touchpoints alone, with the settings and code the update checked were the previous
    run's. `profiles` is the previous run's profiles.parquet."""

    customers: str
    profiles: Path


# The RELATIVE_TRAITS of a customer whose other traits are copied: RFM scores and recency
# from this run's value traits (``v``), the lifecycle stage from them and the copied ones
# (``p``).
_RELATIVE_FROM = {
    "recency_days": "v.recency_days",
    "lifecycle_stage": lifecycle_sql("p.orders", "p.first_order_at", "p.last_order_at",
                                     "v.recency_days"),
    **{name: f"v.{name}" for name in ("rfm_r", "rfm_f", "rfm_m", "rfm_segment")},
}  # fmt: skip
CHANGED_TOUCHPOINTS = table("touchpoints_changed")


def build_traits(
    engine: DuckDBEngine,
    settings: ProfileConfig,
    as_of: datetime | None,
    copied: Copied | None = None,
) -> int:
    """Create ``cx_traits`` (one row per customer with a touchpoint); return its row count.

    With `copied` (an update), only the other customers' traits are computed from their
    touchpoints: at 1M records, 3.1 of an update's 30 s went on every customer's."""
    convert = settings.currency.base is not None
    if convert:
        build_rates(engine, settings.currency)
    params = trait_params(settings, as_of)
    touchpoints = TOUCHPOINTS
    if copied is not None:
        touchpoints = CHANGED_TOUCHPOINTS
        engine.execute(
            f"CREATE OR REPLACE TABLE {touchpoints} AS SELECT * FROM {TOUCHPOINTS} "
            f"ANTI JOIN {copied.customers} USING (customer_id)"
        )
    parts = trait_parts(settings, convert, touchpoints)
    for name, query in [*parts, (TRAITS, traits_sql(touchpoints))]:
        engine.execute(f"CREATE OR REPLACE TABLE {name} AS {query}", _named_in(query, params))
        if copied is not None and name == VALUED:  # before RFM ranks them among everyone
            _copy_traits(engine, VALUED, copied, params)
    if copied is not None:
        _copy_traits(engine, TRAITS, copied, params)
        engine.drop(touchpoints)
    engine.drop(RATES, *(name for name, _ in parts))
    return engine.count(TRAITS)


def _copy_traits(
    engine: DuckDBEngine, into: str, copied: Copied, params: dict[str, object]
) -> None:
    """Add the `copied` customers to `into` (the value traits or all of them): their previous
    values, and the relative ones from this run's (see _RELATIVE_FROM). A customer had value
    traits if it had an order, and traits at all if it had a touchpoint."""
    relative = (
        {"recency_days": recency_sql("p.last_order_at")} if into == VALUED else _RELATIVE_FROM
    )
    columns = [
        f"{relative[c]} AS {ident(c)}" if c in relative else f"p.{ident(c)}"
        for c in engine.columns(into)
    ]
    value = f"LEFT JOIN {VALUE} v USING (customer_id)" if into == TRAITS else ""
    had = "p.orders > 0" if into == VALUED else "p.touchpoints IS NOT NULL"
    sql = (
        f"INSERT INTO {into} BY NAME SELECT {', '.join(columns)} "
        f"FROM {parquet('$profiles')} p SEMI JOIN {copied.customers} USING (customer_id) "
        f"{value} WHERE {had}"
    )
    engine.execute(sql, {**_named_in(sql, params), "profiles": str(copied.profiles)})


def _named_in(sql: str, params: dict[str, object]) -> dict[str, object]:
    """The parameters `sql` names (DuckDB refuses one a statement does not name)."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}
