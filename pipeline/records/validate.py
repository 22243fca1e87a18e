"""Raw bytes -> typed record, or a Rejected with a reason a person can act on.

JSON Schema (schemas/*.schema.json) checks structure and types; the rules a schema
cannot express (UTF-8, JSON that only one parser would read the same way, nesting,
size limits, time zones and the accepted time window, text the model and ClickHouse
can take) are checked here. `validate` never raises: whatever goes wrong inside it
becomes a Rejected, so a record nobody foresaw still reaches the dead-letter topic.

What is cleaned rather than rejected (docs/bad-input.md): in free text (post text,
ticket subject and body, author) control characters are removed and lone UTF-16
surrogates become U+FFFD, because the words around them still carry the emotion.
Identifiers and labels (ids, brands, product, platform) are never altered: a record
whose identity would change is rejected instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from pipeline.records.models import InputRecord, Rejected, SocialPost, SupportTicket
from pipeline.records.typed import conforms
from pipeline.resilience.failures import describe
from pipeline.resources import schemas_dir

SOURCES = ("post", "ticket")
_SCHEMA_FILES = {"post": "social_post.schema.json", "ticket": "support_ticket.schema.json"}

MAX_DEPTH = 16  # records are flat; deeper nesting is an attack or a bug upstream
MAX_TIMESTAMP_CHARS = 64
DEFAULT_MIN_CREATED_AT = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_MAX_FUTURE = timedelta(days=1)

# C0 controls except tab/newline/carriage return, DEL and C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FREE_TEXT = {"post": ("text", "author"), "ticket": ("subject", "body")}
_IDENTIFIERS = {
    "post": ("id", "platform", "lang"),
    "ticket": ("id", "customer_id", "brand", "product", "lang", "thread_id"),
}


@cache
def _validator(source: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((schemas_dir() / _SCHEMA_FILES[source]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _path(error: jsonschema.ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 with an explicit offset, as UTC; a naive time is ambiguous across hosts."""
    if len(value) > MAX_TIMESTAMP_CHARS:
        raise ValueError(f"is {len(value)} characters long; not a timestamp")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("has no UTC offset (add Z or +HH:MM)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00
        raise ValueError("is outside the range of dates") from None


class _MalformedJSONError(ValueError):
    """JSON that parses but that different parsers would not read the same way."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _MalformedJSONError(f"key {key[:100]!r} appears twice in one object")
            seen.add(key)
    return doc


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _MalformedJSONError(f"number {text[:40]} is too large to represent")
    return value


def _constant(name: str) -> Any:
    raise _MalformedJSONError(f"{name} is not valid JSON (numbers must be finite)")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_float=_finite_float, parse_constant=_constant
)


def _depth_over(doc: Any, limit: int) -> bool:
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


def clean_text(text: str) -> str:
    """Free text the model and storage take: no control characters, no lone surrogates."""
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _unclean(value: str) -> str | None:
    """Why an identifier cannot be stored as it is, or None."""
    if _SURROGATE.search(value):
        return "contains a lone UTF-16 surrogate (not valid Unicode)"
    if _CONTROL.search(value):
        return "contains control characters"
    return None


class RecordValidator:
    def __init__(
        self,
        max_record_bytes: int,
        max_text_chars: int,
        *,
        min_created_at: datetime = DEFAULT_MIN_CREATED_AT,
        max_future: timedelta = DEFAULT_MAX_FUTURE,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.max_record_bytes = max_record_bytes
        self.max_text_chars = max_text_chars
        self.min_created_at = min_created_at
        self.max_future = max_future
        self.now = now

    def validate(self, source: str, raw: bytes | None) -> InputRecord | Rejected:
        try:
            return self._validate(source, raw)
        except Exception as exc:  # noqa: BLE001 - a record must never crash the worker
            return Rejected("validation_failed", f"the validator failed on this record: "
                            f"{describe(exc)}")  # fmt: skip

    def _validate(self, source: str, raw: bytes | None) -> InputRecord | Rejected:
        if raw is None:
            return Rejected("not_an_object", "record has no value (tombstone)")
        text = decode_bounded(raw, self.max_record_bytes)
        if isinstance(text, Rejected):
            return text
        doc = parse_json(text)
        if isinstance(doc, Rejected):
            return doc
        if not isinstance(doc, dict):
            return Rejected("not_an_object", f"expected a JSON object, got {type(doc).__name__}")
        # Nesting deeper than MAX_DEPTH needs more brackets than that: most records
        # skip the walk.
        if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and _depth_over(doc, MAX_DEPTH):
            return Rejected("too_deep", f"value is nested more than {MAX_DEPTH} levels deep")
        # The typed check clears good records fast; jsonschema judges the rest.
        if not conforms(source, doc):
            error = best_match(_validator(source).iter_errors(doc))
            if error is not None:
                return Rejected("schema", f"{_path(error)}: {error.message[:500]}")
        # Only an escape can put a control character or a surrogate in a JSON string
        # (raw ones are invalid JSON or invalid UTF-8), C1 controls aside: most records
        # skip the text checks.
        if b"\\" in raw or b"\xc2" in raw:
            problem = self._clean(source, doc)
            if problem is not None:
                return problem
        return self._build(source, doc)

    def _clean(self, source: str, doc: dict[str, Any]) -> Rejected | None:
        for name in _IDENTIFIERS[source]:
            value = doc.get(name)
            why = _unclean(value) if isinstance(value, str) else None
            if why:
                return Rejected("invalid_text", f"$.{name} {why}")
        brands = doc.get("brands") or []
        for i, brand in enumerate(brands if isinstance(brands, list) else []):
            why = _unclean(brand) if isinstance(brand, str) else None
            if why:
                return Rejected("invalid_text", f"$.brands[{i}] {why}")
        for name in _FREE_TEXT[source]:
            if isinstance(doc.get(name), str):
                doc[name] = clean_text(doc[name])
        return None

    def _created_at(self, value: str) -> datetime | Rejected:
        shown = repr(value[:MAX_TIMESTAMP_CHARS])
        try:
            created_at = parse_timestamp(value)
        except (ValueError, OverflowError) as exc:
            return Rejected("bad_timestamp", f"$.created_at {shown}: {exc}")
        latest = self.now() + self.max_future
        if not self.min_created_at <= created_at <= latest:
            return Rejected(
                "bad_timestamp",
                f"$.created_at {shown} is outside the accepted window "
                f"{self.min_created_at.isoformat()} .. now + {self.max_future} "
                "(MOODPIPE_MIN_CREATED_AT, MOODPIPE_MAX_FUTURE_SECONDS)",
            )
        return created_at

    def _build(self, source: str, doc: dict[str, Any]) -> InputRecord | Rejected:
        created_at = self._created_at(doc["created_at"])
        if isinstance(created_at, Rejected):
            return created_at
        record: InputRecord
        if source == "post":
            record = SocialPost(
                id=doc["id"],
                brands=tuple(doc["brands"]),
                platform=doc["platform"],
                author=doc.get("author", ""),
                text=doc["text"],
                lang=doc.get("lang", ""),  # "" = not declared
                created_at=created_at,
            )
            field = "$.text"
        else:
            record = SupportTicket(
                id=doc["id"],
                customer_id=doc["customer_id"],
                customer_tier=doc["customer_tier"],
                brand=doc.get("brand", ""),
                product=doc["product"],
                channel=doc["channel"],
                subject=doc.get("subject", ""),
                body=doc["body"],
                priority=doc["priority"],
                lang=doc.get("lang", ""),  # "" = not declared
                created_at=created_at,
                thread_id=doc.get("thread_id") or doc["id"],  # absent: a thread of its own
                author_role=doc.get("author_role", "customer"),
            )
            field = "$.subject + $.body"
        if isinstance(record, SocialPost):
            problem = text_rejection(record.text, "$.text", record.score_text, field,
                                     self.max_text_chars)  # fmt: skip
        else:
            problem = text_rejection(record.body, "$.body", record.score_text, field,
                                     self.max_text_chars)  # fmt: skip
        return problem or record


# --- Rules every entry point that scores text applies (worker, `moodpipe score`) -----


def size_rejection(raw: bytes, max_bytes: int) -> Rejected | None:
    if len(raw) > max_bytes:
        return Rejected(
            "record_too_large", f"record is {len(raw)} bytes, over the limit of {max_bytes}"
        )
    return None


def decode_utf8(raw: bytes) -> str | Rejected:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected("invalid_utf8", f"value is not valid UTF-8: {exc}")


def decode_bounded(raw: bytes, max_bytes: int) -> str | Rejected:
    """The text of a value no larger than `max_bytes` that is valid UTF-8."""
    return size_rejection(raw, max_bytes) or decode_utf8(raw)


def parse_json(text: str) -> Any:
    """The document, or a Rejected: JSON that every parser reads the same way (no
    repeated keys, finite numbers) and nested at most MAX_DEPTH levels by recursion."""
    try:
        return _DECODER.decode(text)
    except RecursionError:
        return Rejected("too_deep", f"value is nested more than {MAX_DEPTH} levels deep")
    except _MalformedJSONError as exc:
        return Rejected("invalid_json", f"value is ambiguous JSON: {exc}")
    except ValueError as exc:  # JSONDecodeError, and integers over 4,300 digits
        return Rejected("invalid_json", f"value is not valid JSON: {describe(exc, 300)}")


def text_rejection(
    message: str, message_field: str, score_text: str, score_field: str, max_chars: int
) -> Rejected | None:
    """Empty `message` (the post text or ticket body), or a scored text over the limit."""
    if not message.strip():
        return Rejected("text_empty", f"{message_field} is empty or only whitespace")
    if len(score_text) > max_chars:
        return Rejected(
            "text_too_long",
            f"{score_field} has {len(score_text)} characters, over the limit of {max_chars}",
        )
    return None
