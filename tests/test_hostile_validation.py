"""The validator against hostile input: a clear reason for each kind, never an exception.

(The same kinds of record go through the real broker, tritonserver and ClickHouse in
test_hostile_corpus.py.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.records import RecordValidator, Rejected, SocialPost, SupportTicket

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
validator = RecordValidator(256 * 1024, 10_000, now=lambda: NOW)


def post(**changes: object) -> dict:
    doc: dict = {
        "id": "p1",
        "brands": ["Acme Air"],
        "platform": "twitter",
        "text": "I love this airline",
        "created_at": "2026-11-28T10:00:00Z",
    }
    doc.update(changes)
    return doc


def raw(doc: dict) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("value", "code", "needle"),
    [
        (b"[" * 50_000 + b"]" * 50_000, "too_deep", "nested"),
        (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "too_deep", "nested"),
        (raw(post(extra=json.loads("[" * 20 + "1" + "]" * 20))), "too_deep", "16 levels"),
        (b'{"id": "p1", "id": "p2"}', "invalid_json", "appears twice"),
        (raw(post(likes=1))[:-1] + b', "likes": NaN}', "invalid_json", "NaN"),
        (raw(post())[:-1] + b', "score": Infinity}', "invalid_json", "Infinity"),
        (raw(post())[:-1] + b', "score": 1e999}', "invalid_json", "too large"),
        (raw(post())[:-1] + b', "likes": ' + b"9" * 5000 + b"}", "invalid_json", "not valid"),
        (raw(post(id="p\u0000")), "invalid_text", "$.id contains control"),
        (raw(post(brands=["Acme\ud800"])), "invalid_text", "$.brands[0] contains a lone"),
        (raw(post(created_at="0001-01-01T00:00:00Z")), "bad_timestamp", "outside the accepted"),
        (raw(post(created_at="9999-12-31T23:59:59Z")), "bad_timestamp", "outside the accepted"),
        (raw(post(created_at="1970-01-01T00:00:00Z")), "bad_timestamp", "MOODPIPE_MIN_CREATED_AT"),
        (raw(post(created_at="0001-01-01T00:00:00+05:00")), "bad_timestamp", "range of dates"),
        (raw(post(created_at="2026-11-28T10:00:00Z" * 10)), "bad_timestamp", "characters long"),
        (raw(post(created_at="2026-12-05T00:00:00Z")), "bad_timestamp", "now + 1 day"),
        (raw(post(created_at=1732780800)), "schema", "$.created_at"),
        (raw(post(id="x" * 129)), "schema", "$.id"),
        (raw(post(likes=1.5)), "schema", "$.likes"),
        (raw(post(brands=[])), "schema", "$.brands"),
        (raw(post(text="\u0000\u0007 ")), "text_empty", "$.text is empty"),
        (b"\xff\xfe{}", "invalid_utf8", "UTF-8"),
        (b"", "invalid_json", "not valid JSON"),
        (b"null", "not_an_object", "NoneType"),
    ],
)
def test_hostile_values_get_their_reason(value: bytes, code: str, needle: str) -> None:
    outcome = validator.validate("post", value)
    assert isinstance(outcome, Rejected), outcome
    assert outcome.code == code, outcome
    assert needle in outcome.reason, outcome.reason


def test_free_text_is_cleaned_not_rejected() -> None:
    doc = post(text="late\u0000 again\x07 \ud83d!", author="a\x1bb")
    outcome = validator.validate("post", raw(doc))
    assert isinstance(outcome, SocialPost)
    assert outcome.text == "late again \ufffd!"
    assert outcome.author == "ab"
    outcome.text.encode("utf-8")  # storable and encodable for Triton


def test_surrogate_pairs_are_real_characters_and_kept() -> None:
    outcome = validator.validate("post", raw(post(text="so good \ud83d\ude00")))
    assert isinstance(outcome, SocialPost) and outcome.text == "so good 😀"


@pytest.mark.parametrize(
    "text",
    [
        "😡😡😡🤬",  # emoji only
        "هذه الخدمة سيئة جدا",  # right to left
        "e\u0301\u0301\u0301 combining",  # combining marks
        "A" * 9000,  # one 9,000-character token
        "这家航空公司太糟糕了",
        "Ужасное обслуживание",
        "सेवा बहुत खराब है",
    ],
)
def test_unusual_but_valid_text_is_accepted_as_is(text: str) -> None:
    outcome = validator.validate("post", raw(post(text=text)))
    assert isinstance(outcome, SocialPost) and outcome.text == text


def test_sql_and_quotes_in_brand_names_are_just_names() -> None:
    brand = "Robert'); DROP TABLE scored_events;-- \"\\"
    outcome = validator.validate("post", raw(post(brands=[brand])))
    assert isinstance(outcome, SocialPost) and outcome.brand == brand


def test_thousands_of_extra_properties_are_ignored() -> None:
    doc = post(**{f"x{i}": i for i in range(5000)})
    assert isinstance(validator.validate("post", raw(doc)), SocialPost)


def test_timestamps_are_normalised_to_utc_and_the_window_is_configurable() -> None:
    outcome = validator.validate("post", raw(post(created_at="2026-11-28T12:00:00+02:00")))
    assert isinstance(outcome, SocialPost)
    assert outcome.created_at == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    old = RecordValidator(
        256 * 1024, 10_000, min_created_at=datetime(1900, 1, 1, tzinfo=UTC),
        max_future=timedelta(0), now=lambda: NOW,
    )  # fmt: skip
    assert isinstance(old.validate("post", raw(post(created_at="1969-07-20T20:17:00Z"))),
                      SocialPost)  # fmt: skip
    assert isinstance(old.validate("post", raw(post(created_at="2026-12-01T12:01:00Z"))),
                      Rejected)  # fmt: skip


def test_ticket_identifiers_are_checked_and_bodies_cleaned() -> None:
    ticket = {
        "id": "t1", "customer_id": "c1", "customer_tier": "free", "product": "app",
        "channel": "chat", "body": "it\u0000 crashed", "priority": "high",
        "created_at": "2026-11-28T10:00:00Z",
    }  # fmt: skip
    outcome = validator.validate("ticket", raw(ticket))
    assert isinstance(outcome, SupportTicket) and outcome.body == "it crashed"
    outcome = validator.validate("ticket", raw({**ticket, "customer_id": "c\ud800"}))
    assert isinstance(outcome, Rejected) and "$.customer_id" in outcome.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
post_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=140) | st.integers(),
        "brands": st.lists(st.text(max_size=70), max_size=3) | st.text(),
        "platform": st.text(max_size=40),
        "text": st.text() | st.integers(),
        "author": st.text(),
        "lang": st.text(max_size=8),
        "created_at": st.datetimes(timezones=st.just(UTC) | st.none()).map(datetime.isoformat)
        | st.text(max_size=40),
        "likes": st.integers() | st.floats(),
        "extra": json_values,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_any_bytes_give_a_record_or_a_rejection(value: bytes) -> None:
    for source in ("post", "ticket"):
        outcome = validator.validate(source, value)
        assert isinstance(outcome, Rejected | SocialPost | SupportTicket)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(post_like, st.sampled_from(["post", "ticket"]))
def test_fuzz_json_documents_give_a_record_or_a_rejection(doc: dict, source: str) -> None:
    value = json.dumps(doc, allow_nan=True).encode("utf-8", errors="surrogatepass")
    outcome = validator.validate(source, value)
    assert isinstance(outcome, Rejected | SocialPost | SupportTicket)
    if not isinstance(outcome, Rejected):  # what is accepted can be encoded and stored
        outcome.score_text.encode("utf-8")
        assert outcome.created_at.utcoffset() == timedelta(0)
