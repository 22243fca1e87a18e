"""Postprocess stage: a batch's probabilities + records -> scored_events rows and messages."""

from pipeline.postprocess.rows import (
    COLUMNS,
    BatchSummary,
    scored_message,
    scored_row,
    summarise,
    summarise_predictions,
)

__all__ = [
    "COLUMNS",
    "BatchSummary",
    "scored_message",
    "scored_row",
    "summarise",
    "summarise_predictions",
]
