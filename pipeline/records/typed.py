"""Typed mirrors of schemas/social_post.schema.json and support_ticket.schema.json.

The JSON Schemas stay the published contract; these msgspec Structs enforce the same
rules at about a microsecond per record (jsonschema took ~50 µs), so the worker checks
every record with them and asks jsonschema only about the records they reject: to
confirm, and for its reason naming the JSON path. Accepting is therefore never looser
than the schema as long as the Structs are no looser, which
tests/test_typed_records.py checks on a corpus and with hypothesis.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

Id = Annotated[str, Meta(min_length=1, max_length=128)]
# BCP 47 as the schemas allow it (en, zh, pt-BR, zh-Hant); `moodpipe score` checks it too.
LANG_PATTERN = "^[a-z]{2,3}(-[A-Za-z]{2,4})?$"
Lang = Annotated[str, Meta(pattern=LANG_PATTERN)]
Count = Annotated[int, Meta(ge=0)]


class PostFields(msgspec.Struct):
    id: Id
    brands: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(min_length=1, max_length=20)
    ]
    platform: Annotated[str, Meta(min_length=1, max_length=32)]
    text: Annotated[str, Meta(min_length=1)]
    created_at: str
    author: Annotated[str, Meta(max_length=256)] | UnsetType = UNSET
    lang: Lang | UnsetType = UNSET
    url: Annotated[str, Meta(max_length=2048)] | UnsetType = UNSET
    likes: Count | UnsetType = UNSET
    shares: Count | UnsetType = UNSET


class TicketFields(msgspec.Struct):
    id: Id
    customer_id: Id
    customer_tier: Literal["free", "standard", "premium", "enterprise"]
    product: Annotated[str, Meta(min_length=1, max_length=128)]
    channel: Literal["email", "chat", "phone", "web", "social", "app"]
    body: Annotated[str, Meta(min_length=1)]
    priority: Literal["low", "normal", "high", "urgent"]
    created_at: str
    brand: Annotated[str, Meta(max_length=64)] | UnsetType = UNSET
    subject: Annotated[str, Meta(max_length=1000)] | UnsetType = UNSET
    lang: Lang | UnsetType = UNSET
    thread_id: Id | UnsetType = UNSET
    author_role: Literal["customer", "agent", "bot"] | UnsetType = UNSET


_STRUCTS: dict[str, type[msgspec.Struct]] = {"post": PostFields, "ticket": TicketFields}


def conforms(source: str, doc: dict[str, Any]) -> bool:
    """True when `doc` meets the source's schema (unknown properties allowed)."""
    try:
        fields = msgspec.convert(doc, _STRUCTS[source])
    except msgspec.ValidationError:
        return False
    # JSON Schema's uniqueItems, which msgspec cannot express.
    return not isinstance(fields, PostFields) or len(set(fields.brands)) == len(fields.brands)
