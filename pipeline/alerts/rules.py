"""The alert rules file: YAML, validated at start-up, errors name the offending line.

One file holds the defaults for ticket alerts (`angry_customer`), support threads
(`thread`) and brand spike detection (`brand_spike`), plus `overrides` that change
thresholds for a source, a brand or a customer tier. Overrides apply in file order,
so a later, more specific one wins. See `pipeline/alerts/default_rules.yaml`
for a commented example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.alerts.yaml_file import (
    Names,
    SettingsFileError,
    StrictSettings,
    describe,
    read_settings_file,
    read_yaml,
)
from pipeline.emotions import LABELS

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
TIERS: tuple[str, ...] = ("free", "standard", "premium", "enterprise")
SOURCES: tuple[str, ...] = ("post", "ticket")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _seconds(value: Any) -> Any:
    """'90s', '5m', '1.5h', '2d' or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
PositiveDuration = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
# Valence, arousal and dominance: EmoBank's 1-5 scale (pipeline/postprocess/affect.py).
VadScale = Annotated[float, Field(ge=1, le=5)]


class AngryCustomerRule(StrictSettings):
    """When a scored ticket raises `angry_customer`, and how often."""

    emotions: tuple[str, ...] = ("anger", "annoyance", "disgust")
    min_anger: Probability = 0.5  # sum of the `emotions` probabilities, capped at 1
    require_negative: bool = True  # the ticket's sentiment must be negative too
    min_priority: Literal["low", "normal", "high", "urgent"] = "low"
    repeat_contacts: int = Field(default=3, ge=2)  # this many tickets from one customer...
    repeat_window: PositiveDuration = 24 * 3600.0  # ...within this long, negative: alert
    cooldown: Duration = 3600.0  # at most one alert per customer per cooldown...
    escalate_after: int = Field(default=3, ge=2)  # ...unless this many triggers within
    escalation_window: PositiveDuration = 6 * 3600.0  # this long: a critical alert
    excerpt_chars: int = Field(default=280, ge=20, le=5000)
    # Arousal (1 calm - 5 excited) on the anger trigger. `min_arousal`: an angry ticket
    # must be at least this aroused to alert (cold, flat complaints then wait for the
    # repeat-contact rule). `critical_arousal`: an angry ticket this aroused is
    # critical at once. Unset: arousal is not used. An event whose model has no VAD
    # head is never held back by these.
    min_arousal: VadScale | None = None
    critical_arousal: VadScale | None = None

    @field_validator("emotions")
    @classmethod
    def _known_emotions(cls, emotions: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [e for e in emotions if e not in LABELS]
        if unknown:
            raise ValueError(f"unknown emotion(s) {unknown}; known: {', '.join(LABELS)}")
        if not emotions:
            raise ValueError("emotions must name at least one emotion")
        return emotions


class BrandSpikeRule(StrictSettings):
    """Windowed negative share and volume per (source, brand) against its own baseline."""

    window: PositiveDuration = 300.0  # tumbling windows, aligned to the epoch
    grace: Duration = 60.0  # a window closes when event time passes its end + grace
    baseline_alpha: Annotated[float, Field(gt=0, le=1)] = 0.1  # EWMA weight of a new window
    warmup_windows: int = Field(default=6, ge=1)  # baseline windows needed before judging
    negative_k_sigma: float = Field(default=3.0, gt=0)
    recover_k_sigma: float = Field(default=1.0, ge=0)  # hysteresis: back below mean + this
    min_share_std: Probability = 0.05  # floor on the baseline's deviation
    min_volume: int = Field(default=20, ge=1)  # windows smaller than this are not judged
    volume_k_sigma: float = Field(default=4.0, gt=0)
    min_spike_volume: int = Field(default=30, ge=1)  # smallest window a volume spike can be
    examples: int = Field(default=3, ge=0, le=20)  # negative posts quoted in the alert

    @model_validator(mode="after")
    def _hysteresis(self) -> BrandSpikeRule:
        if self.recover_k_sigma >= self.negative_k_sigma:
            raise ValueError("recover_k_sigma must be below negative_k_sigma")
        return self


class ThreadRule(StrictSettings):
    """When a support thread raises `thread_worsening` and `thread_recovered`.

    A turn's mood is its sentiment score (-1 negative .. 1 positive); only the
    customer's turns are judged, agent and bot turns are the replies between them.
    """

    turns: int = Field(default=3, ge=2)  # customer turns compared: the latest and those before
    drop: float = Field(default=0.5, gt=0, le=2)  # fall from the best of them to the latest
    negative_below: float = Field(default=-0.3, ge=-1, le=1)  # ...which must be this low
    # A customer turn angry (the angry_customer emotions over its min_anger) right after
    # an agent or bot reply, when the customer's turn before it was not angry.
    angry_after_reply: bool = True
    cooldown: Duration = 3600.0  # one warning per thread per cooldown
    # After a warning, a customer turn this much below the mood at the warning, or this
    # much angrier (anger score), is critical: it keeps getting worse.
    critical_drop: float = Field(default=0.2, gt=0, le=2)
    recover_above: float = Field(default=0.0, ge=-1, le=1)  # a worsened thread's mood back here
    grace: Duration = 300.0  # turns up to this much older than the thread's latest are placed
    idle_after: PositiveDuration = 3 * 86400.0  # a thread silent this long is forgotten
    max_turns: int = Field(default=40, ge=2, le=1000)  # turns kept in the state

    @model_validator(mode="after")
    def _recovery(self) -> ThreadRule:
        if self.recover_above <= self.negative_below:
            raise ValueError("recover_above must be above negative_below")
        return self


class Match(StrictSettings):
    source: Names | None = None
    brand: Names | None = None
    tier: Names | None = None

    @model_validator(mode="after")
    def _known_values(self) -> Match:
        for name, known in (("source", SOURCES), ("tier", TIERS)):
            values = getattr(self, name) or ()
            unknown = [v for v in values if v not in known]
            if unknown:
                raise ValueError(f"unknown {name} {unknown}; known: {', '.join(known)}")
        if not (self.source or self.brand or self.tier):
            raise ValueError("match needs at least one of source, brand, tier")
        return self

    def matches(self, source: str, brand: str, tier: str | None) -> bool:
        return (
            (self.source is None or source in self.source)
            and (self.brand is None or brand in self.brand)
            and (self.tier is None or (tier is not None and tier in self.tier))
        )


class Override(StrictSettings):
    match: Match
    angry_customer: dict[str, Any] | None = None
    brand_spike: dict[str, Any] | None = None
    thread: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> Override:
        if self.angry_customer is None and self.brand_spike is None and self.thread is None:
            raise ValueError("an override changes angry_customer, brand_spike or thread")
        if self.thread is not None and self.match.source not in (None, ("ticket",)):
            raise ValueError("thread rules are for tickets: match source ticket or none")
        if self.brand_spike is not None and self.match.tier is not None:
            raise ValueError("brand_spike is per source and brand: it cannot match a tier")
        return self


class RulesFile(StrictSettings):
    version: Literal[1] = 1
    angry_customer: AngryCustomerRule = AngryCustomerRule()
    brand_spike: BrandSpikeRule = BrandSpikeRule()
    thread: ThreadRule = ThreadRule()
    overrides: tuple[Override, ...] = ()


class RulesError(SettingsFileError):
    """A rules file that cannot be used; the message names file, line and setting."""


@dataclass
class AlertRules:
    """Validated rules, resolving the effective rule for a source, brand and tier."""

    file: RulesFile
    path: str
    _cache: dict[tuple[str, str, str, str | None], BaseModel] = field(default_factory=dict)

    def angry_customer(self, brand: str, tier: str) -> AngryCustomerRule:
        return self._resolve("angry_customer", "ticket", brand, tier)  # type: ignore[return-value]

    def thread(self, brand: str, tier: str) -> ThreadRule:
        return self._resolve("thread", "ticket", brand, tier)  # type: ignore[return-value]

    def brand_spike(self, source: str, brand: str) -> BrandSpikeRule:
        return self._resolve("brand_spike", source, brand, None)  # type: ignore[return-value]

    def _resolve(self, kind: str, source: str, brand: str, tier: str | None) -> BaseModel:
        key = (kind, source, brand, tier)
        rule = self._cache.get(key)
        if rule is None:
            rule = getattr(self.file, kind)
            for override in self.file.overrides:
                changes = getattr(override, kind)
                if changes and override.match.matches(source, brand, tier):
                    rule = type(rule).model_validate({**rule.model_dump(), **changes})
            self._cache[key] = rule
        return rule

    @property
    def largest_window(self) -> float:
        """Longest window + grace of any brand rule: how long duplicates can matter."""
        rules = [self.file.brand_spike] + [
            BrandSpikeRule.model_validate({**self.file.brand_spike.model_dump(), **o.brand_spike})
            for o in self.file.overrides
            if o.brand_spike
        ]
        return max(r.window + r.grace for r in rules)


def load_rules(path: Path | str | None = None) -> AlertRules:
    """Read and validate a rules file (the packaged defaults when `path` is None)."""
    path = Path(path) if path is not None else DEFAULT_RULES
    return parse_rules(read_settings_file(path, "rules file", RulesError), str(path))


def parse_rules(text: str, name: str = "<rules>") -> AlertRules:
    data, root = read_yaml(text, name, RulesError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(f"{name}:line 1: the rules file must be a mapping of settings")
    try:
        rules = RulesFile.model_validate(data)
    except ValidationError as exc:
        raise RulesError(describe(exc, root, name, ())) from exc
    # An override is a partial rule: check each one merged over the defaults it changes,
    # so a bad threshold in an override is reported at its own line.
    problems = []
    for i, override in enumerate(rules.overrides):
        for kind in ("angry_customer", "brand_spike", "thread"):
            changes = getattr(override, kind)
            if changes is None:
                continue
            base = getattr(rules, kind)
            try:
                type(base).model_validate({**base.model_dump(), **changes})
            except ValidationError as exc:
                problems.append(describe(exc, root, name, ("overrides", i, kind)))
    if problems:
        raise RulesError("\n".join(problems))
    return AlertRules(rules, name)
