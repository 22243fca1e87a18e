"""Emotion model: building, exporting and running the ONNX classifier."""
