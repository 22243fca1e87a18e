"""Which language an event is in, which model scores it, and how well that model covers it.

Preprocess step of the flow: every validated record gets a `Language`:

- `declared`: the record's own `lang` ("" when absent),
- `detected`: py3langid's answer (run when `lang` is absent, or always with
  `MOODPIPE_LANG_DETECT=always`; "" when not run, "und" when unsure),
- `lang`: the one used (declared, else detected), reduced to its base code
  ("pt-BR" -> "pt", "zh-Hant" -> "zh"),
- `route`: the English model (`emotion`) or the multilingual one (`emotion_ml`),
- `coverage`: `full` (the model was trained on text in that language), `partial`
  (cross-lingual transfer only: the encoder was pretrained on the language, the
  emotion head never saw it) or `none` (neither; stored and flagged, left out of
  the mood rollups and the alerts rather than passed off as real).

py3langid is restricted to a configured set of languages: on short posts that is far
more accurate than choosing among all 97 it knows (../shared/notes/components.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Coverage = Literal["full", "partial", "none"]
Route = Literal["english", "multilingual"]
DetectMode = Literal["missing", "always", "off"]

UNDETERMINED = "und"


@dataclass(frozen=True, slots=True)
class Language:
    lang: str
    declared: str
    detected: str
    coverage: Coverage
    route: Route


def base_code(tag: str) -> str:
    """'pt-BR' -> 'pt'; an empty tag stays empty."""
    return tag.split("-", 1)[0].lower()


class LanguageDetector:
    """py3langid over a fixed language set; below `min_confidence` the answer is 'und'."""

    def __init__(self, languages: Iterable[str], min_confidence: float = 0.5) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self.identifier = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
        known = set(self.identifier.nb_classes)
        wanted = sorted(set(languages))
        unknown = [lang for lang in wanted if lang not in known]
        if unknown:
            raise ValueError(f"py3langid does not know the language codes {unknown}")
        self.identifier.set_languages(wanted)
        self.min_confidence = min_confidence

    def detect(self, text: str) -> str:
        try:
            lang, confidence = self.identifier.classify(text)
        except Exception:  # noqa: BLE001 - an odd text must not stop its batch
            return UNDETERMINED
        return str(lang) if confidence >= self.min_confidence else UNDETERMINED


class LanguagePolicy:
    """Resolves each record's `Language` from settings (see `from_settings`)."""

    def __init__(
        self,
        *,
        detect: DetectMode,
        detector: LanguageDetector | None,
        english: Iterable[str] = ("en",),
        multilingual_full: Iterable[str] = (),
        multilingual_partial: Iterable[str] = (),
        multilingual: bool = True,
        assume: str = "",
    ) -> None:
        """`assume`: the language of a record that declares none when detection is off
        ("" = undetermined)."""
        if detect != "off" and detector is None:
            raise ValueError("language detection needs a detector")
        self.detect_mode = detect
        self.detector = detector
        self.english = frozenset(english)
        self.full = frozenset(multilingual_full)
        self.partial = frozenset(multilingual_partial)
        self.multilingual = multilingual
        self.assume = assume
        self._cache: dict[tuple[str, str], Language] = {}

    @classmethod
    def from_settings(cls, settings: Any, multilingual: bool) -> LanguagePolicy:
        english = settings.language_list(settings.english_languages)
        full = settings.language_list(settings.multilingual_languages)
        partial = settings.language_list(settings.multilingual_partial_languages)
        detector = None
        if settings.lang_detect != "off":
            candidates = {*english, *full, *partial}
            candidates |= set(settings.language_list(settings.lang_detect_extra))
            detector = LanguageDetector(candidates, settings.lang_detect_min_confidence)
        return cls(
            detect=settings.lang_detect,
            detector=detector,
            english=english,
            multilingual_full=full,
            multilingual_partial=partial,
            multilingual=multilingual,
        )

    def resolve(self, declared: str, text: str) -> Language:
        detected = ""
        if self.detector is not None and (self.detect_mode == "always" or not declared):
            detected = self.detector.detect(text)
        key = (declared, detected)
        known = self._cache.get(key)
        if known is None:
            if len(self._cache) >= 10_000:  # declared tags are free text: stay bounded
                self._cache.clear()
            known = self._cache[key] = self._decide(declared, detected)
        return known

    def _decide(self, declared: str, detected: str) -> Language:
        lang = base_code(declared) or detected or self.assume or UNDETERMINED
        coverage: Coverage
        route: Route
        if lang in self.english:
            coverage, route = "full", "english"
        elif not self.multilingual:
            # No multilingual model deployed: the English model scores it, flagged.
            coverage, route = "none", "english"
        elif lang in self.full:
            coverage, route = "full", "multilingual"
        elif lang in self.partial:
            coverage, route = "partial", "multilingual"
        else:
            coverage, route = "none", "multilingual"
        return Language(lang, declared, detected, coverage, route)
