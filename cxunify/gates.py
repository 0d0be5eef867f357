"""Quality gates: limits a run must respect before its output replaces the previous one.

A nightly run on a bad export (a truncated file, a broken column mapping, a rule change that
glues thousands of people together) should fail loudly rather than publish. Each gate is a
figure of the finished run compared with a limit from the ``gates:`` config section; a failed
gate keeps the previous output, sets the new one aside and exits with code 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cxunify.config import GatesConfig
from cxunify.engine import DuckDBEngine
from cxunify.errors import QualityGateError
from cxunify.identity import IDENTITY, Churn


@dataclass(frozen=True)
class Figures:
    """The figures the gates look at, also reported in run.json under ``quality``."""

    max_cluster_size: int
    reject_rate: float
    linked_share: float
    id_changed_share: float
    customers_merged: int
    removed_share: float
    has_previous: bool
    # An update's reject rate is of tonight's rows (see pipeline.Published.rows_read), and its
    # gate says so: "16.67% of rows" read as of every row the output holds.
    tonight: bool = False

    def as_dict(self) -> dict[str, int | float | bool]:
        return {
            "max_cluster_size": self.max_cluster_size,
            "reject_rate": round(self.reject_rate, 6),
            "linked_share": round(self.linked_share, 6),
            "id_changed_share": round(self.id_changed_share, 6),
            "customers_merged": self.customers_merged,
            "removed_share": round(self.removed_share, 6),
        }


def measure(
    engine: DuckDBEngine,
    rows_in: int,
    rows_rejected: int,
    churn: Churn,
    has_previous: bool,
    tonight: bool = False,
) -> Figures:
    """Figures of the run held in the engine (after identify)."""
    largest, records, linked = engine.rows(
        f"""
        WITH sizes AS (SELECT customer_id, count(*) AS n FROM {IDENTITY} GROUP BY customer_id)
        SELECT coalesce(max(n), 0), coalesce(sum(n), 0), coalesce(sum(n) FILTER (WHERE n > 1), 0)
        FROM sizes
        """
    )[0]
    return Figures(
        max_cluster_size=int(largest),
        reject_rate=rows_rejected / rows_in if rows_in else 0.0,
        linked_share=int(linked) / int(records) if records else 0.0,
        id_changed_share=churn.id_changed_share,
        customers_merged=churn.customers_merged,
        removed_share=churn.removed_share,
        has_previous=has_previous,
        tonight=tonight,
    )


def failures(gates: GatesConfig, figures: Figures) -> list[str]:
    """One line per failed gate, naming the gate, the figure and the limit."""
    failed = []
    if gates.max_cluster_size is not None and figures.max_cluster_size > gates.max_cluster_size:
        failed.append(
            f"gates.max_cluster_size: the largest customer has {figures.max_cluster_size:,} "
            f"records (limit {gates.max_cluster_size:,})"
        )
    if gates.max_reject_rate is not None and figures.reject_rate > gates.max_reject_rate:
        figure, limit = _shares(figures.reject_rate, gates.max_reject_rate)
        rows = "of tonight's rows" if figures.tonight else "of rows"
        failed.append(f"gates.max_reject_rate: {figure} {rows} were rejected (limit {limit})")
    if gates.min_linked_share is not None and figures.linked_share < gates.min_linked_share:
        figure, limit = _shares(figures.linked_share, gates.min_linked_share)
        failed.append(
            f"gates.min_linked_share: {figure} of records are linked to another record "
            f"(minimum {limit})"
        )
    # Churn gates compare with the previous run; a first run has nothing to compare with.
    if figures.has_previous:
        if (
            gates.max_id_changed_share is not None
            and figures.id_changed_share > gates.max_id_changed_share
        ):
            figure, limit = _shares(figures.id_changed_share, gates.max_id_changed_share)
            failed.append(
                f"gates.max_id_changed_share: {figure} of the previous run's customers "
                f"changed id (limit {limit})"
            )
        if (
            gates.max_customers_merged is not None
            and figures.customers_merged > gates.max_customers_merged
        ):
            merged = figures.customers_merged
            were = "customer was" if merged == 1 else "customers were"
            failed.append(
                f"gates.max_customers_merged: {merged:,} {were} merged into others since the "
                f"previous run (limit {gates.max_customers_merged:,})"
            )
        if (
            gates.max_customers_removed_share is not None
            and figures.removed_share > gates.max_customers_removed_share
        ):
            figure, limit = _shares(figures.removed_share, gates.max_customers_removed_share)
            failed.append(
                f"gates.max_customers_removed_share: {figure} of the previous run's customers "
                f"have no record in this run (limit {limit})"
            )
    return failed


def _shares(figure: float, limit: float) -> tuple[str, str]:
    """Both as percentages with as many decimals as it takes to tell them apart (0.05% is
    over a limit of 0.046%, shown as 0.050% and 0.046%, not 0.05% and 0.05%)."""
    for decimals in range(2, 10):
        shown = f"{figure:.{decimals}%}", f"{limit:.{decimals}%}"
        if shown[0] != shown[1]:
            return shown
    return f"{figure:%}", f"{limit:%}"


class GateFailed(QualityGateError):
    """A quality gate failed: the previous output was kept; the new one is in ``aside``."""

    def __init__(
        self,
        failed: list[str],
        aside: str,
        manifest: dict[str, Any] | None = None,
        empty_out: str | None = None,
    ):
        """`empty_out`: the output folder, when it held no output to keep (a first run)."""
        kept = (
            "the previous output was kept"
            if empty_out is None
            else f"there was no output in {empty_out} to keep"
        )
        # A line per failed gate, the last saying where the output is: one failure is one
        # line, as every error is (the second line of its own read as a second error).
        self.problems = [f"quality gate failed: {line}" for line in failed or ["(none named)"]]
        self.problems[-1] += f"; {kept}; this run's output is in {aside} for inspection"
        self.failed = failed
        self.aside = aside
        self.manifest = manifest or {}
        super().__init__("; ".join(self.problems))
