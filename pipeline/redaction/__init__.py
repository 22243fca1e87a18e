"""Redaction stage: personal data (e-mail, phone, cards, IBANs, names) out of stored text."""

from pipeline.redaction.redactor import (
    DEFAULT_ENTITIES,
    Redacted,
    RedactionMode,
    Redactor,
    Span,
    may_hold_pii,
)

__all__ = ["DEFAULT_ENTITIES", "Redacted", "RedactionMode", "Redactor", "Span", "may_hold_pii"]
