"""Valence, arousal and dominance: EmoBank, and the regression head over each encoder.

EmoBank (Buechel and Hahn, EACL 2017; CC BY-SA 4.0): 10,062 English sentences with
mean reader/writer ratings on 1-5 (3 = neutral), split train/dev/test by the file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIMENSIONS: tuple[str, ...] = ("valence", "arousal", "dominance")


@dataclass(frozen=True)
class EmoBank:
    texts: list[str]
    vad: np.ndarray  # (n, 3) float32 on EmoBank's 1-5 scale
    split: np.ndarray  # (n,) "train" | "dev" | "test"
    genre: np.ndarray  # (n,) see GENRES


def read_emobank(path: Path) -> EmoBank:
    texts, vad, split, genre = [], [], [], []
    with path.open(encoding="utf-8", newline="") as f:
        for record in csv.DictReader(f):
            text = (record.get("text") or "").strip()
            if not text:
                continue
            texts.append(text)
            vad.append([float(record["V"]), float(record["A"]), float(record["D"])])
            split.append(record["split"])
            genre.append(genre_of(record["id"]))
    return EmoBank(texts, np.array(vad, dtype=np.float32), np.array(split), np.array(genre))


# EmoBank's sentences come from SemEval-2007 Task 14 (news headlines) and from six
# genres of MASC. The file carries only the MASC document name in each id; the genre
# of each document is MASC's folder (blog, essays, fiction, letters, newspaper,
# travel guides), written out here from MASC's layout.
_MASC_GENRES: dict[str, tuple[str, ...]] = {
    "blog": (
        "Acephalous-Cant-believe", "Acephalous-Internet", "Anti-Terrorist",
        "Fermentation_Eminent-Domain", "Fermentation_HR5034", "How_soon-Fans",
        "How_soon-Lebron-James", "Tupelo-Honey-Cafe", "Uprooted_Bike",
        "Uprooted_Farming-on-Sand", "blog-monastery", "blog-new-year's-resolutions",
        "lessig_blog-carbon", "detroit", "Seedbombing", "cable_spool_fort", "vampires",
    ),
    "essays": (
        "A_defense_of_Michael_Moore", "Ant_Robot", "Black_and_white", "Homosexuality",
        "anth_essay_4", "Ohio_Steel", "Bartok", "Madame_White_Snake",
    ),
    "fiction": (
        "Nathans_Bylichka", "captured_moments", "lw1", "The_Black_Willow", "easy_money",
        "hotel-california",
    ),
    "travel_guides": (
        "HistoryLasVegas", "IntroDublin", "IntroHongKong", "WhatToHongKong",
        "WhereToHongKong", "Italy",
    ),
    "newspaper": ("20000410_nyt-NEW", "20000415_apw_eng-NEW", "20000419_apw_eng-NEW",
                  "20020731-nyt", "A1", "sucker"),
}  # fmt: skip
_GENRE_OF = {doc: genre for genre, docs in _MASC_GENRES.items() for doc in docs}
GENRES: tuple[str, ...] = (
    "blog", "essays", "fiction", "letters", "newspaper", "travel_guides", "headlines",
)  # fmt: skip


def genre_of(sentence_id: str) -> str:
    doc = sentence_id.rsplit("_", 2)[0]
    if doc == "SemEval":
        return "headlines"
    if doc in _GENRE_OF:
        return _GENRE_OF[doc]
    if doc.startswith(("NYTnewswire", "wsj_")):
        return "newspaper"
    # The rest are MASC's letters: fundraising and customer letters (110CYL068,
    # aspca1, audubon1, wwf12, ...).
    return "letters"


# --- the head over an ONNX classifier's pooled features ---------------------------------


def pooled_tensor(graph: object) -> str:
    """The sentence embedding the emotion head reads: the first input of the Gemm
    (or MatMul) whose output the final Sigmoid turns into `probabilities`."""
    nodes = list(graph.node)  # type: ignore[attr-defined]
    producer = {out: n for n in nodes for out in n.output}
    sigmoid = producer["probabilities"]
    head = producer[sigmoid.input[0]]
    if head.op_type == "Add":  # MatMul + Add exports
        head = producer[head.input[0]] if head.input[0] in producer else producer[head.input[1]]
    return str(head.input[0])


def exposing_pooled(model_path: Path) -> bytes:
    """The model with its pooled sentence embedding as an extra output `pooled`."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(model_path))
    name = pooled_tensor(model.graph)
    model.graph.node.append(helper.make_node("Identity", [name], ["pooled"]))
    model.graph.output.append(helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None))
    return bytes(model.SerializeToString())
