"""Sentiment: each distinct text scored once, with exactly vaderSentiment's compound score."""

from __future__ import annotations

import pyarrow as pa
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from cxunify.engine import DuckDBEngine
from cxunify.sentiment import SENTIMENT, score_texts

TEXTS = [
    "I LOVE this store!!!",
    "The order never arrived and nobody answers. Terrible.",
    "not bad at all",
    "I LOVE this store!!!",  # repeated: scored once
    None,
    "Where is my parcel?",
]


def test_distinct_texts_scored_once_with_vader_compound():
    engine = DuckDBEngine()
    engine.con.register("texts", pa.table({"text": TEXTS}))
    assert score_texts(engine, "SELECT text FROM texts") == 4
    scores = dict(engine.rows(f"SELECT text, sentiment FROM {SENTIMENT}"))
    vader = SentimentIntensityAnalyzer()
    for text in {t for t in TEXTS if t is not None}:
        assert scores[text] == pytest.approx(vader.polarity_scores(text)["compound"], abs=1e-12)
    assert scores["I LOVE this store!!!"] > 0.5
    assert scores["The order never arrived and nobody answers. Terrible."] < -0.3
    assert scores["not bad at all"] > 0  # negation handled by VADER's rules


def test_batches_cover_every_text(monkeypatch):
    monkeypatch.setattr("cxunify.sentiment.BATCH_ROWS", 2)
    engine = DuckDBEngine()
    engine.con.register("texts", pa.table({"text": [f"good {i}" for i in range(7)]}))
    assert score_texts(engine, "SELECT text FROM texts") == 7
    assert engine.count(SENTIMENT) == 7
