"""Language stage: which language a record is in, which model scores it, and how well."""

from pipeline.language.policy import (
    UNDETERMINED,
    Coverage,
    DetectMode,
    Language,
    LanguageDetector,
    LanguagePolicy,
    Route,
    base_code,
)

__all__ = [
    "UNDETERMINED",
    "Coverage",
    "DetectMode",
    "Language",
    "LanguageDetector",
    "LanguagePolicy",
    "Route",
    "base_code",
]
