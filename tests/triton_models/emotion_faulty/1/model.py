"""Constant outputs; an error for every request that holds the marker text."""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils

MARKER = b"TRITON-REJECTS-THIS"


class TritonPythonModel:
    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            texts = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
            if any(MARKER in bytes(t) for t in texts):
                error = pb_utils.TritonError("emotion_faulty: this input is rejected")
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            n = len(texts)
            probs = np.full((n, 28), 0.01, dtype=np.float32)
            probs[:, 27] = 0.9  # neutral
            strings = {"LABELS": b"neutral", "EKMAN": b"neutral", "SENTIMENT": b"neutral"}
            out = [pb_utils.Tensor("PROBABILITIES", probs)] + [
                pb_utils.Tensor(name, np.array([value] * n, dtype=np.object_).reshape(-1, 1))
                for name, value in strings.items()
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=out))
        return responses
