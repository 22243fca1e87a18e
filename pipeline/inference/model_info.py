"""What the scored events record about the model that scored them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str  # Triton model name, e.g. "emotion"
    version: str  # model version label, e.g. "minilm-l6-lr-1"
    threshold: float  # probability at or above which a label is reported
