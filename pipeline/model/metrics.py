"""Multi-label metrics: macro-F1, per-label F1 and per-label threshold tuning."""

from __future__ import annotations

import numpy as np


def per_label_f1(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    y = y.astype(bool)
    pred = pred.astype(bool)
    tp = (y & pred).sum(0)
    fp = (~y & pred).sum(0)
    fn = (y & ~pred).sum(0)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    return float(per_label_f1(y, pred).mean())


def tune_thresholds(
    y: np.ndarray, probs: np.ndarray, grid: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Per label, the threshold maximising that label's F1 on (y, probs)."""
    grid = grid if grid is not None else np.round(np.arange(0.05, 0.95, 0.025), 3)
    best = np.full(y.shape[1], 0.5)
    for j in range(y.shape[1]):
        scores = [per_label_f1(y[:, j : j + 1], probs[:, j : j + 1] >= t)[0] for t in grid]
        best[j] = grid[int(np.argmax(scores))]
    return best, macro_f1(y, probs >= best)
