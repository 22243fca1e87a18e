"""Readers for the multilingual corpora: XED (training) and BRIGHTER dev (evaluation only).

XED (Öhman et al., COLING 2020; CC BY 4.0): lines of `text<TAB>label ids`, Plutchik's
eight emotions (1 anger, 2 anticipation, 3 disgust, 4 fear, 5 joy, 6 sadness,
7 surprise, 8 trust). Six of them are Ekman groups, and that is how they are used:
as group labels, not as the GoEmotions label of the same name (XED's "joy" covers
GoEmotions' amusement, excitement, gratitude, ... too). Anticipation and trust map
to nothing; a line with only those counts as "none of the six".

BRIGHTER dev (SemEval-2025 Task 11, track A; CC BY 4.0, no commercial use without the
authors' approval) is read in place from `../shared/data/brighter-dev/` and is never
used for training or thresholds (its README).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The six emotions XED and BRIGHTER share with the Ekman groups, in this order.
SIX: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
_XED_TO_SIX = {1: 0, 3: 1, 4: 2, 5: 3, 6: 4, 7: 5}

# XED projection files by language (ISO 639-1; zh = simplified, tw = traditional,
# cn = mixed Chinese). Chosen for the languages brands are discussed in and that
# BRIGHTER covers (Hindi and Ukrainian have no XED projection).
XED_PROJECTIONS: dict[str, str] = {
    "zh": "zh-projections.tsv",
    "zh-cn": "cn-projections.tsv",
    "zh-tw": "tw-projections.tsv",
    "de": "de-projections.tsv",
    "es": "es-projections.tsv",
    "ru": "ru-projections.tsv",
    "pt": "pt-projections.tsv",
    "ro": "ro-projections.tsv",
    "sv": "sv-projections.tsv",
    "fr": "fr-projections.tsv",
    "it": "it-projections.tsv",
    "nl": "nl-projections.tsv",
    "pl": "pl-projections.tsv",
}

# BRIGHTER file code -> ISO 639-1 language code used in moodpipe events.
BRIGHTER_LANGUAGES: dict[str, str] = {
    "chn": "zh", "deu": "de", "esp": "es", "rus": "ru", "hin": "hi", "ptbr": "pt",
    "ukr": "uk", "swe": "sv", "ron": "ro", "eng": "en",
}  # fmt: skip
# The non-English languages the mean target is taken over (BRIGHTER README).
BRIGHTER_TARGET_CODES: tuple[str, ...] = (
    "deu", "esp", "rus", "hin", "ptbr", "ukr", "swe", "ron",
)  # fmt: skip


@dataclass(frozen=True)
class GroupLabelled:
    """Texts with 0/1 labels over SIX (columns a corpus lacks are marked in `known`)."""

    texts: list[str]
    labels: np.ndarray  # (n, 6) int8
    known: np.ndarray  # (6,) bool: which of SIX this corpus annotates
    language: str


def shared_data_dir() -> Path:
    env = os.environ.get("MOODPIPE_SHARED_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def read_xed(path: Path, language: str, limit: int = 0) -> GroupLabelled:
    texts: list[str] = []
    rows: list[list[int]] = []
    with path.open(encoding="utf-8", newline="") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2 or not parts[0].strip():
                continue  # a few projection lines carry extra columns: skipped
            try:
                ids = [int(x) for x in parts[1].split(",") if x.strip()]
            except ValueError:
                continue
            row = [0] * len(SIX)
            for i in ids:
                if i in _XED_TO_SIX:
                    row[_XED_TO_SIX[i]] = 1
            texts.append(parts[0])
            rows.append(row)
            if limit and len(texts) >= limit:
                break
    return GroupLabelled(
        texts=texts,
        labels=np.array(rows, dtype=np.int8).reshape(-1, len(SIX)),
        known=np.ones(len(SIX), dtype=bool),
        language=language,
    )


def read_brighter(path: Path) -> GroupLabelled:
    """One BRIGHTER dev file; emotions a language lacks (English: disgust) are unknown."""
    code = path.stem
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        known = np.array([name in columns for name in SIX])
        texts, rows = [], []
        for record in reader:
            texts.append(record["text"])
            rows.append([int(record[name]) if name in columns else 0 for name in SIX])
    return GroupLabelled(
        texts=texts,
        labels=np.array(rows, dtype=np.int8).reshape(-1, len(SIX)),
        known=known,
        language=BRIGHTER_LANGUAGES.get(code, code),
    )
