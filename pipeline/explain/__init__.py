"""Why a text scored as it did: leave-one-unit-out occlusion through the scoring model."""

from pipeline.explain.occlusion import (
    Explainer,
    Explanation,
    Target,
    UnitEffect,
    anger_target,
    negative_target,
)
from pipeline.explain.units import Unit, text_units

__all__ = [
    "Explainer",
    "Explanation",
    "Target",
    "Unit",
    "UnitEffect",
    "anger_target",
    "negative_target",
    "text_units",
]
