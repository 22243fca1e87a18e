"""The same emotion model in-process: same tokenizer.json, same ONNX file, no Triton.

Used by `moodpipe bench` for the model-only baseline and by tests as the reference
the pipeline's stored scores must equal.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from pipeline.inference.model_info import ModelInfo
from pipeline.resources import triton_models_dir


def _param(config: str, key: str, default: str) -> str:
    found = re.search(
        r'key:\s*"' + re.escape(key) + r'"\s*value:\s*\{\s*string_value:\s*"([^"]*)"', config
    )
    return found.group(1) if found else default


class LocalEmotionModel:
    def __init__(self, repository: Path | None = None, model_name: str = "emotion") -> None:
        repo = repository or triton_models_dir()
        tok_config = (repo / "emotion_tokenizer" / "config.pbtxt").read_text()
        classifier_config = (repo / "emotion_classifier" / "config.pbtxt").read_text()
        self.bucket_rows = int(_param(classifier_config, "length_bucket_rows", "16"))
        ensemble_config = (repo / model_name / "config.pbtxt").read_text()
        self.info = ModelInfo(
            name=model_name,
            version=_param(ensemble_config, "moodpipe_model_version", "unknown"),
            threshold=float(_param(ensemble_config, "moodpipe_threshold", "0.3")),
        )
        self.tokenizer = Tokenizer.from_file(
            str(repo / "emotion_tokenizer" / "1" / "tokenizer.json")
        )
        self.tokenizer.enable_truncation(max_length=int(_param(tok_config, "max_length", "128")))
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(repo / "emotion_classifier" / "1" / "model.onnx"),
            options,
            providers=["CPUExecutionProvider"],
        )

    def score(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        out = np.zeros((len(texts), 28), dtype=np.float32)
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
            (out[idx],) = self.session.run(
                ["probabilities"], {"input_ids": ids, "attention_mask": mask}
            )
        return out
