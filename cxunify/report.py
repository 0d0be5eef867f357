"""An HTML report of one output folder: what came in, how it was matched, who the customers are.

One self-contained file: plotly.js is inlined once and each chart is a Plotly figure drawn
from numbers aggregated in DuckDB (histograms are binned in SQL, so no pair table reaches
Python). It opens without a network connection, so it can be mailed or attached to a ticket.
"""

from __future__ import annotations

import html
import math
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from cxunify.errors import OutputError, public
from cxunify.output import (
    RECORD_FIELDS,
    read_manifest,
    refuse_file_as_folder,
    refuse_output_file,
    replacing,
    require_folder,
)
from cxunify.sql import ident, parquet
from cxunify.traits import JOURNEY_STAGES, LIFECYCLE_STAGES, RFM_SEGMENTS

REPORT = "report.html"
NEEDED = ("profiles.parquet", "identity_map.parquet", "records.parquet", "links.parquet")

# Profile traits written by the profile stage; their charts are left out (with a note) when an
# output folder predates them.
TRAIT_COLUMNS = ("rfm_segment", "lifecycle_stage", "journey_stage", "csat_mean", "sentiment_mean")

TEMPLATE = "plotly_white"
MARGIN = {"t": 30, "b": 40}
# A chart of subplots has their titles above them: room for those below Plotly's toolbar,
# which it shows at the chart's top right (over "journey stage").
TITLED_MARGIN = {**MARGIN, "t": 70}


@dataclass
class ReportSummary:
    """What ``build_report`` wrote: the file, its charts, what it left out and why."""

    path: Path
    charts: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "charts": self.charts,
            "skipped": self.skipped,
            "bytes": self.bytes,
            "seconds": self.seconds,
        }


@dataclass
class _Chart:
    key: str
    title: str
    caption: str
    figure: go.Figure


class _Unavailable(Exception):
    """A chart whose data this output folder does not have; the report says why."""


@public("out_dir", "path")
def build_report(out_dir: Path, path: Path | None = None) -> ReportSummary:
    """Write ``report.html`` (or `path`) for the output folder `out_dir`; return a summary.

    Example::

        summary = build_report(Path("out"))
        print(summary.path, len(summary.charts), summary.bytes)
    """
    began = time.perf_counter()
    require_folder(out_dir)
    for name in NEEDED:
        if not (out_dir / name).is_file():
            raise OutputError(f"{out_dir}: no {name}; run cxunify unify (this version) first")
    manifest = read_manifest(out_dir)
    path = path or out_dir / REPORT
    refuse_output_file(path, "--to", out_dir, example=REPORT)
    refuse_file_as_folder(path)  # before the charts: they take seconds
    con = duckdb.connect()
    charts: list[_Chart] = []
    skipped: dict[str, str] = {}
    try:
        for key, builder in CHARTS.items():
            try:
                chart = builder(con, out_dir, manifest)
            except _Unavailable as reason:
                skipped[key] = str(reason)
                continue
            # A trace's name in its hover label was cut to 15 characters: 'refused by a...',
            # 'u (different p...'.
            chart.figure.update_layout(hoverlabel={"namelength": -1})
            charts.append(chart)
    finally:
        con.close()
    document = _page(out_dir, manifest, charts, skipped)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replacing(path) as partial:
            partial.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the report: {exc.strerror}") from None
    return ReportSummary(
        path=path,
        charts=[c.key for c in charts],
        skipped=skipped,
        bytes=path.stat().st_size,
        seconds=round(time.perf_counter() - began, 3),
    )


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def _bar(x: list[Any], y: list[Any], **layout: Any) -> go.Figure:
    figure = go.Figure(go.Bar(x=x, y=y, text=y, textposition="auto"))
    figure.update_layout(template=TEMPLATE, margin=MARGIN, **layout)
    return figure


# --- the charts, each from the output folder alone ---------------------------------------------


