"""The GoEmotions taxonomy: 28 labels, their Ekman groups and sentiment groups.

Mappings are the published ones (Demszky et al., ACL 2020), as given in the data
set's README. Label order is the model's output order and never changes within a
model version.
"""

from __future__ import annotations

import numpy as np

LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring",
    "confusion", "curiosity", "desire", "disappointment", "disapproval", "disgust",
    "embarrassment", "excitement", "fear", "gratitude", "grief", "joy", "love",
    "nervousness", "optimism", "pride", "realization", "relief", "remorse",
    "sadness", "surprise", "neutral",
)  # fmt: skip

EKMAN_GROUPS: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy", "amusement", "approval", "excitement", "gratitude", "love",
        "optimism", "relief", "pride", "admiration", "desire", "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}  # fmt: skip

SENTIMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "positive": (
        "amusement", "excitement", "joy", "love", "desire", "optimism", "caring",
        "pride", "admiration", "gratitude", "relief", "approval",
    ),
    "negative": (
        "fear", "nervousness", "remorse", "embarrassment", "disappointment",
        "sadness", "grief", "disgust", "anger", "annoyance", "disapproval",
    ),
    "ambiguous": ("realization", "surprise", "curiosity", "confusion"),
    "neutral": ("neutral",),
}  # fmt: skip

EKMAN_OF: dict[str, str] = {label: g for g, members in EKMAN_GROUPS.items() for label in members}
SENTIMENT_OF: dict[str, str] = {
    label: g for g, members in SENTIMENT_GROUPS.items() for label in members
}


def group_scores(probs: np.ndarray, groups: dict[str, tuple[str, ...]]) -> dict[str, np.ndarray]:
    """Each group's score for every row of `probs` (n, 28): the highest probability
    among its member labels.

    Max rather than sum: labels are independent sigmoids, so sums exceed 1 and
    grow with group size (joy has 12 members, disgust one).
    """
    return {g: probs[:, [LABELS.index(m) for m in members]].max(axis=1)
            for g, members in groups.items()}  # fmt: skip


def _check() -> None:
    assert len(LABELS) == 28 and len(set(LABELS)) == 28
    for groups in (EKMAN_GROUPS, SENTIMENT_GROUPS):
        members = [m for ms in groups.values() for m in ms]
        assert sorted(members) == sorted(LABELS), groups


_check()
