"""Postprocess stage: probabilities + record + Kafka position -> a scored_events row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pipeline.emotions import LABELS, SENTIMENT_GROUPS, group_scores
from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.language import Language
from pipeline.records.models import InputRecord, SocialPost
from pipeline.redaction import Redactor

# Column order of scored_events as written by the sink (inserted_at has a default).
COLUMNS: tuple[str, ...] = (
    "event_id", "source", "brand", "brands", "platform", "author", "customer_id",
    "customer_tier", "product", "channel", "priority", "lang", "lang_declared",
    "lang_detected", "model_coverage", "subject", "text",
    "pii_redacted", "created_at", "produced_at", "scored_at", *LABELS, "top_emotion", "top_score",
    "labels", "ekman", "sentiment", "sentiment_score", "model_name", "model_version",
    "source_topic", "source_partition", "source_offset",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class KafkaPosition:
    topic: str
    partition: int
    offset: int
    timestamp: datetime  # the record's Kafka timestamp (produce time)


# A Kafka timestamp is whatever the producer set; outside this range (ClickHouse's
# DateTime64 range, with margin) the time the worker read the record stands in.
_KAFKA_TIME_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def kafka_time(timestamp: float | None) -> datetime:
    """A Kafka record's timestamp (seconds) as produced_at, or now if it is unusable."""
    try:
        at = datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None
    except (OverflowError, OSError, ValueError, TypeError):
        at = None
    if at is None or not _KAFKA_TIME_RANGE[0] <= at < _KAFKA_TIME_RANGE[1]:
        return datetime.now(UTC)
    return at


def summarise(probs: np.ndarray) -> dict[str, Any]:
    """Top emotion and the sentiment score (strongest positive - strongest negative).

    Labels over threshold, the Ekman group and the sentiment group come from the
    model's own postprocessing step (Triton `emotion_postprocess`), which knows the
    model version's per-label thresholds.
    """
    top = int(np.argmax(probs))
    sentiment = group_scores(probs, SENTIMENT_GROUPS)
    return {
        "top_emotion": LABELS[top],
        "top_score": float(probs[top]),
        "sentiment_score": sentiment["positive"] - sentiment["negative"],
    }


def scored_row(
    record: InputRecord,
    predictions: Predictions,
    i: int,
    position: KafkaPosition,
    model: ModelInfo,
    scored_at: datetime,
    language: Language,
    redactor: Redactor | None = None,
) -> list[Any]:
    """Row i of a batch's predictions as a scored_events row, its text redacted."""
    probs = predictions.probabilities[i]
    summary = {
        **summarise(probs),
        "labels": predictions.labels[i],
        "ekman": predictions.ekman[i],
        "sentiment": predictions.sentiment[i],
    }
    if isinstance(record, SocialPost):
        fields = {
            "brand": record.brand, "brands": list(record.brands), "platform": record.platform,
            "author": record.author, "customer_id": "", "customer_tier": "", "product": "",
            "channel": "", "priority": "", "subject": "", "text": record.text,
        }  # fmt: skip
    else:
        fields = {
            "brand": record.brand, "brands": [record.brand] if record.brand else [],
            "platform": "", "author": "", "customer_id": record.customer_id,
            "customer_tier": record.customer_tier, "product": record.product,
            "channel": record.channel, "priority": record.priority,
            "subject": record.subject, "text": record.body,
        }  # fmt: skip
    redacted = 0
    if redactor is not None:
        text = redactor.redact(fields["text"])
        subject = redactor.redact(fields["subject"])
        fields["text"], fields["subject"] = text.text, subject.text
        redacted = text.spans + subject.spans
    values: dict[str, Any] = {
        "pii_redacted": redacted,
        "event_id": record.id,
        "source": record.source,
        "lang": language.lang,
        "lang_declared": language.declared,
        "lang_detected": language.detected,
        "model_coverage": language.coverage,
        "created_at": record.created_at,
        "produced_at": position.timestamp,
        "scored_at": scored_at,
        **fields,
        **{label: float(p) for label, p in zip(LABELS, probs, strict=True)},
        **summary,
        "model_name": model.name,
        "model_version": model.version,
        "source_topic": position.topic,
        "source_partition": position.partition,
        "source_offset": position.offset,
    }
    return [values[c] for c in COLUMNS]


def scored_message(row: list[Any]) -> dict[str, Any]:
    """A scored_events row as a scored_event message (schemas/scored_event.schema.json)."""
    values = dict(zip(COLUMNS, row, strict=True))
    message = {c: v for c, v in values.items() if c not in LABELS}
    message["scores"] = {label: round(float(values[label]), 6) for label in LABELS}
    for name in ("created_at", "produced_at", "scored_at"):
        message[name] = values[name].isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message["top_score"] = float(values["top_score"])
    message["sentiment_score"] = float(values["sentiment_score"])
    return message
