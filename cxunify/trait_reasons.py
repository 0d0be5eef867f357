"""Why a customer has its stages, segment and score: the rule of README's that gave each, with
the customer's own figures and the run's settings (run.json ``profile``, ``as_of``).

The rules are those of ``traits.py`` (lifecycle_sql, the journey stage, rfm_segment_sql, the
experience score), told in words from a profile row. A test holds the two to the same answer
for every customer of the sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cxunify.config import ProfileConfig


@dataclass(frozen=True)
class TraitReason:
    """One trait's value and the rule that gave it, in words."""

    trait: str
    value: Any
    why: str


def recorded_settings(settings: ProfileConfig) -> dict[str, Any]:
    """What run.json records under ``profile``: the settings the stages and score follow."""
    return settings.model_dump(mode="json", include={"lifecycle", "journey", "experience"})


def trait_reasons(
    profile: dict[str, Any], settings: dict[str, Any] | None, as_of: str | None
) -> list[TraitReason]:
    """The lifecycle stage, journey stage, RFM segment and experience score of a profile row,
    each with why. `settings` is run.json's ``profile`` (None for an output of a version that
    did not record it: the thresholds of the defaults are not assumed)."""
    if settings is None:
        unrecorded = "this output's run.json does not record the settings it was set with"
        return [
            TraitReason(name, profile.get(name), unrecorded)
            for name in ("lifecycle_stage", "journey_stage", "rfm_segment", "experience_score")
        ]
    when = datetime.fromisoformat(as_of) if as_of else None
    return [
        TraitReason("lifecycle_stage", *_lifecycle(profile, settings["lifecycle"], when)),
        TraitReason("journey_stage", *_journey(profile, settings["journey"])),
        TraitReason("rfm_segment", *_segment(profile)),
        TraitReason("experience_score", *_experience(profile, settings["experience"])),
    ]


def _days(n: int) -> str:
    return f"{n} day" if abs(n) == 1 else f"{n} days"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _lifecycle(row: dict[str, Any], s: dict[str, Any], as_of: datetime | None) -> tuple:
    orders, first, recency = row["orders"], row["first_order_at"], row["recency_days"]
    if not orders:
        return "prospect", "no orders"
    if row["last_order_at"] is None or as_of is None:
        return None, "no stage: the orders have no dates"
    # date_diff('day', ...): midnights between the two, as recency_days counts them
    since_first = (as_of.date() - first.date()).days
    on = f"as_of {as_of.date().isoformat()}"
    if since_first <= s["new_days"]:
        within = f"within new_days ({s['new_days']})"
        return "new", f"first order {_days(since_first)} before {on}, {within}"
    first_said = f"first order {_days(since_first)} before, beyond new_days ({s['new_days']})"
    last = f"last order {_days(recency)} before {on}"
    if recency <= s["active_days"]:
        return "active", f"{last}, within active_days ({s['active_days']}); {first_said}"
    if recency <= s["lapsed_days"]:
        return "at_risk", (
            f"{last}: beyond active_days ({s['active_days']}), "
            f"within lapsed_days ({s['lapsed_days']})"
        )
    return "lapsed", f"{last}: beyond lapsed_days ({s['lapsed_days']})"


def _journey(row: dict[str, Any], s: dict[str, Any]) -> tuple:
    orders, tickets, touchpoints = row["orders"], row["tickets"], row["touchpoints"]
    enough = s["comparison_touchpoints"]
    if orders == 0 and tickets == 0 and touchpoints < enough:
        return "research", (
            f"no order, no ticket, {_count(touchpoints, 'touchpoint')} "
            f"(fewer than comparison_touchpoints, {enough})"
        )
    if orders == 0:
        shown = (
            _count(tickets, "ticket")
            if tickets
            else f"{_count(touchpoints, 'touchpoint')} (comparison_touchpoints: {enough})"
        )
        return "comparison", f"no order yet, but {shown}"
    contact, last_order = row["last_contact_at"], row["last_order_at"]
    if row["open_tickets"] > 0:
        return "support", f"has ordered, and has {_count(row['open_tickets'], 'open ticket')}"
    if contact is not None and last_order is not None and contact >= last_order:
        return "support", (
            f"has ordered, and opened a ticket ({contact:%Y-%m-%d %H:%M}) "
            f"at or after the last order ({last_order:%Y-%m-%d %H:%M})"
        )
    since = "no ticket" if contact is None else "no ticket since the last order"
    if orders >= s["loyalty_orders"]:
        return "loyalty", f"{orders} orders (loyalty_orders: {s['loyalty_orders']}), {since}"
    return "purchase", (
        f"{_count(orders, 'order')} (fewer than loyalty_orders, {s['loyalty_orders']}), {since}"
    )


