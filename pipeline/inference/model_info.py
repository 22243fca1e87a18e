"""What inference returns, and what scored events record about the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str  # Triton model name, e.g. "emotion"
    version: str  # model version label, e.g. "minilm-l6-ft-1"


@dataclass(frozen=True)
class Predictions:
    """The model's answer for a batch of texts, row i for text i."""

    probabilities: np.ndarray  # (n, 28), label order of pipeline.emotions.LABELS
    labels: list[list[str]]  # labels at or above their thresholds
    ekman: list[str]
    sentiment: list[str]
    # (n, 3) valence, arousal, dominance on EmoBank's 1-5 scale (3 = neutral); None
    # when the model has no VAD head (the null model, a model from before it).
    vad: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def with_threshold(self, threshold: float, label_names: tuple[str, ...]) -> Predictions:
        """The same predictions with one threshold for every label (an experiment knob)."""
        labels = [
            [label_names[j] for j in np.flatnonzero(row >= threshold)] for row in self.probabilities
        ]
        return Predictions(self.probabilities, labels, self.ekman, self.sentiment, self.vad)

    @staticmethod
    def concat(parts: list[Predictions]) -> Predictions:
        if not parts:
            return Predictions(np.zeros((0, 28), np.float32), [], [], [])
        vads = [p.vad for p in parts]
        return Predictions(
            np.concatenate([p.probabilities for p in parts]),
            [x for p in parts for x in p.labels],
            [x for p in parts for x in p.ekman],
            [x for p in parts for x in p.sentiment],
            None if any(v is None for v in vads) else np.concatenate(vads),  # type: ignore[arg-type]
        )
