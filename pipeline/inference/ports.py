"""The inference stage's port: what the scoring flow needs of an emotion model client.

`TritonEmotionClient` is the production adapter; tests hand the flow recorders with
the same shape (Morpheus's inference stage and Quix Streams' sinks make the same
boundary explicit). Outages are waited out inside `score`; what it raises is the
data's fault, for the flow to isolate.
"""

from __future__ import annotations

from typing import Protocol

from pipeline.inference.model_info import ModelInfo, Predictions


class EmotionModelClient(Protocol):
    # Backoff of the client's own retries, reused when isolating a failing batch.
    initial_backoff: float
    max_backoff: float

    async def model_info(self) -> ModelInfo:
        """Name, version label and threshold of the served model."""
        ...

    async def score(self, texts: list[str], data_attempts: int | None = None) -> Predictions:
        """Predictions for `texts`, in order; raises only what the input causes."""
        ...

    async def probe(self) -> None:
        """A known-good request: raises if the model itself is unwell."""
        ...
