"""Valence, arousal, dominance and intensity: how strongly an event's emotion is felt.

The VAD head (pipeline/model/vad.py) gives valence (unpleasant 1 -> pleasant 5),
arousal (calm 1 -> excited 5) and dominance (controlled 1 -> in control 5) on
EmoBank's scale, 3 being neutral. Intensity puts them together with the emotion:

    activation = (clip((arousal - 1) / 4) + clip(|valence - 3| / 2)) / 2
    intensity  = p(top Ekman group) * activation      (0 when the top group is neutral)

so it is high only when the model is sure of the emotion *and* the text is activated
and far from neutral in tone: "I am FURIOUS, third time this week" scores far above
"slightly annoyed by the delay", though both are anger. It runs 0-1. Arousal and the
distance from neutral valence weigh the same because EmoBank's two are the dimensions
readers rate most reliably (Buechel and Hahn 2017); dominance is stored, not used here.
"""

from __future__ import annotations

import numpy as np

from pipeline.emotions import EKMAN_GROUPS, LABELS

_GROUP_NAMES = tuple(EKMAN_GROUPS)
_MEMBERS = [[LABELS.index(m) for m in EKMAN_GROUPS[g]] for g in _GROUP_NAMES]


def activation(vad: np.ndarray) -> np.ndarray:
    """(n, 3) VAD -> (n,) in 0-1: how aroused and how far from neutral valence."""
    arousal = np.clip((vad[:, 1] - 1.0) / 4.0, 0.0, 1.0)
    extremity = np.clip(np.abs(vad[:, 0] - 3.0) / 2.0, 0.0, 1.0)
    return (arousal + extremity) / 2.0


def intensity(probs: np.ndarray, vad: np.ndarray, ekman: list[str]) -> np.ndarray:
    """(n,) intensity of each row's top Ekman group (`ekman`, as postprocessing chose it)."""
    scores = np.stack([probs[:, m].max(axis=1) for m in _MEMBERS], axis=1)
    top = np.array([_GROUP_NAMES.index(g) for g in ekman], dtype=np.int64)
    p_top = scores[np.arange(len(top)), top]
    out = p_top * activation(vad)
    out[top == _GROUP_NAMES.index("neutral")] = 0.0
    return out
