"""The batch-wise row and message builders against the plain per-event definition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from pipeline.emotions import EKMAN_GROUPS, LABELS, SENTIMENT_GROUPS
from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.language import LanguagePolicy
from pipeline.postprocess import (
    COLUMNS,
    scored_message,
    scored_row,
    summarise,
    summarise_predictions,
)
from pipeline.records import RecordValidator
from pipeline.records.raw import KafkaPosition
from pipeline.traffic import sample_posts, sample_tickets

ENGLISH = LanguagePolicy(detect="off", detector=None, multilingual=False, assume="en")


def reference_affect(probs: np.ndarray, vad: np.ndarray | None, ekman: str) -> list[Any]:
    """Valence, arousal, dominance, intensity as docs/emotion-model.md defines them."""
    if vad is None:
        return [None] * 4
    valence, arousal, dominance = (float(x) for x in vad)
    activation = (min(max((arousal - 1) / 4, 0), 1) + min(abs(valence - 3) / 2, 1)) / 2
    p_group = max(float(probs[LABELS.index(m)]) for m in EKMAN_GROUPS[ekman])
    strength = 0.0 if ekman == "neutral" else p_group * activation
    return [round(x, 4) for x in (valence, arousal, dominance, strength)]


def reference_row(record: Any, probs: np.ndarray, labels: list[str], ekman: str,
                  sentiment: str, position: KafkaPosition, model: ModelInfo,
                  scored_at: datetime, language: Any,
                  vad: np.ndarray | None = None) -> list[Any]:  # fmt: skip
    """A scored_events row, field by field by name: what the columns mean."""
    post = record.source == "post"
    groups = {g: max(float(probs[LABELS.index(m)]) for m in members)
              for g, members in SENTIMENT_GROUPS.items()}  # fmt: skip
    top = int(np.argmax(probs))
    values = {
        "event_id": record.id, "source": record.source, "brand": record.brand,
        "brands": list(record.brands) if post else ([record.brand] if record.brand else []),
        "platform": record.platform if post else "", "author": record.author if post else "",
        "customer_id": "" if post else record.customer_id,
        "customer_tier": "" if post else record.customer_tier,
        "product": "" if post else record.product, "channel": "" if post else record.channel,
        "priority": "" if post else record.priority,
        # Tickets: their thread (own id when none was given) and author role.
        "thread_id": "" if post else (record.thread_id or record.id),
        "author_role": "" if post else record.author_role, "lang": language.lang,
        "lang_declared": language.declared, "lang_detected": language.detected,
        "model_coverage": language.coverage, "subject": "" if post else record.subject,
        "text": record.text if post else record.body, "pii_redacted": 0,
        "created_at": record.created_at, "produced_at": position.timestamp,
        "scored_at": scored_at, **{label: float(p) for label, p in zip(LABELS, probs, strict=True)},
        "top_emotion": LABELS[top], "top_score": float(probs[top]), "labels": labels,
        "ekman": ekman, "sentiment": sentiment,
        "sentiment_score": groups["positive"] - groups["negative"],
        **dict(zip(("valence", "arousal", "dominance", "intensity"),
                   reference_affect(probs, vad, ekman), strict=True)),
        "model_name": model.name, "model_version": model.version,
        "source_topic": position.topic, "source_partition": position.partition,
        "source_offset": position.offset,
    }  # fmt: skip
    assert set(values) == set(COLUMNS)
    return [values[c] for c in COLUMNS]


def _close(got: list[Any], want: list[Any]) -> bool:
    assert len(got) == len(want)
    for c, a, b in zip(COLUMNS, got, want, strict=True):
        same = abs(a - b) <= 1e-4 if isinstance(b, float) and a is not None else a == b
        assert same, (c, a, b)
    return True


@pytest.mark.parametrize("with_vad", [True, False])
def test_rows_and_messages_equal_the_per_event_definition(with_vad: bool) -> None:
    validator = RecordValidator(256 * 1024, 10_000)
    records = [validator.validate("post", r.value) for r in sample_posts(40, seed=3)]
    records += [validator.validate("ticket", r.value) for r in sample_tickets(40, seed=4)]
    rng = np.random.default_rng(1)
    probs = rng.random((len(records), 28), dtype=np.float32)
    labels = [[LABELS[j] for j in np.flatnonzero(row > 0.8)] for row in probs]
    ekman = [("joy", "anger", "neutral", "sadness")[i % 4] for i in range(len(records))]
    vad = (1 + 4 * rng.random((len(records), 3))).astype(np.float32) if with_vad else None
    predictions = Predictions(probs, labels, ekman, ["positive"] * len(records), vad)
    model = ModelInfo("emotion", "v-1")
    now = datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC)
    summary = summarise_predictions(predictions)
    for i, record in enumerate(records):
        position = KafkaPosition("posts", i % 4, 1000 + i, now)
        language = ENGLISH.resolve(record.lang, record.score_text)
        expected = reference_row(record, probs[i], labels[i], ekman[i], "positive", position,
                                 model, now, language, None if vad is None else vad[i])  # fmt: skip
        batched = scored_row(record, predictions, i, position, model, now, language,
                             None, summary)  # fmt: skip
        alone = scored_row(record, predictions, i, position, model, now, language)
        assert _close(batched, expected)  # floats within the VAD's float32 rounding
        assert alone == batched
        message = scored_message(batched)
        assert list(message) == [c for c in COLUMNS if c not in LABELS] + ["scores"]
        scores = {lab: round(float(p), 6) for lab, p in zip(LABELS, probs[i], strict=True)}
        assert message["scores"] == scores
        assert message["scored_at"] == "2026-12-02T10:00:00.123Z"
        assert message["source_offset"] == 1000 + i


@pytest.mark.parametrize("shape", [(3, 27), (3, 56), (84,)])
def test_probabilities_of_the_wrong_shape_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected"):
        summarise(np.zeros(shape, np.float32))
