"""Probabilities -> labels over per-label thresholds, Ekman group, sentiment group.

Self-contained (numpy + json) so that Triton's python backend runs it on any host,
and moodpipe's in-process scorer loads this very file: one implementation.
`taxonomy.json` beside it (written by `moodpipe export`) holds the label order, the
published GoEmotions group mappings and this model version's thresholds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class Postprocessor:
    def __init__(self, taxonomy_path: Path) -> None:
        taxonomy = json.loads(Path(taxonomy_path).read_text())
        self.labels: list[str] = taxonomy["labels"]
        self.thresholds = np.array([taxonomy["thresholds"][lb] for lb in self.labels], np.float32)
        self.version: str = taxonomy["model_version"]
        index = {label: i for i, label in enumerate(self.labels)}
        self._groups = {
            kind: [(name, [index[m] for m in members]) for name, members in taxonomy[kind].items()]
            for kind in ("ekman", "sentiment")
        }

    def labels_over_threshold(self, probs: np.ndarray) -> list[list[str]]:
        hits = probs >= self.thresholds
        return [[self.labels[j] for j in np.flatnonzero(row)] for row in hits]

    def group(self, probs: np.ndarray, kind: str) -> list[str]:
        """The group whose strongest member label is the most probable."""
        groups = self._groups[kind]
        scores = np.stack([probs[:, members].max(axis=1) for _, members in groups], axis=1)
        return [groups[j][0] for j in scores.argmax(axis=1)]
