"""What the alert detector reads (a scored event) and what it raises (an alert).

Alert ids are deterministic (kind + subject + the ticket or window that caused it),
so an alert raised twice, e.g. re-raised after a crash, is the same alert: the
ClickHouse table keeps one row and notifiers skip ids already delivered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

AlertKind = Literal[
    "angry_customer", "thread_worsening", "thread_recovered",
    "brand_mood_spike", "brand_mood_recovered", "brand_volume_spike",
]  # fmt: skip
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class ScoredEvent:
    """The fields of a scored_event message (schemas/scored_event.schema.json) alerts use."""

    event_id: str
    source: str
    brand: str
    created_at: float  # epoch seconds, event time
    text: str
    scores: dict[str, float]
    sentiment: str
    sentiment_score: float
    top_emotion: str
    ekman: str
    labels: tuple[str, ...] = ()
    customer_id: str = ""
    customer_tier: str = ""
    priority: str = ""
    product: str = ""
    channel: str = ""
    subject: str = ""
    model_coverage: str = "full"
    # EmoBank scale 1-5 and intensity 0-1 (pipeline/postprocess/affect.py); None when
    # the model that scored the event has no VAD head.
    valence: float | None = None
    arousal: float | None = None
    intensity: float | None = None
    # Tickets: the thread (its own id for a one-message thread) and who wrote the turn.
    thread_id: str = ""
    author_role: str = ""
    lang: str = ""  # the language it was scored as: explanations take the same route

    @property
    def negative(self) -> bool:
        return self.sentiment == "negative"

    @property
    def from_customer(self) -> bool:
        return self.author_role in ("customer", "")

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> ScoredEvent:
        """Raises KeyError/ValueError/TypeError on a message that is not a scored event."""
        return cls(
            event_id=str(message["event_id"]),
            source=str(message["source"]),
            brand=str(message["brand"]),
            created_at=parse_time(message["created_at"]),
            text=str(message["text"]),
            scores={str(k): float(v) for k, v in message["scores"].items()},
            sentiment=str(message["sentiment"]),
            sentiment_score=float(message["sentiment_score"]),
            top_emotion=str(message["top_emotion"]),
            ekman=str(message["ekman"]),
            labels=tuple(message.get("labels") or ()),
            customer_id=str(message.get("customer_id") or ""),
            customer_tier=str(message.get("customer_tier") or ""),
            priority=str(message.get("priority") or ""),
            product=str(message.get("product") or ""),
            channel=str(message.get("channel") or ""),
            subject=str(message.get("subject") or ""),
            model_coverage=str(message.get("model_coverage") or "full"),
            valence=_optional_float(message.get("valence")),
            arousal=_optional_float(message.get("arousal")),
            intensity=_optional_float(message.get("intensity")),
            # Messages from before threads: a ticket is a customer's one-message thread.
            thread_id=str(
                message.get("thread_id")
                or (message["event_id"] if message["source"] == "ticket" else "")
            ),
            author_role=str(
                message.get("author_role") or ("customer" if message["source"] == "ticket" else "")
            ),
            lang=str(message.get("lang") or ""),
        )


ExplainTarget = Literal["anger", "negative"]


@dataclass(frozen=True, slots=True)
class TextToExplain:
    """A text behind an alert, for the explainer (pipeline/explain) to explain."""

    event_id: str
    text: str
    lang: str  # the language it was scored as ("" unknown: the policy decides again)
    target: ExplainTarget  # which score: the anger score, or the negative sentiment


def score_text(event: ScoredEvent) -> str:
    """The text as the model scored it (a ticket's subject and body together)."""
    return f"{event.subject}\n{event.text}" if event.subject else event.text


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    kind: AlertKind
    severity: Severity
    source: str
    brand: str
    subject: str  # the customer id, or the brand
    event_time: float  # epoch seconds: the ticket's time, or the window's end
    window_start: float
    window_end: float
    title: str
    message: str
    evidence: dict[str, Any]
    event_ids: tuple[str, ...] = ()
    raised_at: float = field(default=0.0, compare=False)
    # The words behind the alert's emotion score (pipeline/explain), and reply-tone
    # guidance from the playbook (pipeline/alerts/playbook.py); None when not given.
    explanation: dict[str, Any] | None = field(default=None, compare=False)
    reply: dict[str, Any] | None = field(default=None, compare=False)

    def to_message(self) -> dict[str, Any]:
        """The alerts topic message (schemas/alert.schema.json)."""
        body = asdict(self)
        for name in ("event_time", "window_start", "window_end", "raised_at"):
            body[name] = format_time(body[name])
        body["event_ids"] = list(self.event_ids)
        return body

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Alert:
        times = {
            name: parse_time(message[name])
            for name in ("event_time", "window_start", "window_end", "raised_at")
        }
        return cls(
            alert_id=message["alert_id"],
            kind=message["kind"],
            severity=message["severity"],
            source=message["source"],
            brand=message["brand"],
            subject=message["subject"],
            title=message["title"],
            message=message["message"],
            evidence=dict(message["evidence"]),
            event_ids=tuple(message.get("event_ids") or ()),
            explanation=message.get("explanation"),
            reply=message.get("reply"),
            **times,
        )

    def to_json(self) -> bytes:
        return json.dumps(self.to_message(), ensure_ascii=False).encode()


def alert_id(*parts: object) -> str:
    return hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:20]


def parse_time(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_time(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
