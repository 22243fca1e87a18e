"""Inference: the emotion model through Triton, or in-process with onnxruntime."""

from pipeline.inference.model_info import ModelInfo, Predictions

__all__ = ["ModelInfo", "Predictions"]
