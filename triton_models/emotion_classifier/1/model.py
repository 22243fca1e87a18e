"""Triton python-backend model: the ONNX classifier through onnxruntime (CPU hosts).

All requests of a dynamic batch run as one onnxruntime call; shorter sequences are
padded with attention_mask 0, which leaves their mean-pooled outputs unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        here = Path(args["model_repository"]) / args["model_version"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(here / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def execute(self, requests: list) -> list:
        ids_parts, mask_parts = [], []
        for request in requests:
            ids_parts.append(pb_utils.get_input_tensor_by_name(request, "input_ids").as_numpy())
            mask_parts.append(
                pb_utils.get_input_tensor_by_name(request, "attention_mask").as_numpy()
            )
        width = max(part.shape[1] for part in ids_parts)
        sizes = [part.shape[0] for part in ids_parts]
        ids = np.zeros((sum(sizes), width), dtype=np.int64)
        mask = np.zeros((sum(sizes), width), dtype=np.int64)
        row = 0
        for part_ids, part_mask in zip(ids_parts, mask_parts, strict=True):
            ids[row : row + len(part_ids), : part_ids.shape[1]] = part_ids
            mask[row : row + len(part_ids), : part_mask.shape[1]] = part_mask
            row += len(part_ids)
        (probs,) = self.session.run(["probabilities"], {"input_ids": ids, "attention_mask": mask})
        responses = []
        row = 0
        for size in sizes:
            out = probs[row : row + size].astype(np.float32)
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("probabilities", out)])
            )
            row += size
        return responses