def _records_per_source(con, out_dir: Path, manifest: dict) -> _Chart:
    rows = _rows(
        con,
        f"SELECT source, count(*) FROM {parquet('$p')} GROUP BY ALL ORDER BY 2 DESC, 1",
        {"p": str(out_dir / "identity_map.parquet")},
    )
    # Source names are the user's (a file's name, without a config): Plotly reads tags and
    # entities in a label, so a name '<a href=...>crm</a>' drew a link. Each is escaped.
    figure = _bar([_plotly_text(r[0]) for r in rows], [r[1] for r in rows], yaxis_title="records")
    return _Chart("records_per_source", "Records per source", "Rows mapped per source.", figure)


def _source_overlap(con, out_dir: Path, manifest: dict) -> _Chart:
    rows = _rows(
        con,
        "SELECT array_to_string(sources, ' + ') AS combination, count(*) AS customers "
        f"FROM {parquet('$p')} GROUP BY ALL ORDER BY customers DESC, combination LIMIT 20",
        {"p": str(out_dir / "profiles.parquet")},
    )
    figure = go.Figure(
        go.Bar(x=[r[1] for r in rows], y=[_plotly_text(r[0]) for r in rows], orientation="h")
    )
    figure.update_layout(
        template=TEMPLATE,
        margin=MARGIN,
        xaxis_title="customers",
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return _Chart(
        "source_overlap",
        "How sources overlap per customer",
        "Customers by the combination of sources they appear in (the 20 most common).",
        figure,
    )


def _threshold_weight(manifest: dict) -> float | None:
    threshold = manifest.get("matching", {}).get("threshold")
    if threshold is None or not 0 < threshold < 1:
        return None
    return math.log2(threshold / (1 - threshold))


def _match_weights(con, out_dir: Path, manifest: dict) -> _Chart:
    # Binned in SQL: one row per (half-bit bin, outcome), however many pairs there are.
    rows = _rows(
        con,
        f"""
        SELECT floor(match_weight * 2) / 2 AS bin,
               CASE WHEN kept THEN 'linked' WHEN guard IS NOT NULL THEN 'refused by a guard'
                    ELSE 'below threshold' END AS outcome,
               count(*)
        FROM {parquet("$p")} GROUP BY ALL ORDER BY bin
        """,
        {"p": str(out_dir / "links.parquet")},
    )
    figure = go.Figure()
    for outcome in ("below threshold", "refused by a guard", "linked"):
        bins = [(r[0] + 0.25, r[2]) for r in rows if r[1] == outcome]
        figure.add_trace(
            go.Bar(x=[b[0] for b in bins], y=[b[1] for b in bins], name=outcome, width=0.5)
        )
    weight = _threshold_weight(manifest)
    if weight is not None:
        figure.add_vline(
            x=weight,
            line_dash="dash",
            line_color="black",
            annotation_text=f"threshold {manifest['matching']['threshold']}",
        )
    figure.update_layout(
        template=TEMPLATE,
        margin=MARGIN,
        barmode="stack",
        xaxis_title="match weight (bits)",
        yaxis_title="pairs",
    )
    return _Chart(
        "match_weights",
        "Match weight distribution",
        "Scored pairs kept in links.parquet by match weight, with the threshold marked.",
        figure,
    )


def _m_and_u(con, out_dir: Path, manifest: dict) -> _Chart:
    levels = [w for w in manifest.get("model", {}).get("weights", []) if w.get("m") is not None]
    if not levels:
        raise _Unavailable("the model has no m and u (a logistic model from labelled pairs)")
    labels = [f"{w['comparison']}: {w['level']}" for w in levels]
    figure = go.Figure(
        [
            go.Bar(x=labels, y=[w["m"] for w in levels], name="m (same person)"),
            go.Bar(x=labels, y=[w["u"] for w in levels], name="u (different people)"),
        ]
    )
    figure.update_layout(
        template=TEMPLATE,
        margin=MARGIN,
        barmode="group",
        yaxis={"type": "log", "title": "probability of the level"},
        xaxis={"tickangle": -60, "automargin": True},
        height=560,
    )
    return _Chart(
        "m_u",
        "m and u per comparison level",
        "How often each level occurs among true matches (m) and among non-matches (u), log "
        "scale; the partial weight is log2(m/u).",
        figure,
    )


def _cluster_sizes(con, out_dir: Path, manifest: dict) -> _Chart:
    rows = _rows(
        con,
        f"SELECT n_records, count(*) FROM {parquet('$p')} GROUP BY ALL ORDER BY 1",
        {"p": str(out_dir / "profiles.parquet")},
    )
    figure = go.Figure(go.Bar(x=[r[0] for r in rows], y=[r[1] for r in rows]))
    figure.update_layout(
        template=TEMPLATE,
        margin=MARGIN,
        xaxis_title="source records per customer",
        yaxis={"type": "log", "title": "customers"},
    )
    return _Chart(
        "cluster_sizes",
        "Cluster-size distribution",
        "Customers by how many source records they hold (log scale).",
        figure,
    )


def _completeness(con, out_dir: Path, manifest: dict) -> _Chart:
    shares = ", ".join(
        f"avg(({ident(f)} IS NOT NULL)::INTEGER) AS {ident(f)}" for f in RECORD_FIELDS
    )
    rows = _rows(
        con,
        f"SELECT source, {shares} FROM {parquet('$p')} GROUP BY source ORDER BY source",
        {"p": str(out_dir / "records.parquet")},
    )
    z = [[round(100 * (v or 0.0), 1) for v in r[1:]] for r in rows]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=list(RECORD_FIELDS),
            y=[_plotly_text(r[0]) for r in rows],
            colorscale="Blues",
            zmin=0,
            zmax=100,
            text=z,
            texttemplate="%{text:.0f}",
            colorbar={"title": "% filled"},
        )
    )
    figure.update_layout(template=TEMPLATE, margin=MARGIN, xaxis={"tickangle": -45})
    return _Chart(
        "completeness",
        "Field completeness per source",
        "Share of each source's records with a value in each field, after standardisation "
        "(junk values such as test@test.com count as empty).",
        figure,
    )


