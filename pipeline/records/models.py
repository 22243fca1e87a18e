"""Typed input records and the rejection a bad record turns into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

RejectCode = Literal[
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "schema",
    "text_empty",
    "text_too_long",
    "record_too_large",
    "bad_timestamp",
    "too_deep",  # JSON nested deeper than the validator's limit
    "invalid_text",  # an identifier with control characters or lone surrogates
    "validation_failed",  # the validator itself failed on the record (a bug, isolated)
    # Valid records that a later stage failed on, alone, while it worked for others:
    "poison_inference",  # Triton (or the client) rejects this text
    "poison_postprocess",  # the model's output for it could not be made into a row
    "poison_storage",  # ClickHouse rejects this row
    "poison_publish",  # stored, but the scored-topic message could not be produced
    "not_a_scored_event",  # on the scored topic: not written by a moodpipe worker
    "not_an_alert",  # on the alerts topic: not written by a moodpipe worker
]


AuthorRole = Literal["customer", "agent", "bot"]
AUTHOR_ROLES: tuple[str, ...] = ("customer", "agent", "bot")


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a record cannot be scored; it goes to the dead-letter topic with this."""

    code: RejectCode
    reason: str


@dataclass(frozen=True, slots=True)
class SocialPost:
    id: str
    brands: tuple[str, ...]
    platform: str
    author: str
    text: str
    lang: str
    created_at: datetime

    source = "post"

    @property
    def brand(self) -> str:
        return self.brands[0]

    @property
    def score_text(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class SupportTicket:
    id: str
    customer_id: str
    customer_tier: str
    brand: str
    product: str
    channel: str
    subject: str
    body: str
    priority: str
    lang: str
    created_at: datetime
    # The thread (case) this message belongs to: its own id for a one-message thread.
    thread_id: str = ""
    author_role: AuthorRole = "customer"

    source = "ticket"

    @property
    def from_customer(self) -> bool:
        return self.author_role == "customer"

    @property
    def score_text(self) -> str:
        # The subject often carries the sharpest wording ("STILL broken!!"), so it is
        # scored together with the body.
        return f"{self.subject}\n{self.body}" if self.subject else self.body


InputRecord = SocialPost | SupportTicket
