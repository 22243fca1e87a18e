"""GoEmotions TSV reading (text, label ids, comment id)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.emotions import LABELS


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: np.ndarray  # (n, 28) of 0/1
    ids: list[str]


def read_split(path: Path) -> Split:
    texts: list[str] = []
    ids: list[str] = []
    rows: list[list[int]] = []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            text, label_ids, comment_id = row[0], row[1], row[2]
            texts.append(text)
            ids.append(comment_id)
            rows.append([int(x) for x in label_ids.split(",")])
    labels = np.zeros((len(texts), len(LABELS)), dtype=np.int8)
    for i, ls in enumerate(rows):
        labels[i, ls] = 1
    return Split(texts=texts, labels=labels, ids=ids)


def default_data_dir() -> Path:
    """`../shared/data/goemotions` beside the checkout, overridable by MOODPIPE_GOEMOTIONS_DIR."""
    import os

    env = os.environ.get("MOODPIPE_GOEMOTIONS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "goemotions"
