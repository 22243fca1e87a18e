"""The typed decoder (msgspec Structs) agrees with the published JSON Schemas.

The worker accepts a record when the Structs accept it and asks jsonschema otherwise;
so the Structs must never be looser than the schema. Checked on a corpus of good and
bad records (codes and reasons equal to a jsonschema-only validator) and with
hypothesis on random documents shaped like posts and tickets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.records import RecordValidator, Rejected
from pipeline.records import validate as validate_module
from pipeline.records.typed import conforms
from pipeline.records.validate import _validator
from pipeline.traffic import bad_records, sample_posts, sample_tickets

# Sample records are made at NOW too: the accepted created_at window is relative.
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _corpus() -> list[tuple[str, bytes]]:
    corpus = [("post", r.value) for r in sample_posts(60, now=NOW) + bad_records("post")]
    corpus += [("ticket", r.value) for r in sample_tickets(60, now=NOW) + bad_records("ticket")]
    post = json.loads(sample_posts(1, now=NOW)[0].value)
    ticket = json.loads(sample_tickets(1, now=NOW)[0].value)
    variants = [
        {"id": ""}, {"id": "x" * 129}, {"id": 5}, {"brands": []}, {"brands": ["a", "a"]},
        {"brands": ["x" * 65]}, {"brands": [""]}, {"brands": ["b"] * 21}, {"platform": ""},
        {"platform": "p" * 33}, {"author": "a" * 257}, {"lang": "EN"}, {"lang": "en-gb"},
        {"lang": "en\n"}, {"lang": "zh-Hant"}, {"url": None}, {"url": "u" * 2049},
        {"likes": -1}, {"likes": 1.0}, {"likes": 1.5}, {"likes": True}, {"likes": 10**30},
        {"shares": "3"}, {"text": ""}, {"text": None}, {"created_at": 0}, {"extra": [1, {}]},
    ]  # fmt: skip
    for change in variants:
        corpus.append(("post", json.dumps({**post, **change}).encode()))
    for name in ("text", "brands", "platform", "created_at", "id"):
        corpus.append(("post", json.dumps({k: v for k, v in post.items() if k != name}).encode()))
    ticket_variants = [
        {"customer_tier": "gold"}, {"channel": "fax"}, {"priority": "URGENT"},
        {"brand": "b" * 65}, {"brand": ""}, {"subject": "s" * 1001}, {"subject": None},
        {"product": ""}, {"customer_id": ""}, {"body": ""}, {"lang": "d"},
    ]  # fmt: skip
    for change in ticket_variants:
        corpus.append(("ticket", json.dumps({**ticket, **change}).encode()))
    return corpus


@pytest.fixture
def schema_only(monkeypatch: pytest.MonkeyPatch) -> RecordValidator:
    """The validator as it was: jsonschema decides every record."""
    validator = RecordValidator(256 * 1024, 10_000, now=lambda: NOW)
    original = validator.validate

    def validate(source: str, raw: bytes | None):
        with monkeypatch.context() as m:
            m.setattr(validate_module, "conforms", lambda *_: False)
            return original(source, raw)

    validator.validate = validate  # type: ignore[method-assign]
    return validator


def test_typed_and_schema_validation_give_the_same_outcome_on_the_corpus(schema_only) -> None:
    typed = RecordValidator(256 * 1024, 10_000, now=lambda: NOW)
    outcomes = {"accepted": 0, "rejected": 0}
    for source, raw in _corpus():
        fast, reference = typed.validate(source, raw), schema_only.validate(source, raw)
        if isinstance(reference, Rejected):
            assert fast == reference, raw[:120]  # same code, same reason
            outcomes["rejected"] += 1
        else:
            assert fast == reference, raw[:120]
            outcomes["accepted"] += 1
    assert outcomes["accepted"] > 120 and outcomes["rejected"] > 40


value = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70)
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "id": value | st.text(min_size=120, max_size=140),
        "brands": st.lists(st.text(max_size=70) | st.integers(), max_size=22) | value,
        "platform": value,
        "text": value,
        "author": value,
        "lang": st.sampled_from(["en", "EN", "pt-BR", "zh-Hant", "x", "en\n", ""]) | value,
        "created_at": value,
        "url": value,
        "likes": value,
        "shares": value,
        "customer_id": value,
        "customer_tier": st.sampled_from(["free", "standard", "premium", "enterprise", "x"])
        | value,
        "product": value,
        "channel": st.sampled_from(["email", "chat", "phone", "web", "social", "app"]) | value,
        "body": value,
        "subject": value | st.text(min_size=990, max_size=1010),
        "brand": value,
        "priority": st.sampled_from(["low", "normal", "high", "urgent"]) | value,
    },
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from(["post", "ticket"]))
def test_the_typed_check_is_never_looser_than_the_schema(doc: dict, source: str) -> None:
    schema_valid = _validator(source).is_valid(doc)
    if conforms(source, doc):
        assert schema_valid, doc
    # (The reverse may differ at the edges, e.g. 1.0 as an integer: those records go to
    # jsonschema, which then decides.)
    jsonschema.Draft202012Validator.check_schema(_validator(source).schema)
