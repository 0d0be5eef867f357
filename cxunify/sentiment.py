"""Sentiment of ticket and post text with VADER (the ``vaderSentiment`` lexicon model).

Exports repeat texts (templated replies, the same complaint pasted twice), so each *distinct*
text is scored once and rows join back to the score. Scoring is vaderSentiment's own
``polarity_scores`` — the reference implementation, not an approximation of it — on texts
fetched from and returned to DuckDB as Arrow columns; no per-row Python touches the records.
On Spark the same function scores the distinct texts where they are, in a pandas UDF on the
executors: nothing is collected to the driver.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from cxunify.engine import DuckDBEngine
from cxunify.sql import table

# The name of the Spark engine's pandas UDF for it.
SENTIMENT_UDF = "cx_sentiment"

SENTIMENT = table("sentiment")
SCORED_BATCH = table("scored_batch")

# Texts are fetched and scored in batches so memory stays flat however many there are.
BATCH_ROWS = 50_000


def score_texts(
    engine: Any,
    texts_sql: str,
    known_sql: str | None = None,
    known_params: dict[str, Any] | None = None,
) -> int:
    """Create ``cx_sentiment(text, sentiment)`` for the distinct non-null ``text`` of a query.

    ``sentiment`` is VADER's compound score in [-1, 1]. Texts found in `known_sql` (columns
    text and sentiment: an update's stored scores) take their score from it. Returns the
    number of texts scored.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    distinct = f"SELECT DISTINCT text FROM ({texts_sql}) WHERE text IS NOT NULL"
    if not isinstance(engine, DuckDBEngine):  # Spark: a UDF over the distinct texts
        engine.execute(
            f"CREATE OR REPLACE TABLE {SENTIMENT} AS "
            f"SELECT text, {SENTIMENT_UDF}(text) AS sentiment FROM ({distinct})"
        )
        return engine.count(SENTIMENT)
    analyzer = SentimentIntensityAnalyzer()
    engine.execute(f"CREATE OR REPLACE TABLE {SENTIMENT} (text VARCHAR, sentiment DOUBLE)")
    if known_sql is not None:
        engine.execute(
            f"INSERT INTO {SENTIMENT} SELECT k.text, k.sentiment FROM ({known_sql}) k "
            f"SEMI JOIN ({distinct}) d USING (text)",
            known_params,
        )
        distinct = f"SELECT text FROM ({distinct}) ANTI JOIN {SENTIMENT} USING (text)"
    reader = engine.con.sql(distinct).to_arrow_reader(BATCH_ROWS)
    # (all fetched first: the connection must be free before inserting)
    batches = [batch.column(0).to_pylist() for batch in reader]
    scored = 0
    for texts in batches:
        scores = [analyzer.polarity_scores(text)["compound"] for text in texts]
        engine.register_arrow(SCORED_BATCH, pa.table({"text": texts, "sentiment": scores}))
        engine.execute(f"INSERT INTO {SENTIMENT} SELECT text, sentiment FROM {SCORED_BATCH}")
        engine.drop(SCORED_BATCH)
        scored += len(texts)
    return scored
