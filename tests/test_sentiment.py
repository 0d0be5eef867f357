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


def test_long_digit_runs_do_not_change_any_sample_score():
    import csv
    import json

    import duckdb

    from cxunify.traits import scored_text
    from tests.conftest import SAMPLE

    with (SAMPLE / "tickets.csv").open(encoding="utf-8", errors="replace", newline="") as f:
        texts = [f"{row['subject']}. {row['body']}" for row in csv.DictReader(f)]
    for line in (SAMPLE / "social.ndjson").read_text(encoding="utf-8").splitlines():
        try:
            texts.append(json.loads(line)["post_text"])
        except (ValueError, KeyError, TypeError):
            continue  # the sample's deliberately broken lines
    texts.append("Order #12345678 from 90210 arrived, love it <3 143")
    con = duckdb.connect()
    con.register("texts", pa.table({"text": texts}))
    pairs = con.execute(f"SELECT text, {scored_text('text')} FROM texts").fetchall()
    vader = SentimentIntensityAnalyzer()
    changed = [(a, b) for a, b in pairs if a != b]
    assert len(changed) > 100, "the sample has order numbers in its texts"
    for original, normalised in pairs:
        score = vader.polarity_scores(original)["compound"]
        assert vader.polarity_scores(normalised)["compound"] == score, original


def test_known_scores_are_taken_and_only_new_texts_scored():
    """An update passes the stored scores: those texts are not scored again (the marker score
    below is no VADER score of its text), the others are; scores of texts no longer present
    are not carried."""
    engine = DuckDBEngine()
    engine.con.register("texts", pa.table({"text": TEXTS}))
    engine.con.register(
        "known",
        pa.table({"text": ["not bad at all", "gone text"], "sentiment": [-0.123, 0.9]}),
    )
    assert score_texts(engine, "SELECT text FROM texts", "SELECT * FROM known") == 3
    scores = dict(engine.rows(f"SELECT text, sentiment FROM {SENTIMENT}"))
    assert scores.pop("not bad at all") == -0.123
    assert set(scores) == {t for t in TEXTS if t is not None} - {"not bad at all"}
    vader = SentimentIntensityAnalyzer()
    for text, score in scores.items():
        assert score == pytest.approx(vader.polarity_scores(text)["compound"], abs=1e-12)