# A duplicate id's reason (ingest: 'duplicate id X (first at row N) in COLUMN'), without the
# id and row; the id may hold anything, so the pattern ends at the last '(first at row'.
DUPLICATE_ID = r"^duplicate id .* \(first at row [0-9]+\)( in .*)?$"


def _rejects(con, out_dir: Path, manifest: dict) -> _Chart:
    path = out_dir / "rejects.parquet"
    if not path.is_file():  # "no rows were rejected" would be a guess
        raise _Unavailable("the output has no rejects.parquet")
    # A bar per reason, a duplicate id's reason without its id and row: an export of 500
    # repeated ids drew 500 bars of one row each (and put the ids in the page).
    rows = _rows(
        con,
        f"""
        SELECT regexp_replace(reason, $duplicate, 'duplicate id\\1') AS kind, count(*)
        FROM {parquet("$p")} GROUP BY kind ORDER BY 2 DESC, 1
        """,
        {"p": str(path), "duplicate": DUPLICATE_ID},
    )
    # A reason a line long (DuckDB's list of CSV errors, a long id column's name) was cut off
    # at the chart's left edge in a narrow window: its label is wrapped, and the hover shows
    # it whole.
    figure = go.Figure(
        go.Bar(
            x=[r[1] for r in rows],
            y=[_wrapped(r[0]) for r in rows],
            customdata=[_plotly_text(r[0]) for r in rows],
            hovertemplate="%{customdata}: %{x} rows<extra></extra>",
            orientation="h",
        )
    )
    figure.update_layout(
        template=TEMPLATE,
        margin=MARGIN,
        xaxis_title="rows",
        yaxis={"autorange": "reversed", "automargin": True},
    )
    if not rows:
        figure.add_annotation(text="no rows were rejected", showarrow=False, x=0.5, y=0.5)
    return _Chart("rejects", "Rejects by reason", "Input rows that could not be used.", figure)


def _plotly_text(text: str) -> str:
    # Plotly reads tags in a label (<b>, <br>, <a href>) and entities: a value is escaped.
    return html.escape(text, quote=False)


def _wrapped(label: str, width: int = 40) -> str:
    """`label` in lines of at most `width` characters, as Plotly draws a tick label: on one
    line, a long one was wider than the room beside the bars."""
    lines = textwrap.wrap(label, width) or [label]
    return "<br>".join(_plotly_text(line) for line in lines)


def _profile_columns(con, out_dir: Path) -> set[str]:
    rows = _rows(
        con,
        f"DESCRIBE SELECT * FROM {parquet('$p')}",
        {"p": str(out_dir / "profiles.parquet")},
    )
    return {r[0] for r in rows}


