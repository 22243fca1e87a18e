"""Fine-tune the MiniLM encoder for the 28 GoEmotions labels (multi-label).

Mean pooling over the encoder's last hidden state + a linear head, BCE loss,
encoder lr 1e-4 / head lr 1e-3 with linear warm-up and decay, batch 32, max length
64 with dynamic padding. (A plain AutoModelForSequenceClassification at lr 5e-5
collapsed to the base rate here; see ../shared/notes/components.md.) Seeded;
checkpoints every `--checkpoint-every` steps and resumes from the last one; logs to
`<out>/train.log`. Needs the `train` extra.
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
from pipeline.model.metrics import macro_f1, tune_thresholds

log = logging.getLogger("moodpipe.train")


def build_model(encoder_path: Path) -> Any:
    import torch
    from transformers import AutoModel

    class EmotionClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(encoder_path)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(LABELS))

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(pooled)  # logits; sigmoid is applied at export

    return EmotionClassifier()


def _batches(lengths: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length texts.

    Shuffle, cut into pools of 50 batches, sort each pool by length, batch it, then
    shuffle the batches: dynamic padding then pads little (GoEmotions texts run from
    3 to 60+ tokens), about halving the cost of a step on CPU.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lengths.__getitem__)
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def predict(model: Any, tokenizer: Any, texts: list[str], max_length: int) -> np.ndarray:
    import torch

    model.eval()
    out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    order = np.argsort([len(t) for t in texts])
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            idx = order[start : start + 128]
            enc = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            out[idx] = torch.sigmoid(model(enc["input_ids"], enc["attention_mask"])).numpy()
    model.train()
    return out


def train(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from tqdm import tqdm
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from pipeline.model.encoder import encoder_dir

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    train_split = read_split(args.data_dir / "train.tsv")
    dev = read_split(args.data_dir / "dev.tsv")
    n = args.limit or len(train_split.texts)
    texts, labels = train_split.texts[:n], train_split.labels[:n].astype(np.float32)
    dev_n = args.dev_limit or len(dev.texts)

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir())
    lengths = [
        len(ids)
        for ids in tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]
    ]
    model = build_model(encoder_dir())
    optimizer = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": args.encoder_lr},
            {"params": model.head.parameters(), "lr": args.head_lr},
        ],
        weight_decay=0.01,
    )
    steps_per_epoch = (n + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    state: dict[str, Any] = {"step": 0, "history": [], "best": None}
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        random.setstate(saved["py_rng"])
        torch.set_rng_state(saved["torch_rng"])
        log.info("resumed from %s at step %d", ckpt, state["step"])

    def save_checkpoint() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": state,
                "py_rng": random.getstate(),
                "torch_rng": torch.get_rng_state(),
            },
            tmp,
        )
        tmp.replace(ckpt)  # atomic: a kill mid-save keeps the previous checkpoint

    model.train()
    started = time.time()
    with tqdm(total=total, initial=state["step"], desc="training", unit="step") as bar:
        while state["step"] < total:
            epoch = state["step"] // steps_per_epoch
            # The epoch's shuffle depends only on seed and epoch, so a resumed run sees
            # the same batches as an uninterrupted one.
            batches = _batches(lengths, args.batch_size, random.Random(args.seed * 1000 + epoch))
            for batch in batches[state["step"] % steps_per_epoch :]:
                enc = tokenizer(
                    [texts[i] for i in batch],
                    padding=True,
                    truncation=True,
                    max_length=args.max_length,
                    return_tensors="pt",
                )
                logits = model(enc["input_ids"], enc["attention_mask"])
                loss = loss_fn(logits, torch.from_numpy(labels[batch]))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                state["step"] += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch + 1)
                if state["step"] % 50 == 0:
                    log.info(
                        "step %d/%d epoch %d loss %.4f",
                        state["step"],
                        total,
                        epoch + 1,
                        loss.item(),
                    )
                if state["step"] % args.checkpoint_every == 0:
                    save_checkpoint()
                if state["step"] % steps_per_epoch == 0 or state["step"] == total:
                    break
                if args.stop_after and state["step"] >= args.stop_after:
                    save_checkpoint()
                    log.info("stopping at step %d as asked; run again to resume", state["step"])
                    return {"stopped_at": state["step"]}
            probs = predict(model, tokenizer, dev.texts[:dev_n], args.max_length)
            thresholds, f1 = tune_thresholds(dev.labels[:dev_n], probs)
            flat = macro_f1(dev.labels[:dev_n], probs >= 0.3)
            record = {
                "epoch": epoch + 1,
                "step": state["step"],
                "dev_macro_f1_tuned": round(f1, 4),
                "dev_macro_f1_at_0.3": round(flat, 4),
                "elapsed_s": round(time.time() - started),
            }
            state["history"].append(record)
            log.info(
                "dev after epoch %d: macro-F1 %.4f (per-label thresholds), %.4f at 0.3",
                epoch + 1,
                f1,
                flat,
            )
            if state["best"] is None or f1 > state["best"]["dev_macro_f1_tuned"]:
                state["best"] = record
                torch.save(model.state_dict(), out / "best.pt")
                (out / "thresholds.json").write_text(
                    json.dumps(
                        dict(zip(LABELS, (round(float(t), 3) for t in thresholds), strict=True)),
                        indent=1,
                    )
                )
            save_checkpoint()
    summary = {
        "best": state["best"],
        "history": state["history"],
        "train_texts": n,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--out", type=Path, default=Path(".moodpipe/train"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--encoder-lr", type=float, default=1e-4)
    p.add_argument("--head-lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="train on the first N texts only")
    p.add_argument("--dev-limit", type=int, default=0, help="evaluate on the first N dev texts")
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument(
        "--stop-after", type=int, default=0, help="stop (resumably) once this step is reached"
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # A handler of our own: basicConfig does nothing when the host (pytest, a
    # notebook) has configured logging already.
    handler = logging.FileHandler(args.out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        train(args)
    finally:
        log.removeHandler(handler)
        handler.close()


if __name__ == "__main__":
    main()