# rfm_segment_sql's rows, first match wins: (segment, rule in words, test on r, fm, orders).
_SEGMENTS = (
    ("Champions", "R ≥ 4 and FM ≥ 4", lambda r, fm, n: r >= 4 and fm >= 4),
    ("Can't lose", "R ≤ 2 and FM = 5", lambda r, fm, n: r <= 2 and fm == 5),
    ("At risk", "R ≤ 2 and FM ≥ 3", lambda r, fm, n: r <= 2 and fm >= 3),
    ("Loyal", "FM ≥ 3", lambda r, fm, n: fm >= 3),
    ("New", "R ≥ 4 and one order", lambda r, fm, n: r >= 4 and n == 1),
    ("Potential loyalist", "R ≥ 3", lambda r, fm, n: r >= 3),
    ("Hibernating", "R = 2", lambda r, fm, n: r == 2),
    ("Lost", "R = 1", lambda r, fm, n: True),
)


def _segment(row: dict[str, Any]) -> tuple:
    r, f, m = row["rfm_r"], row["rfm_f"], row["rfm_m"]
    if not row["orders"]:
        return None, "no orders"
    if r is None:
        return None, "no segment: the orders have no dates, so recency cannot be ranked"
    fm = f if m is None else math.ceil((f + m) / 2)
    money = (
        "M none (no revenue in one currency), FM = F"
        if m is None
        else f"M {m} (revenue {row['revenue']} {row['currency']}), FM = ⌈(F + M) / 2⌉"
    )
    figures = (
        f"R {r} (last order {_days(row['recency_days'])} before as_of), "
        f"F {f} ({_count(row['orders'], 'order')}), {money} = {fm}"
    )
    earlier: list[str] = []
    for segment, rule, holds in _SEGMENTS:
        if holds(r, fm, row["orders"]):
            skipped = f"; not {', '.join(earlier)}" if earlier else ""
            return segment, f"{figures}: {rule}{skipped} (scores 1-5, among customers with orders)"
        earlier.append(segment)
    raise AssertionError("the last segment takes every customer")


def _experience(row: dict[str, Any], s: dict[str, Any]) -> tuple:
    low, high = s["csat_scale"]
    parts = []
    csat, sentiment, hours = row["csat_mean"], row["sentiment_mean"], row["median_resolution_hours"]
    if csat is not None:
        parts.append(
            ("CSAT", f"mean {csat:g} on {low:g}-{high:g}", (csat - low) / (high - low),
             s["csat_weight"])
        )  # fmt: skip
    if sentiment is not None:
        parts.append(("sentiment", f"mean {sentiment:.3f}", (sentiment + 1) / 2,
                      s["sentiment_weight"]))  # fmt: skip
    if hours is not None:
        target = s["resolution_target_hours"]
        parts.append(
            ("resolution", f"median {hours:.1f} h, target {target:g} h", 1 / (1 + hours / target),
             s["resolution_weight"])
        )  # fmt: skip
    total = sum(weight for *_, weight in parts)
    if total == 0:  # no part present, or only parts weighted 0
        return None, "no rated ticket, no text and no resolved ticket"
    score = round(100 * sum(part * weight for _, _, part, weight in parts) / total, 1)
    said = "; ".join(
        f"{name} {shown}: {part:.2f} × {weight:g}" for name, shown, part, weight in parts
    )
    return score, f"100 × ({said}) / {total:g} (the weights of the parts present)"
