"""Triton python-backend model: TEXT (BYTES) -> input_ids, attention_mask (INT64)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        max_length = int(config["parameters"]["max_length"]["string_value"])
        here = Path(args["model_repository"]) / args["model_version"]
        self.tokenizer = Tokenizer.from_file(str(here / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.no_padding()

    def execute(self, requests: list) -> list:
        texts: list[str] = []
        sizes: list[int] = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
            sizes.append(len(raw))
            texts.extend(
                t.decode("utf-8", errors="replace") if isinstance(t, bytes) else str(t) for t in raw
            )
        encodings = self.tokenizer.encode_batch(texts)
        width = max((len(e.ids) for e in encodings), default=1)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for i, enc in enumerate(encodings):
            ids[i, : len(enc.ids)] = enc.ids
            mask[i, : len(enc.ids)] = 1
        responses = []
        start = 0
        for size in sizes:
            stop = start + size
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("input_ids", ids[start:stop]),
                        pb_utils.Tensor("attention_mask", mask[start:stop]),
                    ]
                )
            )
            start = stop
        return responses
