"""PII redaction of what moodpipe stores and publishes (docs/configuration.md, "PII redaction").

The model scores the original text (emotion does not depend on an address); what
goes to ClickHouse, the scored topic, alerts and notifications is redacted here.
Detection is Microsoft Presidio's: e-mail addresses, phone numbers (Google's
phonenumbers), payment cards (Luhn checked), IBANs (checksum), IP addresses, plus a
recogniser of URLs that carry credentials; person names when a spaCy NER model is
installed and named in `MOODPIPE_PII_SPACY_MODEL` (none ships offline).

Modes: `mask` replaces a span with its kind (`<EMAIL_ADDRESS>`); `hash` with its
kind and a keyed digest (`<EMAIL_ADDRESS:5f0c2a9e1b7d>`), so the same address is
recognisably the same across events without being readable (the key is a secret:
unkeyed digests of phone numbers are trivially reversed by trying them all).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

RedactionMode = Literal["off", "mask", "hash"]

# Presidio's names for what we redact; URL_CREDENTIALS is ours (see _url_credentials).
DEFAULT_ENTITIES = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
    "URL_CREDENTIALS", "PERSON",
)  # fmt: skip
# Presidio's default minimum score keeps weak matches; a phone number found by the
# phonenumbers matcher scores 0.4, order numbers and the like score lower.
MIN_SCORE = 0.4
# Without a name model, every entity we detect shows one of these signs, so most texts
# skip the analyzer (~120 µs per text even when it finds nothing): an e-mail shape
# (not an @mention), credentials in a URL, an IPv4 or IPv6 shape, or at least 7
# digits (phone numbers have 7 or more; card numbers and IBANs more still).
_SIGNS = re.compile(
    r"\w@[\w-]+\.\w|://\S*@|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d|[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f]"
)
_DIGITS = "0123456789"


def may_hold_pii(text: str) -> bool:
    if _SIGNS.search(text):
        return True
    return sum(map(text.count, _DIGITS)) >= 7  # ten C-level scans, no Python loop


log = logging.getLogger("moodpipe.redaction")


@dataclass(frozen=True, slots=True)
class Span:
    kind: str  # EMAIL_ADDRESS, PHONE_NUMBER, ...
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    spans: int  # how many PII spans were replaced


class Redactor:
    """Finds and replaces PII spans; one per worker process (loading takes ~1 s)."""

    def __init__(
        self,
        mode: RedactionMode = "mask",
        *,
        hash_key: bytes = b"",
        entities: tuple[str, ...] = DEFAULT_ENTITIES,
        spacy_model: str = "",
        language: str = "en",
    ) -> None:
        if mode == "hash" and not hash_key:
            raise ValueError("hash mode needs a key (MOODPIPE_PII_HASH_KEY)")
        self.mode = mode
        self.hash_key = hash_key
        self.language = language
        self.names = bool(spacy_model) and "PERSON" in entities
        self.entities = [e for e in entities if e != "PERSON" or self.names]
        self._analyzer = _analyzer(spacy_model, language, self.entities) if mode != "off" else None

    def find(self, text: str) -> list[Span]:
        """The PII spans of a text, left to right, none overlapping."""
        if self._analyzer is None or not text:
            return []
        if not self.names and not may_hold_pii(text):
            return []
        found = self._analyzer.analyze(
            text, language=self.language, entities=self.entities, score_threshold=MIN_SCORE
        )
        return [Span(r.entity_type, r.start, r.end) for r in _non_overlapping(found)]

    def redact(self, text: str) -> Redacted:
        spans = self.find(text)
        if not spans:
            return Redacted(text, 0)
        out = []
        end = len(text)
        for span in reversed(spans):  # right to left keeps earlier offsets valid
            out.append(text[span.end : end])
            out.append(self._replacement(span.kind, text[span.start : span.end]))
            end = span.start
        out.append(text[:end])
        return Redacted("".join(reversed(out)), len(spans))

    def _replacement(self, kind: str, value: str) -> str:
        if self.mode == "hash":
            digest = hmac.new(self.hash_key, value.encode(), hashlib.sha256).hexdigest()
            return f"<{kind}:{digest[:12]}>"
        return f"<{kind}>"


def _non_overlapping(found: list[Any]) -> list[Any]:
    """Longest, then highest-scoring, spans win where recognisers overlap (an e-mail
    inside a credentials URL, a phone number inside a card number)."""
    chosen: list[Any] = []
    for span in sorted(found, key=lambda r: (-(r.end - r.start), -r.score, r.start)):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda r: r.start)


@contextmanager
def _without_optional_ml_imports() -> Iterator[None]:
    """Presidio and spaCy's thinc import torch and transformers when installed (for
    NLP engines we do not use): 4-5 s of start-up per worker where the `train` extra
    is installed. While they load, those two read as absent (they handle that); any
    later import of them works as usual."""
    blocked = [m for m in ("torch", "transformers") if m not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def _analyzer(spacy_model: str, language: str, entities: list[str]) -> Any:
    _offline_public_suffixes()
    with _without_optional_ml_imports():
        import spacy
        from presidio_analyzer import (
            AnalyzerEngine,
            Pattern,
            PatternRecognizer,
            RecognizerRegistry,
        )
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            SpacyRecognizer,
        )
    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)

    if spacy_model:
        engine = SpacyNlpEngine(models=[{"lang_code": language, "model_name": spacy_model}])
        engine.load()
    else:
        # Pattern recognisers need tokens only: a blank pipeline, no model download.
        engine = SpacyNlpEngine(models=[{"lang_code": language, "model_name": "blank"}])
        engine.nlp = {language: spacy.blank(language)}  # type: ignore[assignment]
    # Only the recognisers we use: Presidio's predefined set has dozens of national-id
    # patterns that would each run on every text.
    available = {
        "EMAIL_ADDRESS": lambda: EmailRecognizer(supported_language=language),
        "PHONE_NUMBER": lambda: _phone_recognizer(PhoneRecognizer, language),
        "CREDIT_CARD": lambda: CreditCardRecognizer(supported_language=language),
        "IBAN_CODE": lambda: IbanRecognizer(supported_language=language),
        "IP_ADDRESS": lambda: IpRecognizer(supported_language=language),
        "URL_CREDENTIALS": lambda: _url_credentials(Pattern, PatternRecognizer, language),
        "PERSON": lambda: SpacyRecognizer(
            supported_language=language, supported_entities=["PERSON"]
        ),
    }
    unknown = sorted(set(entities) - set(available))
    if unknown:
        raise ValueError(f"unknown PII entities {unknown}; choose from {sorted(available)}")
    registry = RecognizerRegistry(
        recognizers=[available[e]() for e in entities], supported_languages=[language]
    )
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=[language])


def _phone_recognizer(base: Any, language: str) -> Any:
    class PhoneWithDigits(base):
        """phonenumbers' matcher tries every region on every text and is ~3/4 of the
        analyzer's time; no phone number has fewer than 7 digits, so skip those."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> Any:
            if sum(c.isdigit() for c in text) < 7:
                return []
            return super().analyze(text, entities, nlp_artifacts)

    # Leniency 2 (phonenumbers' STRICT_GROUPING): the digits must be grouped the way
    # numbers are written in their region. It drops ids such as "2026-000123" that
    # the default (1, VALID) took for phone numbers, and kept every written phone
    # format tried (dots, brackets, slashes, spaces, +country, 00country).
    return PhoneWithDigits(supported_language=language, leniency=2)


def _url_credentials(pattern: Any, recognizer: Any, language: str) -> Any:
    # scheme://user:password@host - the whole URL goes: its host may be internal.
    url = pattern(
        "url with credentials", r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]+:[^\s/@]+@\S+", 0.9
    )
    return recognizer(
        supported_entity="URL_CREDENTIALS", patterns=[url], supported_language=language
    )


def _offline_public_suffixes() -> None:
    """Presidio validates e-mail domains with tldextract, which fetches the public
    suffix list from the internet on first use (and logs an error when it cannot).
    Use the snapshot shipped inside tldextract instead: no network, same answers."""
    import tldextract.tldextract as tld

    if tld.TLD_EXTRACTOR.suffix_list_urls:
        tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None)
