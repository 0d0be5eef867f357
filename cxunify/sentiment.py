"""Sentiment of ticket and post text with VADER (the ``vaderSentiment`` lexicon model).

Exports repeat texts (templated replies, the same complaint pasted twice), so each *distinct*
text is scored once and rows join back to the score. Scoring is vaderSentiment's own
``polarity_scores`` — the reference implementation, not an approximation of it — on texts
fetched from and returned to DuckDB as Arrow columns; no per-row Python touches the records.
"""

from __future__ import annotations

import pyarrow as pa

from cxunify.engine import DuckDBEngine
from cxunify.sql import table

SENTIMENT = table("sentiment")

# Texts are fetched and scored in batches so memory stays flat however many there are.
BATCH_ROWS = 50_000


def score_texts(engine: DuckDBEngine, texts_sql: str) -> int:
    """Create ``cx_sentiment(text, sentiment)`` for the distinct non-null ``text`` of a query.

    ``sentiment`` is VADER's compound score in [-1, 1]. Returns the number of texts scored.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    engine.execute(f"CREATE OR REPLACE TABLE {SENTIMENT} (text VARCHAR, sentiment DOUBLE)")
    reader = engine.con.sql(
        f"SELECT DISTINCT text FROM ({texts_sql}) WHERE text IS NOT NULL"
    ).to_arrow_reader(BATCH_ROWS)
    batches = list(reader)  # the connection must be free before inserting
    scored = 0
    for batch in batches:
        texts = batch.column(0).to_pylist()
        scores = [analyzer.polarity_scores(text)["compound"] for text in texts]
        engine.con.register("cx_scored_batch", pa.table({"text": texts, "sentiment": scores}))
        engine.execute(f"INSERT INTO {SENTIMENT} SELECT text, sentiment FROM cx_scored_batch")
        engine.con.unregister("cx_scored_batch")
        scored += len(texts)
    return scored
