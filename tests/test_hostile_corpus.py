"""Hostile but plausible records among ordinary traffic, on the real broker, tritonserver
and ClickHouse engine: every record is scored exactly once or dead-lettered with its
reason, the worker stays up, and the committed offsets reach the end of every partition.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer

from pipeline.local.worker import stop_worker
from pipeline.traffic import sample_posts, sample_tickets
from tests.conftest import spawn_worker
from tests.helpers import Namespace, wait_until

pytestmark = pytest.mark.services

SQL_BRAND = "O'Reilly \"Air\" \\ '); DROP TABLE scored_events; --"
LANGUAGES = {
    "zh": "这家航空公司把我的行李弄丢了，太生气了！",
    "ja": "サービスが最悪でした。二度と使いません。",
    "ko": "정말 실망스러운 서비스입니다", "ar": "أنا سعيد جدا بالخدمة، شكرا لكم",
    "he": "השירות היה מצוין, תודה רבה", "hi": "मुझे यह सेवा बहुत पसंद आई",
    "ru": "Ужасное обслуживание, верните деньги", "uk": "Дуже дякую за швидку допомогу",
    "el": "Η εξυπηρέτηση ήταν απαίσια", "th": "บริการแย่มาก ไม่ประทับใจเลย",
    "tr": "Harika bir deneyimdi, teşekkürler", "de": "Ich bin total enttäuscht vom Support",
    "es": "¡Me encanta esta aerolínea!", "fr": "Je suis furieux, mon vol est annulé",
    "pt": "Estou muito feliz com o atendimento", "sw": "Huduma ilikuwa nzuri sana, asante",
    "vi": "Dịch vụ quá tệ, tôi rất tức giận", "fa": "از خدمات شما بسیار راضی هستم",
    "bn": "আমি খুব হতাশ", "ta": "சேவை மிகவும் மோசமாக இருந்தது",
}  # fmt: skip


@dataclass
class Case:
    topic_role: str  # "posts" | "tickets"
    key: bytes
    value: bytes | None
    expect: str  # "scored" or the dead-letter error code
    event_id: str = ""
    timestamp_ms: int | None = None


def _post(run: str, tag: str, **changes: object) -> dict:
    doc: dict = {
        "id": f"{run}-{tag}", "brands": ["Acme Air"], "platform": "twitter",
        "text": "The flight was fine.", "created_at": "2026-11-28T10:00:00Z",
    }  # fmt: skip
    doc.update(changes)
    return doc


def _ticket(run: str, tag: str, **changes: object) -> dict:
    doc: dict = {
        "id": f"{run}-{tag}", "customer_id": "c-1", "customer_tier": "standard",
        "brand": "Acme Air", "product": "app", "channel": "chat", "subject": "help",
        "body": "The app keeps crashing.", "priority": "high",
        "created_at": "2026-11-28T10:00:00Z",
    }  # fmt: skip
    doc.update(changes)
    return doc


def hostile_cases(run: str) -> list[Case]:
    cases: list[Case] = []

    def post(tag: str, expect: str, raw: bytes | None = None, ts: int | None = None,
             **changes: object) -> None:  # fmt: skip
        doc = _post(run, tag, **changes)
        value = raw if raw is not None else json.dumps(doc).encode()
        event_id = doc["id"] if expect == "scored" else ""
        cases.append(Case("posts", f"{run}-{tag}".encode(), value, expect, event_id, ts))

    def ticket(tag: str, expect: str, **changes: object) -> None:
        doc = _ticket(run, tag, **changes)
        event_id = doc["id"] if expect == "scored" else ""
        cases.append(Case("tickets", f"{run}-{tag}".encode(), json.dumps(doc).encode(),
                          expect, event_id))  # fmt: skip

    nested = b"[" * 60_000 + b"]" * 60_000
    post("deep-array", "too_deep", nested)
    post("deep-object", "too_deep", b'{"a":' * 30_000 + b"1" + b"}" * 30_000)
    post("malformed", "invalid_json", b'{"id": "x", "text": "unterminated')
    post("utf8", "invalid_utf8", b'{"id": "x", "text": "caf\xe9 \xff"}')
    post("surrogate-text", "scored", text="so angry \ud800 right now")
    post("surrogate-id", "invalid_text", id=f"{run}-surrogate-\udfff")
    post("nul-text", "scored", text="nul\u0000 and\u0007 bell\u001b[31m red")
    post("control-only", "text_empty", text="\u0000\u0001\u0002 \u0003")
    post("emoji", "scored", text="😡😡😡🤬🤬")
    post("rtl", "scored", text="\u202eאני כועס מאוד על הטיסה")
    post("combining", "scored", text="Z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o")
    post("long-token", "scored", text="A" * 9000)
    for lang, text in LANGUAGES.items():
        post(f"lang-{lang}", "scored", text=text, lang=lang)
    post("year-1", "bad_timestamp", created_at="0001-01-01T00:00:00Z")
    post("year-9999", "bad_timestamp", created_at="9999-12-31T23:59:59+14:00")
    post("epoch-0", "bad_timestamp", created_at="1970-01-01T00:00:00Z")
    post("ts-words", "bad_timestamp", created_at="yesterday at noon")
    post("ts-offset", "bad_timestamp", created_at="2026-11-28T10:00:00+25:00")
    post("ts-number", "schema", created_at=1764324000)
    post("ts-far-offset", "scored", created_at="2026-11-28T23:30:00+14:00")
    post("kafka-ts-zero", "scored", ts=1)
    # (Kafka 4 brokers refuse timestamps over an hour ahead: log.message.timestamp.after.max.ms.)
    post("id-too-long", "schema", id="x" * 129)
    post("id-unicode", "scored", id=f"{run}-用户-🙂-é")
    post("id-sql", "scored", id=f"{run}-x'); DROP TABLE scored_events;--")
    post("brand-sql", "scored", brands=[SQL_BRAND])
    post("wrong-type-text", "schema", text=12345)
    post("wrong-type-brands", "schema", brands="Acme Air")

    def appended(tag: str, tail: bytes) -> bytes:  # a valid post with raw JSON added
        return json.dumps(_post(run, tag))[:-1].encode() + b", " + tail + b"}"

    post("huge-int", "invalid_json", appended("huge-int", b'"likes": ' + b"9" * 5000))
    post("huge-float", "invalid_json", appended("huge-float", b'"score": 1e999'))
    post("nan", "invalid_json", appended("nan", b'"likes": NaN'))
    post("dup-key", "invalid_json", appended("dup-key", b'"text": "second text"'))
    post("extra-props", "scored", **{f"extra_{i}": i for i in range(3000)})
    post("tombstone", "not_an_object", b"")
    cases[-1].value = None
    post("empty", "invalid_json", b"")
    post("oversized", "record_too_large", text="x" * 1_000_000)
    post("just-over", "record_too_large", text="y" * 300_000)
    ticket("t-nul-body", "scored", body="crash\u0000ed again")
    ticket("t-control-customer", "invalid_text", customer_id="c\u0007-1")
    ticket("t-tier", "schema", customer_tier="platinum")
    ticket("t-subject-sql", "scored", subject="'; DELETE FROM tickets; --", brand=SQL_BRAND)
    return cases


async def _produce(ns: Namespace, cases: list[Case]) -> dict[tuple[str, int, int], Case]:
    """Produce in the given order; returns (topic, partition, offset) -> case."""
    s = ns.settings
    topics = {"posts": s.posts_topic, "tickets": s.tickets_topic}
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all",
                                max_request_size=2_000_000, linger_ms=5)  # fmt: skip
    await producer.start()
    try:
        futures = [
            (
                case,
                await producer.send(
                    topics[case.topic_role],
                    value=case.value,
                    key=case.key,
                    timestamp_ms=case.timestamp_ms,
                ),
            )
            for case in cases
        ]
        where = {}
        for case, future in futures:
            meta = await future
            where[(meta.topic, meta.partition, meta.offset)] = case
        return where
    finally:
        await producer.stop()


def test_every_hostile_record_is_scored_once_or_dead_lettered_and_nothing_stalls(
    namespace: Namespace,
) -> None:
    run = "hostile"
    cases = hostile_cases(run)
    for record in sample_posts(240, run_id=run, seed=5) + sample_tickets(90, run_id=run, seed=6):
        role = "posts" if b"post" in record.key or b'"brands"' in record.value else "tickets"
        cases.append(Case(role, record.key, record.value, "scored", record.event_id))
    random.Random(7).shuffle(cases)
    where = asyncio.run(_produce(namespace, cases))
    worker = spawn_worker(namespace)

    scored = {c.event_id for c in cases if c.expect == "scored"}
    bad = [c for c in cases if c.expect != "scored"]
    wait_until(lambda: namespace.landed() >= len(scored), 300, "every good record scored")
    wait_until(lambda: len(namespace.dead_letters()) >= len(bad), 120, "every dead letter")
    namespace.wait_caught_up(120)  # committed offsets at the end of every partition
    assert worker.poll() is None, "worker died"
    stop_worker(worker)

    # Every offset is accounted for: in scored_events or on the dead-letter topic, not both.
    stored = namespace.query(
        "SELECT event_id, source_topic, source_partition, source_offset, count() AS n "
        "FROM scored_events_dedup GROUP BY ALL"
    )
    assert {r[0] for r in stored} == scored
    assert all(r[4] == 1 for r in stored)
    letters = namespace.dead_letters()
    lettered = {(d["source_topic"], d["source_partition"], d["source_offset"]): d for d in letters}
    stored_at = {(r[1], r[2], r[3]) for r in stored}
    assert not stored_at & set(lettered), "a record is both scored and dead-lettered"
    assert stored_at | set(lettered) == set(where), "records neither scored nor dead-lettered"
    for position, letter in lettered.items():
        case = where[position]
        assert letter["error"] == case.expect, (case.key, letter["reason"])
        assert letter["reason"]

    # What was cleaned, kept exactly, or cut to fit.
    texts = dict(namespace.query("SELECT event_id, text FROM scored_events_dedup"))
    assert texts[f"{run}-surrogate-text"] == "so angry \ufffd right now"
    assert texts[f"{run}-nul-text"] == "nul and bell[31m red"
    assert texts[f"{run}-rtl"].startswith("\u202e")
    brands = dict(namespace.query("SELECT event_id, brand FROM scored_events_dedup"))
    assert brands[f"{run}-brand-sql"] == SQL_BRAND
    assert brands[f"{run}-t-subject-sql"] == SQL_BRAND
    langs = dict(namespace.query("SELECT event_id, lang FROM scored_events_dedup"))
    assert {langs[f"{run}-lang-{code}"] for code in LANGUAGES} == set(LANGUAGES)
    oversized = next(d for d in letters if base64.b64decode(d["key_b64"]).endswith(b"-oversized"))
    original = next(c.value for c in cases if c.key.endswith(b"-oversized"))
    assert original is not None
    assert oversized["truncated"] is True
    assert oversized["value_bytes"] == len(original)
    assert oversized["value_sha256"] == hashlib.sha256(original).hexdigest()
    assert original.startswith(base64.b64decode(oversized["value_b64"]))
    just_over = next(d for d in letters if base64.b64decode(d["key_b64"]).endswith(b"-just-over"))
    assert just_over["truncated"] is False

    # The queryable copy has every letter too, and nothing crashed along the way.
    copied = int(namespace.scalar("SELECT count() FROM dead_letters"))
    assert copied == len(bad)
    log = (namespace.log_dir / "worker-0.log").read_text(errors="replace")
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
