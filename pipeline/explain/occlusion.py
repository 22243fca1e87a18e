"""Leave-one-unit-out occlusion: which words drove a text's emotion score.

For a text and a target score (the anger score `angry_customer` uses, or the
negative-sentiment score), the explainer scores the text and every copy of it with
one unit (`pipeline.explain.units`) removed, in one batched call to the same model
that scored the text: the route comes from the same rule (`ModelRouter`), so an
explanation is never computed by a model other than the one behind the alert. A
unit's effect is how much the score drops without it; the top units are the words
behind the score.

Cost: one call with 1 + units texts (at most 1 + `max_units`), paid only by texts
that raised an alert (or that a person asks `moodpipe explain` about).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pipeline.emotions import LABELS, SENTIMENT_GROUPS
from pipeline.explain.units import DEFAULT_MAX_UNITS, Unit, text_units, without
from pipeline.scoring.routing import ModelRouter

DEFAULT_TOP = 5


@dataclass(frozen=True)
class Target:
    """What an explanation explains: a score computed from the 28 probabilities."""

    name: str
    emotions: tuple[str, ...]
    # "sum": the probabilities added up, NOT capped at 1 as the alert's anger score is:
    # a text far over the threshold (capped score 1.0 with or without any one word)
    # would otherwise show no word at all. "max": the strongest of the emotions.
    combine: Literal["sum", "max"]
    _columns: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [e for e in self.emotions if e not in LABELS]
        if unknown or not self.emotions:
            raise ValueError(f"unknown emotion(s) {unknown}; known: {', '.join(LABELS)}")
        object.__setattr__(self, "_columns", [LABELS.index(e) for e in self.emotions])

    def score(self, probabilities: np.ndarray) -> np.ndarray:
        chosen = np.asarray(probabilities, dtype=np.float64)[:, self._columns]
        return chosen.sum(axis=1) if self.combine == "sum" else chosen.max(axis=1)


def anger_target(emotions: Sequence[str] = ("anger", "annoyance", "disgust")) -> Target:
    """The anger score of `angry_customer` (the rule's emotions summed), uncapped."""
    return Target("anger", tuple(emotions), "sum")


def negative_target() -> Target:
    """The negative side of the sentiment score (the strongest negative emotion)."""
    return Target("negative", SENTIMENT_GROUPS["negative"], "max")


@dataclass(frozen=True, slots=True)
class UnitEffect:
    text: str
    start: int
    end: int
    delta: float  # score of the whole text minus the score without this unit


@dataclass(frozen=True)
class Explanation:
    text: str
    lang: str
    target: Target
    score: float  # the target score of the whole text
    effects: tuple[UnitEffect, ...]  # every unit, in text order
    model: str
    model_version: str

    def top(self, k: int = DEFAULT_TOP) -> list[UnitEffect]:
        """The k units whose removal lowers the score most (only those that lower it)."""
        ranked = sorted(self.effects, key=lambda e: (-e.delta, e.start))
        return [e for e in ranked[:k] if e.delta > 0]

    def as_dict(self, k: int = DEFAULT_TOP) -> dict[str, Any]:
        """The JSON stored on an alert (schemas/alert.schema.json `explanation`)."""
        return {
            "method": "occlusion",
            "target": self.target.name,
            "emotions": list(self.target.emotions),
            "score": round(self.score, 4),
            "lang": self.lang,
            "model": self.model,
            "model_version": self.model_version,
            "units": len(self.effects),
            "top": [
                {"word": e.text, "delta": round(e.delta, 4), "start": e.start, "end": e.end}
                for e in self.top(k)
            ],
        }


class Explainer:
    def __init__(self, router: ModelRouter, max_units: int = DEFAULT_MAX_UNITS) -> None:
        self.router = router
        self.max_units = max_units

    async def explain(self, text: str, lang: str = "", target: Target | None = None) -> Explanation:
        """One batched model call: the text and each leave-one-unit-out copy of it.

        `lang`: the language the event was scored as (its stored `lang`), so the same
        route and model answer; "" lets the language policy decide as for a new text.
        Raises what the model client raises (outages are waited out inside it).
        """
        target = target or anger_target()
        language = self.router.resolve(lang, text)
        client = self.router.client(language.route)
        units = text_units(text, self.max_units)
        variants = [text] + [without(text, [u]) for u in units]
        predictions = await client.score(variants)
        model = await client.model_info()
        scores = target.score(predictions.probabilities)
        effects = tuple(
            UnitEffect(u.text, u.start, u.end, float(scores[0] - s))
            for u, s in zip(units, scores[1:], strict=True)
        )
        return Explanation(text, language.lang, target, float(scores[0]), effects,
                           model.name, model.version)  # fmt: skip

    async def scores(self, texts: list[str], lang: str, target: Target) -> np.ndarray:
        """Target scores of texts on one route (the one `lang` and the first text pick)."""
        language = self.router.resolve(lang, texts[0])
        predictions = await self.router.client(language.route).score(texts)
        return target.score(predictions.probabilities)


def removing(text: str, effects: Sequence[UnitEffect]) -> str:
    return without(text, [Unit(e.start, e.end, e.text) for e in effects])
