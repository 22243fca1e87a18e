"""The scoring flow for one batch: records -> language -> inference -> postprocess -> sink."""

from pipeline.scoring.stages import BatchResult, ScoringStages

__all__ = ["BatchResult", "ScoringStages"]
