"""`moodpipe eval --affect`: valence, arousal, dominance and sentiment beyond Reddit.

On EmoBank (Buechel and Hahn 2017, CC BY-SA 4.0), its own test split:

- VAD: Pearson r per dimension between the served VAD output and the human ratings.
- Sentiment per genre (blog, essays, fiction, letters, newspaper, travel guides from
  MASC; news headlines from SemEval-2007): the gold polarity is the sign of valence
  with a neutral band, V >= 3.25 positive, V <= 2.75 negative, else neutral (EmoBank's
  ratings centre on 3 with sd ~0.35, so a quarter point each side leaves about half the
  sentences polar). The model's polarity is its `sentiment` output (ambiguous counts
  as neutral). Reported: 3-class accuracy, and accuracy on the polar sentences alone
  (positive vs negative, the model's stronger polar group).
- Calibration (expected calibration error, 10 equal-width bins) on the polar
  sentences: confidence = the predicted polar group's share of the two polar group
  scores, max(pos, neg) / (pos + neg), against whether the prediction was right.

Every figure goes through the same in-process model and postprocessing as
`moodpipe score`.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.emotions import LABELS, SENTIMENT_GROUPS
from pipeline.inference.model_info import Predictions
from pipeline.inference.onnx_local import LocalEmotionModel
from pipeline.model.vad import DIMENSIONS, GENRES, EmoBank, read_emobank

POSITIVE_FROM = 3.25
NEGATIVE_TO = 2.75
_POS = [LABELS.index(m) for m in SENTIMENT_GROUPS["positive"]]
_NEG = [LABELS.index(m) for m in SENTIMENT_GROUPS["negative"]]


def gold_polarity(valence: np.ndarray) -> np.ndarray:
    """1 positive, -1 negative, 0 neutral (the band above)."""
    return np.where(valence >= POSITIVE_FROM, 1, np.where(valence <= NEGATIVE_TO, -1, 0))


def predicted_polarity(predictions: Predictions) -> np.ndarray:
    return np.array([{"positive": 1, "negative": -1}.get(s, 0) for s in predictions.sentiment])


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def _predict(model: LocalEmotionModel, texts: list[str]) -> Predictions:
    return Predictions.concat([model.predict(texts[i : i + 64]) for i in range(0, len(texts), 64)])


def sentiment_report(predictions: Predictions, valence: np.ndarray) -> dict[str, Any]:
    gold = gold_polarity(valence)
    pred = predicted_polarity(predictions)
    polar = gold != 0
    pos = predictions.probabilities[:, _POS].max(axis=1)
    neg = predictions.probabilities[:, _NEG].max(axis=1)
    polar_pred = np.where(pos >= neg, 1, -1)
    confidence = np.maximum(pos, neg) / np.maximum(pos + neg, 1e-9)
    correct = (polar_pred == gold)[polar]
    return {
        "texts": len(gold),
        "polar": int(polar.sum()),
        "accuracy_3class": round(float((pred == gold).mean()), 4),
        "accuracy_polar": round(float(correct.mean()), 4) if polar.any() else None,
        "ece_polar": (
            round(expected_calibration_error(confidence[polar], correct.astype(float)), 4)
            if polar.any()
            else None
        ),
    }


def evaluate_affect(model: LocalEmotionModel, bank: EmoBank) -> dict[str, Any]:
    test = bank.split == "test"
    texts = [t for t, keep in zip(bank.texts, test, strict=True) if keep]
    predictions = _predict(model, texts)
    result: dict[str, Any] = {"model": model.info.name, "version": model.info.version}
    if predictions.vad is not None:
        result["vad_test_r"] = {
            d: round(float(np.corrcoef(predictions.vad[:, k], bank.vad[test, k])[0, 1]), 4)
            for k, d in enumerate(DIMENSIONS)
        }
    valence = bank.vad[test, 0]
    genres = bank.genre[test]
    result["sentiment"] = {"all": sentiment_report(predictions, valence)}
    for genre in GENRES:
        rows = np.flatnonzero(genres == genre)
        if len(rows):
            part = Predictions(
                predictions.probabilities[rows],
                [predictions.labels[i] for i in rows],
                [predictions.ekman[i] for i in rows],
                [predictions.sentiment[i] for i in rows],
            )
            result["sentiment"][genre] = sentiment_report(part, valence[rows])
    return result


def evaluate_all(
    data_dir: Path, names: tuple[str, ...] = ("emotion", "emotion_ml")
) -> dict[str, Any]:
    from pipeline.inference.onnx_local import built

    bank = read_emobank(data_dir / "emobank" / "emobank.csv")
    return {
        name: evaluate_affect(LocalEmotionModel(model_name=name), bank)
        for name in names
        if built(name) or name == "emotion"
    }
