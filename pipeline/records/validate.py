"""Raw bytes -> typed record, or a Rejected with a reason a person can act on.

JSON Schema (schemas/*.schema.json) checks structure and types; the rules a schema
cannot express well (UTF-8, size limits, time zones) are checked here.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from pipeline.records.models import InputRecord, Rejected, SocialPost, SupportTicket
from pipeline.resources import schemas_dir

SOURCES = ("post", "ticket")
_SCHEMA_FILES = {"post": "social_post.schema.json", "ticket": "support_ticket.schema.json"}


@cache
def _validator(source: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((schemas_dir() / _SCHEMA_FILES[source]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _path(error: jsonschema.ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 with an explicit offset; a naive time is ambiguous across hosts."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("has no UTC offset (add Z or +HH:MM)")
    return parsed


class RecordValidator:
    def __init__(self, max_record_bytes: int, max_text_chars: int) -> None:
        self.max_record_bytes = max_record_bytes
        self.max_text_chars = max_text_chars

    def validate(self, source: str, raw: bytes | None) -> InputRecord | Rejected:
        if raw is None:
            return Rejected("not_an_object", "record has no value (tombstone)")
        if len(raw) > self.max_record_bytes:
            return Rejected(
                "record_too_large",
                f"record is {len(raw)} bytes, over the limit of {self.max_record_bytes}",
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejected("invalid_utf8", f"value is not valid UTF-8: {exc}")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            return Rejected("invalid_json", f"value is not valid JSON: {exc}")
        if not isinstance(doc, dict):
            return Rejected("not_an_object", f"expected a JSON object, got {type(doc).__name__}")
        error = best_match(_validator(source).iter_errors(doc))
        if error is not None:
            return Rejected("schema", f"{_path(error)}: {error.message}")
        return self._build(source, doc)

    def _build(self, source: str, doc: dict[str, Any]) -> InputRecord | Rejected:
        try:
            created_at = parse_timestamp(doc["created_at"])
        except ValueError as exc:
            return Rejected("bad_timestamp", f"$.created_at {doc['created_at']!r}: {exc}")
        record: InputRecord
        if source == "post":
            record = SocialPost(
                id=doc["id"],
                brands=tuple(doc["brands"]),
                platform=doc["platform"],
                author=doc.get("author", ""),
                text=doc["text"],
                lang=doc.get("lang", "en"),
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
                lang=doc.get("lang", "en"),
                created_at=created_at,
            )
            field = "$.subject + $.body"
        length = len(record.score_text)
        message = record.text if isinstance(record, SocialPost) else record.body
        if not message.strip():
            name = "$.text" if isinstance(record, SocialPost) else "$.body"
            return Rejected("text_empty", f"{name} is empty or only whitespace")
        if length > self.max_text_chars:
            return Rejected(
                "text_too_long",
                f"{field} has {length} characters, over the limit of {self.max_text_chars}",
            )
        return record
