"""The reply playbook: reviewed, versioned guidance on how to answer an alerted customer.

A YAML file (`default_playbook.yaml` is the packaged one) of entries, each matching
alerts by kind, the Ekman group of the alerted text's top emotion, product and tier,
and giving a tone, a next step and a draft reply template. It is validated at start,
like the rules file, with errors naming the line. `advise(alert)` picks the first
matching entry and fills its template: the draft is for an agent to edit and send;
nothing is sent automatically, and no generative model writes it (none runs reliably
offline here: the reviewed template is the part people can trust).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator

from pipeline.alerts.models import Alert
from pipeline.alerts.rules import TIERS
from pipeline.alerts.yaml_file import (
    Names,
    SettingsFileError,
    StrictSettings,
    describe,
    read_settings_file,
    read_yaml,
)
from pipeline.emotions import EKMAN_GROUPS, EKMAN_OF

DEFAULT_PLAYBOOK = Path(__file__).with_name("default_playbook.yaml")
ADVISED_KINDS: tuple[str, ...] = ("angry_customer", "thread_worsening")
PLACEHOLDERS: tuple[str, ...] = (
    "ticket_id", "thread_id", "product", "tier", "customer_id", "customer_words",
)  # fmt: skip
CUSTOMER_WORDS_CHARS = 120


class PlaybookError(SettingsFileError):
    """A playbook that cannot be used; the message names file, line and setting."""


class EntryMatch(StrictSettings):
    kind: Names | None = None
    emotion: Names | None = None  # Ekman groups
    product: Names | None = None
    tier: Names | None = None

    @field_validator("kind")
    @classmethod
    def _kinds(cls, kinds: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = [k for k in kinds or () if k not in ADVISED_KINDS]
        if unknown:
            raise ValueError(f"unknown kind {unknown}; advised kinds: {', '.join(ADVISED_KINDS)}")
        return kinds

    @field_validator("emotion")
    @classmethod
    def _groups(cls, groups: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = [g for g in groups or () if g not in EKMAN_GROUPS]
        if unknown:
            raise ValueError(f"unknown emotion group {unknown}; known: {', '.join(EKMAN_GROUPS)}")
        return groups

    @field_validator("tier")
    @classmethod
    def _tiers(cls, tiers: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = [t for t in tiers or () if t not in TIERS]
        if unknown:
            raise ValueError(f"unknown tier {unknown}; known: {', '.join(TIERS)}")
        return tiers

    def matches(self, kind: str, group: str, product: str, tier: str) -> bool:
        return all(
            allowed is None or value in allowed
            for allowed, value in ((self.kind, kind), (self.emotion, group),
                                   (self.product, product), (self.tier, tier))
        )  # fmt: skip


class Entry(StrictSettings):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    match: EntryMatch
    tone: Annotated[str, Field(min_length=3, max_length=300)]
    next_step: Annotated[str, Field(min_length=3, max_length=300)]
    template: Annotated[str, Field(min_length=10, max_length=2000)]

    @field_validator("template")
    @classmethod
    def _placeholders(cls, template: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:  # an unmatched { or }
            raise ValueError(f"template is not a valid format string: {exc}") from None
        unknown = [f for f in fields if f not in PLACEHOLDERS]
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {['{' + f + '}' for f in unknown]}; known: "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            )
        return template


class PlaybookFile(StrictSettings):
    version: Annotated[int, Field(ge=1)]
    reviewed_by: Annotated[str, Field(min_length=1)]
    reviewed_at: date
    entries: Annotated[tuple[Entry, ...], Field(min_length=1)]

    @field_validator("entries")
    @classmethod
    def _unique_ids(cls, entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise ValueError(f"entry id {entry.id!r} appears twice")
            seen.add(entry.id)
        return entries


@dataclass(frozen=True)
class Playbook:
    file: PlaybookFile
    path: str

    def entry_for(self, kind: str, group: str, product: str, tier: str) -> Entry | None:
        for entry in self.file.entries:
            if entry.match.matches(kind, group, product, tier):
                return entry
        return None

    def advise(self, alert: Alert) -> dict[str, Any] | None:
        """The reply guidance for an alert, or None (a kind with no advice, no match)."""
        if alert.kind not in ADVISED_KINDS:
            return None
        evidence = alert.evidence
        group = alert_group(alert)
        product, tier = str(evidence.get("product") or ""), str(evidence.get("customer_tier") or "")
        entry = self.entry_for(alert.kind, group, product, tier)
        if entry is None:
            return None
        values = {
            "ticket_id": str(evidence.get("ticket_id") or ""),
            "thread_id": str(evidence.get("thread_id") or ""),
            "product": product or "your",
            "tier": tier,
            "customer_id": str(evidence.get("customer_id") or ""),
            "customer_words": customer_words(alert),
        }
        return {
            "playbook": Path(self.path).name,
            "playbook_version": self.file.version,
            "entry": entry.id,
            "emotion_group": group,
            "tone": entry.tone,
            "next_step": entry.next_step,
            "draft": " ".join(entry.template.format_map(values).split()),
        }


def alert_group(alert: Alert) -> str:
    """The Ekman group behind an alert: its text's top emotion, else its reason."""
    evidence = alert.evidence
    top = evidence.get("top_emotion")
    if isinstance(top, str) and top in EKMAN_OF:
        return EKMAN_OF[top]
    emotions = evidence.get("emotions")
    if isinstance(emotions, dict) and emotions:
        return EKMAN_OF.get(max(emotions, key=lambda e: emotions[e]), "anger")
    return "anger" if alert.kind == "angry_customer" else "sadness"


_SENTENCE = re.compile(r"[^.!?\u3002\uff01\uff1f\n]+[.!?\u3002\uff01\uff1f]*")


def customer_words(alert: Alert) -> str:
    """The customer's sentence around the alert's top explained word (else its first
    sentence), at most CUSTOMER_WORDS_CHARS characters."""
    excerpt = str(alert.evidence.get("excerpt") or "")
    sentences = [m.group().strip() for m in _SENTENCE.finditer(excerpt) if m.group().strip()]
    if not sentences:
        return ""
    chosen = sentences[0]
    texts = (alert.explanation or {}).get("texts") or []
    top = texts[0].get("top") if texts else None
    if top:
        word = top[0]["word"]
        chosen = next((s for s in sentences if word in s), chosen)
    if len(chosen) > CUSTOMER_WORDS_CHARS:
        chosen = chosen[: CUSTOMER_WORDS_CHARS - 1].rstrip() + "\u2026"
    return chosen


def load_playbook(path: Path | str | None = None) -> Playbook:
    """Read and validate a playbook (the packaged one when `path` is None)."""
    path = Path(path) if path is not None else DEFAULT_PLAYBOOK
    return parse_playbook(read_settings_file(path, "playbook", PlaybookError), str(path))


def parse_playbook(text: str, name: str = "<playbook>") -> Playbook:
    data, root = read_yaml(text, name, PlaybookError)
    if not isinstance(data, dict):
        raise PlaybookError(f"{name}:line 1: the playbook must be a mapping of settings")
    try:
        return Playbook(PlaybookFile.model_validate(data), name)
    except ValidationError as exc:
        raise PlaybookError(describe(exc, root, name, (), "reply playbook")) from exc
