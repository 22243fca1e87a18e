"""Unit tests: every kind of bad input gets its own clear reason."""

from __future__ import annotations

import json

import pytest

from pipeline.records import RecordValidator, Rejected, SocialPost, SupportTicket
from pipeline.traffic import bad_records, sample_posts, sample_tickets

validator = RecordValidator(max_record_bytes=256 * 1024, max_text_chars=10_000)


def post(**changes: object) -> bytes:
    doc = {
        "id": "p1",
        "brands": ["Acme Air"],
        "platform": "twitter",
        "author": "a",
        "text": "I love this airline",
        "lang": "en",
        "created_at": "2026-11-28T10:00:00Z",
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def test_valid_post_and_ticket_parse_into_typed_records() -> None:
    record = validator.validate("post", sample_posts(1)[0].value)
    assert isinstance(record, SocialPost)
    assert record.created_at.tzinfo is not None
    ticket = validator.validate("ticket", sample_tickets(1)[0].value)
    assert isinstance(ticket, SupportTicket)
    assert ticket.body in ticket.score_text and ticket.subject in ticket.score_text


@pytest.mark.parametrize("source", ["post", "ticket"])
def test_each_sample_bad_record_is_rejected_with_its_code(source: str) -> None:
    for record in bad_records(source):
        outcome = validator.validate(source, record.value)
        assert isinstance(outcome, Rejected), record.value[:80]
        assert outcome.code == record.expect, (outcome, record.value[:80])
        assert outcome.reason


@pytest.mark.parametrize(
    ("raw", "code", "needle"),
    [
        (b"\xc3\x28", "invalid_utf8", "UTF-8"),
        (b"{not json", "invalid_json", "JSON"),
        (b'"just a string"', "not_an_object", "str"),
        (None, "not_an_object", "tombstone"),
        (post(text=None), "schema", "'text' is a required property"),
        (post(brands="Acme"), "schema", "$.brands"),
        (post(likes=-1), "schema", "$.likes"),
        (post(id=7), "schema", "$.id"),
        (post(text=""), "schema", "$.text"),
        (post(text=" \n "), "text_empty", "$.text is empty"),
        (post(text="x" * 10_001), "text_too_long", "10001 characters"),
        (post(created_at="2026-13-45T00:00:00Z"), "bad_timestamp", "$.created_at"),
        (post(created_at="2026-11-28 10:00"), "bad_timestamp", "UTC offset"),
        (b" " * (256 * 1024 + 1), "record_too_large", "over the limit"),
    ],
)
def test_reasons_name_the_problem(raw: bytes | None, code: str, needle: str) -> None:
    outcome = validator.validate("post", raw)
    assert isinstance(outcome, Rejected)
    assert outcome.code == code
    assert needle in outcome.reason


def test_limits_come_from_the_validator_settings() -> None:
    strict = RecordValidator(max_record_bytes=100, max_text_chars=5)
    assert isinstance(strict.validate("post", post(text="123456")), Rejected)
    assert isinstance(RecordValidator(10_000, 6).validate("post", post(text="123456")), SocialPost)