def _require(con, out_dir: Path, *columns: str) -> None:
    missing = [c for c in columns if c not in _profile_columns(con, out_dir)]
    if missing:
        raise _Unavailable(f"profiles.parquet has no {', '.join(missing)}")


NONE = "(none)"


def _count_by(
    con, out_dir: Path, column: str, order: Sequence[str] = ()
) -> tuple[list[str], list[int]]:
    """Customers per value of `column`, most first, or in `order` when given."""
    rows = _rows(
        con,
        f"SELECT coalesce({ident(column)}::VARCHAR, '{NONE}'), count(*) "
        f"FROM {parquet('$p')} GROUP BY ALL ORDER BY 2 DESC, 1",
        {"p": str(out_dir / "profiles.parquet")},
    )
    if order:
        rows = _in_order(rows, order)
    return [r[0] for r in rows], [r[1] for r in rows]


def _in_order(rows: list[tuple], order: Sequence[str]) -> list[tuple]:
    """`rows` by their first value in `order` (the stages of a funnel); a value it does not
    list after those, by name, and no value (NONE) last."""
    rank = {value: i for i, value in enumerate(order)}
    return sorted(rows, key=lambda r: (r[0] == NONE, rank.get(r[0], len(rank)), r[0]))


def _rfm(con, out_dir: Path, manifest: dict) -> _Chart:
    _require(con, out_dir, "rfm_segment")
    segments, customers = _count_by(con, out_dir, "rfm_segment", RFM_SEGMENTS)
    figure = _bar(segments, customers, yaxis_title="customers")
    return _Chart(
        "rfm", "RFM segments", "Customers per recency-frequency-monetary segment.", figure
    )


def _stages(con, out_dir: Path, manifest: dict) -> _Chart:
    _require(con, out_dir, "lifecycle_stage", "journey_stage")
    figure = make_subplots(rows=1, cols=2, subplot_titles=("lifecycle stage", "journey stage"))
    for col, (column, order) in enumerate(
        (("lifecycle_stage", LIFECYCLE_STAGES), ("journey_stage", JOURNEY_STAGES)), start=1
    ):
        stages, customers = _count_by(con, out_dir, column, order)
        figure.add_trace(go.Bar(x=stages, y=customers, name=column, showlegend=False), 1, col)
    figure.update_layout(template=TEMPLATE, margin=TITLED_MARGIN, yaxis_title="customers")
    return _Chart("stages", "Lifecycle and journey stages", "Customers per stage.", figure)


def _experience(con, out_dir: Path, manifest: dict) -> _Chart:
    _require(con, out_dir, "journey_stage", "csat_mean", "sentiment_mean")
    rows = _rows(
        con,
        f"""
        SELECT coalesce(journey_stage::VARCHAR, '{NONE}') AS stage,
               avg(csat_mean), avg(sentiment_mean),
               count(csat_mean), count(sentiment_mean)
        FROM {parquet("$p")} GROUP BY ALL
        """,
        {"p": str(out_dir / "profiles.parquet")},
    )
    rows = _in_order(rows, JOURNEY_STAGES)
    stages = [r[0] for r in rows]
    figure = make_subplots(rows=1, cols=2, subplot_titles=("mean CSAT", "mean sentiment (-1 to 1)"))
    figure.add_trace(
        go.Bar(
            x=stages,
            y=[r[1] for r in rows],
            customdata=[r[3] for r in rows],
            hovertemplate="%{x}: %{y:.2f} over %{customdata} customers<extra></extra>",
            showlegend=False,
        ),
        1,
        1,
    )
    figure.add_trace(
        go.Bar(
            x=stages,
            y=[r[2] for r in rows],
            customdata=[r[4] for r in rows],
            hovertemplate="%{x}: %{y:.2f} over %{customdata} customers<extra></extra>",
            showlegend=False,
        ),
        1,
        2,
    )
    # An output without ratings or texts (Febrl's, a CRM's alone) drew empty axes, as if the
    # chart had failed: each empty side says what it lacks.
    for side, (counted, lacking) in enumerate(
        ((3, "no ticket has a CSAT rating"), (4, "no ticket or post has a text")), start=1
    ):
        if not any(r[counted] for r in rows):
            axis = "" if side == 1 else str(side)
            figure.add_annotation(
                text=lacking, showarrow=False, x=0.5, y=0.5,
                xref=f"x{axis} domain", yref=f"y{axis} domain",
            )  # fmt: skip
    figure.update_layout(template=TEMPLATE, margin=TITLED_MARGIN)
    return _Chart(
        "experience",
        "CSAT and sentiment by journey stage",
        "Average of the customers' mean CSAT and mean sentiment, per journey stage "
        "(customers without tickets or posts do not count).",
        figure,
    )


