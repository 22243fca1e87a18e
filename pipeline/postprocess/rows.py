"""Postprocess stage: probabilities + record + Kafka position -> a scored_events row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from pipeline.emotions import LABELS, SENTIMENT_GROUPS, group_scores
from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.language import Language
from pipeline.postprocess.affect import intensity
from pipeline.records.models import InputRecord, SocialPost
from pipeline.records.raw import KafkaPosition
from pipeline.redaction import Redactor

# Column order of scored_events as written by the sink (inserted_at has a default).
COLUMNS: tuple[str, ...] = (
    "event_id", "source", "brand", "brands", "platform", "author", "customer_id",
    "customer_tier", "product", "channel", "priority", "thread_id", "author_role", "lang",
    "lang_declared", "lang_detected", "model_coverage", "subject", "text",
    "pii_redacted", "created_at", "produced_at", "scored_at", *LABELS, "top_emotion", "top_score",
    "labels", "ekman", "sentiment", "sentiment_score", "valence", "arousal", "dominance",
    "intensity", "model_name", "model_version",
    "source_topic", "source_partition", "source_offset",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What the rows of one batch take from its probabilities, as Python values.

    Computed once per batch with numpy: per-event Python work was the worker's cost
    (py-spy: the per-row dict comprehensions and group maxima were ~12 % of it).
    """

    probabilities: list[list[float]]  # row i: the 28 scores in LABELS order
    top_emotion: list[str]
    top_score: list[float]
    sentiment_score: list[float]  # strongest positive - strongest negative
    # Per row [valence, arousal, dominance, intensity] (pipeline/postprocess/affect.py);
    # four Nones for a model without a VAD head.
    affect: list[list[float | None]]


_NO_AFFECT: list[float | None] = [None, None, None, None]


def summarise(
    probs: np.ndarray, vad: np.ndarray | None = None, ekman: list[str] | None = None
) -> BatchSummary:
    """Top emotion and the sentiment score of every row of a batch's probabilities.

    Labels over threshold, the Ekman group and the sentiment group come from the
    model's own postprocessing step (Triton `emotion_postprocess`), which knows the
    model version's per-label thresholds.
    """
    wide = np.asarray(probs, dtype=np.float64)
    if wide.ndim != 2 or wide.shape[1] != len(LABELS):
        raise ValueError(f"probabilities of shape {wide.shape}, expected (n, {len(LABELS)})")
    top = wide.argmax(axis=1)
    groups = group_scores(wide, SENTIMENT_GROUPS)
    sentiment = groups["positive"] - groups["negative"]
    if vad is not None and ekman is not None:
        dims = np.asarray(vad, dtype=np.float64)
        if dims.shape != (len(wide), 3):
            raise ValueError(f"VAD of shape {dims.shape}, expected ({len(wide)}, 3)")
        strength = intensity(wide, dims, ekman)
        affect: list[list[float | None]] = np.c_[dims, strength].round(4).tolist()
    else:
        affect = [_NO_AFFECT] * len(wide)
    return BatchSummary(
        probabilities=wide.tolist(),
        top_emotion=[LABELS[j] for j in top.tolist()],
        top_score=wide[np.arange(len(wide)), top].tolist(),
        sentiment_score=sentiment.tolist(),
        affect=affect,
    )


def summarise_predictions(predictions: Predictions) -> BatchSummary:
    return summarise(predictions.probabilities, predictions.vad, predictions.ekman)


def scored_row(
    record: InputRecord,
    predictions: Predictions,
    i: int,
    position: KafkaPosition,
    model: ModelInfo,
    scored_at: datetime,
    language: Language,
    redactor: Redactor | None = None,
    summary: BatchSummary | None = None,
) -> list[Any]:
    """Row i of a batch's predictions as a scored_events row (`COLUMNS` order), its
    text redacted. `summary`: `summarise(predictions.probabilities)`, once per batch."""
    if summary is None:
        vad = None if predictions.vad is None else predictions.vad[i : i + 1]
        summary = summarise(predictions.probabilities[i : i + 1], vad, predictions.ekman[i : i + 1])
        j = 0
    else:
        j = i
    if isinstance(record, SocialPost):
        brands, platform, author = list(record.brands), record.platform, record.author
        customer_id = customer_tier = product = channel = priority = subject = ""
        thread_id = author_role = ""
        text = record.text
    else:
        brands = [record.brand] if record.brand else []
        platform = author = ""
        customer_id, customer_tier = record.customer_id, record.customer_tier
        product, channel, priority = record.product, record.channel, record.priority
        subject, text = record.subject, record.body
        thread_id, author_role = record.thread_id or record.id, record.author_role
    redacted = 0
    if redactor is not None:
        redacted_text, redacted_subject = redactor.redact(text), redactor.redact(subject)
        text, subject = redacted_text.text, redacted_subject.text
        redacted = redacted_text.spans + redacted_subject.spans
    return [
        record.id, record.source, record.brand, brands, platform, author, customer_id,
        customer_tier, product, channel, priority, thread_id, author_role, language.lang,
        language.declared, language.detected, language.coverage, subject, text, redacted,
        record.created_at,
        position.timestamp, scored_at, *summary.probabilities[j], summary.top_emotion[j],
        summary.top_score[j], predictions.labels[i], predictions.ekman[i],
        predictions.sentiment[i], summary.sentiment_score[j], *summary.affect[j], model.name,
        model.version,
        position.topic, position.partition, position.offset,
    ]  # fmt: skip


_SCORES = slice(COLUMNS.index(LABELS[0]), COLUMNS.index(LABELS[-1]) + 1)
_MESSAGE_COLUMNS = [(c, i) for i, c in enumerate(COLUMNS) if c not in LABELS]
_TIMES = [COLUMNS.index(c) for c in ("created_at", "produced_at", "scored_at")]
_FLOATS = [COLUMNS.index(c) for c in ("top_score", "sentiment_score")]


def _utc_ms(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def scored_message(row: list[Any]) -> dict[str, Any]:
    """A scored_events row as a scored_event message (schemas/scored_event.schema.json)."""
    values = list(row)
    for i in _TIMES:
        values[i] = _utc_ms(values[i])
    for i in _FLOATS:
        values[i] = float(values[i])
    message = {name: values[i] for name, i in _MESSAGE_COLUMNS}
    message["scores"] = dict(zip(LABELS, [round(float(p), 6) for p in row[_SCORES]], strict=True))
    return message
