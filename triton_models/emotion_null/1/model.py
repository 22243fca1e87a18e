"""Constant outputs for any text: the cheapest model with the ensemble's interface."""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils

NEUTRAL = 27  # index of "neutral" in pipeline/emotions.py LABELS


class TritonPythonModel:
    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            n = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().shape[0]
            probs = np.full((n, 28), 0.01, dtype=np.float32)
            probs[:, NEUTRAL] = 0.9
            neutral = np.full((n, 1), b"neutral", dtype=np.object_)
            vad = np.full((n, 3), 3.0, dtype=np.float32)  # the scale's neutral midpoint
            out = [pb_utils.Tensor("PROBABILITIES", probs), pb_utils.Tensor("VAD", vad)] + [
                pb_utils.Tensor(name, neutral) for name in ("LABELS", "EKMAN", "SENTIMENT")
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=out))
        return responses
