"""The same emotion model in-process: same tokenizer.json, ONNX file and postprocessing.

Used by `moodpipe score` without a Triton URL, by `moodpipe eval`, by `moodpipe bench`
for the model-only baseline, and by tests as the reference the pipeline's stored
scores must equal. The postprocessing code is the Triton model's own file.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.resources import triton_models_dir


def _param(config: str, key: str, default: str) -> str:
    found = re.search(
        r'key:\s*"' + re.escape(key) + r'"\s*value:\s*\{\s*string_value:\s*"([^"]*)"', config
    )
    return found.group(1) if found else default


def load_postprocessor(repo: Path, model_name: str = "emotion") -> Any:
    here = repo / f"{model_name}_postprocess" / "1"
    spec = importlib.util.spec_from_file_location("moodpipe_postprocess_logic",
                                                  here / "postprocess_logic.py")  # fmt: skip
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Postprocessor(here / "taxonomy.json")


class LocalEmotionModel:
    def __init__(
        self,
        repository: Path | None = None,
        model_name: str = "emotion",
        onnx_file: str = "model.onnx",
        threads: int = 0,
    ) -> None:
        """`model_name`: an ensemble of `<name>_tokenizer`, `<name>_classifier` and
        `<name>_postprocess` (`emotion`, or the multilingual `emotion_ml`)."""
        repo = repository or triton_models_dir()
        tok_config = (repo / f"{model_name}_tokenizer" / "config.pbtxt").read_text()
        classifier_config = (repo / f"{model_name}_classifier" / "config.pbtxt").read_text()
        self.bucket_rows = int(_param(classifier_config, "length_bucket_rows", "16"))
        ensemble_config = (repo / model_name / "config.pbtxt").read_text()
        self.info = ModelInfo(
            name=model_name,
            version=_param(ensemble_config, "moodpipe_model_version", "unknown"),
        )
        self.post = load_postprocessor(repo, model_name)
        self.thresholds = json.loads(
            (repo / f"{model_name}_postprocess" / "1" / "taxonomy.json").read_text()
        )["thresholds"]
        self.tokenizer = Tokenizer.from_file(
            str(repo / f"{model_name}_tokenizer" / "1" / "tokenizer.json")
        )
        self.tokenizer.enable_truncation(max_length=int(_param(tok_config, "max_length", "128")))
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(repo / f"{model_name}_classifier" / "1" / onnx_file),
            options,
            providers=["CPUExecutionProvider"],
        )

        # Models with a VAD head have a second output (pipeline/model/vad.py).
        self.has_vad = "vad" in {o.name for o in self.session.get_outputs()}

    def score(self, texts: list[str]) -> np.ndarray:
        return self.score_all(texts)[0]

    def score_all(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(n, 28) probabilities and (n, 3) VAD (None without a VAD head)."""
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        out = np.zeros((len(texts), 28), dtype=np.float32)
        vad = np.zeros((len(texts), 3), dtype=np.float32) if self.has_vad else None
        names = ["probabilities", "vad"] if self.has_vad else ["probabilities"]
        # Same length bucketing as the Triton classifier (triton_models/
        # emotion_classifier/1/model.py): sorted by length, `bucket_rows` rows per
        # call, each chunk padded to its own longest text.
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), self.bucket_rows):
            idx = order[start : start + self.bucket_rows]
            width = max(int(lengths[idx].max()), 1)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = encodings[i].ids
                mask[row, : lengths[i]] = 1
            results = self.session.run(names, {"input_ids": ids, "attention_mask": mask})
            out[idx] = results[0]
            if vad is not None:
                vad[idx] = results[1]
        return out, vad

    def predict(self, texts: list[str]) -> Predictions:
        probs, vad = self.score_all(texts)
        return Predictions(
            probabilities=probs,
            labels=self.post.labels_over_threshold(probs),
            ekman=self.post.group(probs, "ekman"),
            sentiment=self.post.group(probs, "sentiment"),
            vad=vad,
        )


def padded(encodings: list[Any]) -> dict[str, np.ndarray]:
    """Token ids and attention mask of `tokenizers` encodings, padded to the longest."""
    width = max(max((len(e.ids) for e in encodings), default=1), 1)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def built(model_name: str, repository: Path | None = None) -> bool:
    """Are `model_name`'s files in the repository? (`emotion_ml` is built at setup.)"""
    repo = repository or triton_models_dir()
    return (repo / f"{model_name}_classifier" / "1" / "model.onnx").exists() and (
        repo / f"{model_name}_tokenizer" / "1" / "tokenizer.json"
    ).exists()


class LocalModelClient:
    """`LocalEmotionModel` behind the inference port (`EmotionModelClient`), so the
    in-process path goes through the same router and code as the Triton one."""

    initial_backoff = 0.0
    max_backoff = 0.0

    def __init__(self, model: LocalEmotionModel) -> None:
        self.model = model

    async def model_info(self) -> ModelInfo:
        return self.model.info

    async def score(self, texts: list[str], data_attempts: int | None = None) -> Predictions:
        return self.model.predict(texts)

    async def probe(self) -> None:
        self.model.predict(["Thanks, that works for me."])
