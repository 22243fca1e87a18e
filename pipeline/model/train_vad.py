"""`moodpipe train --vad`: valence, arousal and dominance on the English model's own encoder.

The VAD head must ride on the same encoder pass as the emotion head (one call gives
both, at the cost of one 384 -> 3 product). A head over the frozen, emotion-tuned
encoder reaches only valence r 0.67-0.70 on EmoBank (ridge over the pooled output or
over every layer's mean; docs/emotion-model.md), so the encoder is tuned further,
multi-task:

1. The served classifier (`emotion_classifier/1/model.onnx`) is read back into torch,
   weight by weight: training continues from exactly what serves today.
2. Every step takes one EmoBank batch (MSE on standardised V, A, D) and one GoEmotions
   batch (BCE on the 28 labels, as in `moodpipe train`), so the emotion head keeps
   its footing while the encoder learns dimensions. Low encoder lr, linear decay.
3. After each epoch: EmoBank dev Pearson r per dimension and GoEmotions dev macro-F1
   (per-label thresholds). The best epoch by the dev r sum among those whose
   GoEmotions dev F1 stays within `--emotion-tolerance` of the starting model's is
   kept; thresholds are re-tuned on GoEmotions dev for it.

Seeded; a checkpoint every `--checkpoint-every` steps, resumed when present; progress
in `<out>/train.log`.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.emotions import LABELS
from pipeline.model.data import default_data_dir, read_split
from pipeline.model.metrics import tune_thresholds
from pipeline.model.vad import DIMENSIONS, read_emobank

log = logging.getLogger("moodpipe.train_vad")


def build_vad_model(encoder_path: Path) -> Any:
    """MiniLM + the 28-label head + a 3-output VAD head over the same pooled vector."""
    import torch

    from pipeline.model.train import build_model

    class EmotionVadModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            base = build_model(encoder_path)
            self.encoder = base.encoder
            self.head = base.head
            self.vad = torch.nn.Linear(self.encoder.config.hidden_size, len(DIMENSIONS))

        def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            pooled = self.pooled(input_ids, attention_mask)
            return self.head(pooled), self.vad(pooled)  # logits, standardised VAD

    return EmotionVadModel()


def load_served_weights(model: Any, onnx_path: Path) -> int:
    """Copy the served ONNX classifier's weights into `model` (an EmotionVadModel).

    Named initializers map directly (`inner.encoder.X` -> `encoder.X`); the exporter
    left the linear layers' weights anonymous (`onnx::MatMul_N`, transposed), so those
    are found through the MatMul node that reads them, whose name is the module path.
    Returns how many tensors were copied; raises if any parameter is left unset.
    """
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    arrays = {i.name.removesuffix("__fp16"): numpy_helper.to_array(i) for i in graph.initializer}
    # Cast nodes turn the fp16-stored weights back into fp32 tensors of the plain name.
    values: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        values[name] = arr.astype(np.float32)
    params: dict[str, np.ndarray] = {}
    for name, arr in values.items():
        if name.startswith("inner."):
            params[name.removeprefix("inner.")] = arr
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        weight = next((x for x in node.input if x.startswith("onnx::MatMul")), None)
        if weight is None:
            continue
        # '/inner/encoder/encoder/layer.0/attention/self/query/MatMul'
        module = node.name.removeprefix("/inner/").rsplit("/", 1)[0].replace("/", ".")
        params[f"{module}.weight"] = values[weight].T
    state = model.state_dict()
    copied = 0
    with torch.no_grad():
        for name, tensor in state.items():
            if name.startswith("vad."):
                continue
            if name not in params:
                if name.endswith("position_ids") or name.startswith("encoder.pooler."):
                    continue  # buffers, and the pooler the classifier never uses
                raise KeyError(f"the served model has no weight for {name}")
            src = torch.from_numpy(np.ascontiguousarray(params[name]))
            if tuple(src.shape) != tuple(tensor.shape):
                raise ValueError(f"{name}: served {tuple(src.shape)}, model {tuple(tensor.shape)}")
            tensor.copy_(src)
            copied += 1
    return copied


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def predict(model: Any, tokenizer: Any, texts: list[str], max_length: int) -> tuple[Any, Any]:
    """(28 probabilities, standardised VAD) for `texts`."""
    import torch

    model.eval()
    probs = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    vad = np.zeros((len(texts), len(DIMENSIONS)), dtype=np.float32)
    order = np.argsort([len(t) for t in texts])
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            idx = order[start : start + 128]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")  # fmt: skip
            logits, v = model(enc["input_ids"], enc["attention_mask"])
            probs[idx] = torch.sigmoid(logits).numpy()
            vad[idx] = v.numpy()
    model.train()
    return probs, vad


def train(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from pipeline.model.encoder import encoder_dir
    from pipeline.model.train import _batches
    from pipeline.resources import triton_models_dir

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    bank = read_emobank(args.emobank)
    train_rows = np.flatnonzero(bank.split == "train")
    dev_rows = np.flatnonzero(bank.split == "dev")
    mean = bank.vad[train_rows].mean(axis=0)
    std = bank.vad[train_rows].std(axis=0)
    target = ((bank.vad - mean) / std).astype(np.float32)
    ge = read_split(args.goemotions_dir / "train.tsv")
    ge_dev = read_split(args.goemotions_dir / "dev.tsv")
    ge_labels = ge.labels.astype(np.float32)

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir())
    model = build_vad_model(encoder_dir())
    copied = load_served_weights(
        model, triton_models_dir() / "emotion_classifier" / "1" / "model.onnx"
    )
    log.info("started from the served classifier (%d tensors)", copied)
    bank_texts = [bank.texts[i] for i in train_rows]
    bank_lengths = [len(x) for x in tokenizer(bank_texts, truncation=True,
                                              max_length=args.max_length)["input_ids"]]  # fmt: skip
    ge_lengths = [len(x) for x in tokenizer(ge.texts, truncation=True,
                                            max_length=args.max_length)["input_ids"]]  # fmt: skip
    optimizer = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": args.encoder_lr},
            {"params": model.head.parameters(), "lr": args.encoder_lr},
            {"params": model.vad.parameters(), "lr": args.head_lr},
        ],
        weight_decay=0.01,
    )
    steps_per_epoch = (len(bank_texts) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    bce = torch.nn.BCEWithLogitsLoss()
    mse = torch.nn.MSELoss()

    def evaluate(epoch: int) -> dict[str, Any]:
        probs, _ = predict(model, tokenizer, ge_dev.texts, args.max_length)
        thresholds, f1 = tune_thresholds(ge_dev.labels, probs)
        _, vad = predict(model, tokenizer, [bank.texts[i] for i in dev_rows], args.max_length)
        r = {d: round(pearson(vad[:, k], target[dev_rows, k]), 4)
             for k, d in enumerate(DIMENSIONS)}  # fmt: skip
        record = {"epoch": epoch, "goemotions_dev_f1": round(f1, 4), "emobank_dev_r": r,
                  "thresholds": [round(float(t), 3) for t in thresholds]}  # fmt: skip
        log.info("after epoch %d: GoEmotions dev %.4f, EmoBank dev r %s", epoch, f1, r)
        return record

    state: dict[str, Any] = {"step": 0, "history": [], "ge_cursor": 0}
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        torch.set_rng_state(saved["torch_rng"])
        log.info("resumed from %s at step %d", ckpt, state["step"])
    if not state["history"]:
        state["history"].append(evaluate(0))  # the starting point: today's model

    def save_checkpoint() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "state": state,
                    "torch_rng": torch.get_rng_state()}, tmp)  # fmt: skip
        tmp.replace(ckpt)

    model.train()
    started = time.time()
    while state["step"] < total:
        epoch = state["step"] // steps_per_epoch
        rng = random.Random(args.seed * 1000 + epoch)
        bank_batches = _batches(bank_lengths, args.batch_size, rng)
        ge_batches = _batches(ge_lengths, args.batch_size, random.Random(args.seed * 7 + epoch))
        for k in range(state["step"] % steps_per_epoch, len(bank_batches)):
            rows = bank_batches[k]
            enc = tokenizer([bank_texts[i] for i in rows], padding=True, truncation=True,
                            max_length=args.max_length, return_tensors="pt")  # fmt: skip
            _, vad = model(enc["input_ids"], enc["attention_mask"])
            loss_vad = mse(vad, torch.from_numpy(target[train_rows[rows]]))
            ge_rows = ge_batches[k % len(ge_batches)]
            enc = tokenizer([ge.texts[i] for i in ge_rows], padding=True, truncation=True,
                            max_length=args.max_length, return_tensors="pt")  # fmt: skip
            logits, _ = model(enc["input_ids"], enc["attention_mask"])
            loss_ge = bce(logits, torch.from_numpy(ge_labels[ge_rows]))
            loss = args.vad_weight * loss_vad + loss_ge
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            state["step"] += 1
            if state["step"] % 20 == 0:
                log.info("step %d/%d epoch %d vad %.4f emotions %.4f (%.0f s)", state["step"],
                         total, epoch + 1, loss_vad.item(), loss_ge.item(),
                         time.time() - started)  # fmt: skip
            if state["step"] % args.checkpoint_every == 0:
                save_checkpoint()
        record = evaluate(epoch + 1)
        state["history"].append(record)
        torch.save(model.state_dict(), out / f"epoch-{epoch + 1}.pt")
        save_checkpoint()

    start_f1 = state["history"][0]["goemotions_dev_f1"]
    eligible = [h for h in state["history"][1:]
                if h["goemotions_dev_f1"] >= start_f1 - args.emotion_tolerance]  # fmt: skip
    best = max(eligible or state["history"][1:], key=lambda h: sum(h["emobank_dev_r"].values()))
    summary = {
        "best_epoch": best["epoch"],
        "history": state["history"],
        "vad_mean": [float(x) for x in mean],
        "vad_std": [float(x) for x in std],
        "thresholds": dict(zip(LABELS, best["thresholds"], strict=True)),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def parser() -> argparse.ArgumentParser:
    from pipeline.model.corpora import shared_data_dir

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--emobank", type=Path, default=shared_data_dir() / "emobank" / "emobank.csv")
    p.add_argument("--goemotions-dir", type=Path, default=default_data_dir())
    p.add_argument("--out", type=Path, default=Path(".moodpipe/train-vad"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--encoder-lr", type=float, default=3e-5)
    p.add_argument("--head-lr", type=float, default=1e-3)
    p.add_argument("--vad-weight", type=float, default=1.0)
    p.add_argument("--emotion-tolerance", type=float, default=0.005)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint-every", type=int, default=50)
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(args.out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return train(args)
    finally:
        log.removeHandler(handler)
        handler.close()