Builder = Callable[[duckdb.DuckDBPyConnection, Path, dict], _Chart]

CHARTS: dict[str, Builder] = {
    "records_per_source": _records_per_source,
    "source_overlap": _source_overlap,
    "match_weights": _match_weights,
    "m_u": _m_and_u,
    "cluster_sizes": _cluster_sizes,
    "completeness": _completeness,
    "rejects": _rejects,
    "rfm": _rfm,
    "stages": _stages,
    "experience": _experience,
}


# --- the page ---------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1rem 2rem;
       color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
table.counts { border-collapse: collapse; margin: 1rem 0; }
table.counts td { padding: 0.15rem 0.8rem; border-bottom: 1px solid #eee; }
table.counts td.n { text-align: right; font-variant-numeric: tabular-nums; }
section { margin: 2rem 0; } .caption { color: #555; } .note { color: #8a5a00; }
"""


# run.json's counts shown above the charts, each labelled with what it counts: "links" alone
# read as the rows of links.parquet, which holds the near misses below the threshold too.
COUNTS_SHOWN = {
    "rows_in": "rows in",
    "rows_rejected": "rows rejected",
    "rows_mapped": "rows mapped",
    "candidate_pairs": "candidate pairs",
    "links": "links at or above the threshold (those merge guards refused included)",
    "links_refused_by_guards": "links refused by merge guards",
    "customers": "customers",
}


def _as_of(manifest: dict[str, Any]) -> str:
    """The date every stage, recency and RFM score is relative to (run.json's as_of)."""
    if "as_of" not in manifest:
        return "?"
    return str(manifest["as_of"] or "none (no date in the data)")


def _script_json(figure: go.Figure) -> str:
    # Inside <script>, "</" would end the element early; \u003c is the same string to JSON.
    return figure.to_json().replace("<", "\\u003c")


def _page(
    out_dir: Path, manifest: dict[str, Any], charts: list[_Chart], skipped: dict[str, str]
) -> str:
    counts = manifest.get("counts", {})
    count_rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td class='n'>{counts[k]:,}</td></tr>"
        for k, label in COUNTS_SHOWN.items()
        if isinstance(counts.get(k), int)
    )
    sections = []
    for chart in charts:
        sections.append(
            f"<section id='{chart.key}'><h2>{html.escape(chart.title)}</h2>"
            f"<p class='caption'>{html.escape(chart.caption)}</p>"
            f"<div class='cx-chart' id='chart-{chart.key}' data-chart='{chart.key}'></div>"
            f"<script>(function(f) {{ Plotly.newPlot('chart-{chart.key}', f.data, f.layout, "
            f"{{responsive: true, displaylogo: false}}); }})({_script_json(chart.figure)});"
            "</script></section>"
        )
    notes = "".join(
        f"<li>{html.escape(key)}: {html.escape(reason)}</li>" for key, reason in skipped.items()
    )
    skipped_html = (
        f"<p class='note'>Charts left out:</p><ul class='note'>{notes}</ul>" if notes else ""
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>cxunify report</title>"
        f"<style>{STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        "<h1>cxunify report</h1>"
        f"<p class='meta'>{html.escape(str(out_dir.resolve()))} · run finished "
        f"{html.escape(str(manifest.get('finished_at', '?')))} · traits as of "
        f"{html.escape(_as_of(manifest))} · threshold "
        f"{html.escape(str(manifest.get('matching', {}).get('threshold', '?')))}</p>"
        f"<table class='counts'>{count_rows}</table>{skipped_html}"
        + "".join(sections)
        + "</body></html>\n"
    )
