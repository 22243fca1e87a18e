"""Triton python-backend model: probabilities -> LABELS, EKMAN, SENTIMENT (BYTES).

LABELS is the comma-separated list of labels at or above their thresholds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        here = Path(args["model_repository"]) / args["model_version"]
        sys.path.insert(0, str(here))
        from postprocess_logic import Postprocessor

        self.post = Postprocessor(here / "taxonomy.json")

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            probs = pb_utils.get_input_tensor_by_name(request, "probabilities").as_numpy()
            labels = [",".join(ls).encode() for ls in self.post.labels_over_threshold(probs)]
            ekman = [g.encode() for g in self.post.group(probs, "ekman")]
            sentiment = [g.encode() for g in self.post.group(probs, "sentiment")]
            out = [
                pb_utils.Tensor(name, np.array(values, dtype=np.object_).reshape(-1, 1))
                for name, values in (("LABELS", labels), ("EKMAN", ekman), ("SENTIMENT", sentiment))
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=out))
        return responses
