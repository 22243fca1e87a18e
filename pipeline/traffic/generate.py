"""Deterministic sample posts and tickets, texts drawn from the GoEmotions test split."""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from pipeline.emotions import LABELS, SENTIMENT_OF

BRANDS = ("Acme Air", "Globex Mobile", "Initech Cloud", "Umbrella Bank")
HANDLES = {"Acme Air": "@AcmeAir", "Globex Mobile": "@globex", "Initech Cloud": "@initech",
           "Umbrella Bank": "@UmbrellaBank"}  # fmt: skip
PRODUCTS = {
    "Acme Air": ("booking app", "baggage", "loyalty program"),
    "Globex Mobile": ("5G plan", "billing", "phone upgrade"),
    "Initech Cloud": ("storage", "API", "dashboard"),
    "Umbrella Bank": ("mobile banking", "credit card", "mortgage"),
}
PLATFORMS = ("twitter", "reddit", "instagram", "tiktok", "forum")
CHANNELS = ("email", "chat", "phone", "web", "social", "app")
TIERS = ("free", "standard", "premium", "enterprise")
PRIORITIES = ("low", "normal", "high", "urgent")
SUBJECTS = ("Question about {p}", "Problem with {p}", "{p} not working", "Feedback on {p}",
            "Re: {p}", "", "Urgent: {p}")  # fmt: skip


@dataclass(frozen=True, slots=True)
class SampleRecord:
    key: bytes
    value: bytes
    expect: str  # "scored" or the dead-letter error code the record must produce
    event_id: str = ""


# Each brand's share of positive / negative / ambiguous / neutral texts, so the demo
# shows brands that differ (Umbrella Bank is having a bad day).
BRAND_MOOD = {
    "Acme Air": (0.45, 0.15, 0.1, 0.3),
    "Globex Mobile": (0.3, 0.3, 0.1, 0.3),
    "Initech Cloud": (0.25, 0.25, 0.2, 0.3),
    "Umbrella Bank": (0.1, 0.6, 0.1, 0.2),
}
MOOD_GROUPS = ("positive", "negative", "ambiguous", "neutral")


@cache
def _labelled_texts() -> tuple[tuple[str, str], ...]:
    """(text, sentiment group of its first gold label) for the GoEmotions test split."""
    path = Path(__file__).parent / "goemotions_test.tsv.gz"
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                text, label_ids = line.rstrip("\n").split("\t")
                out.append((text, SENTIMENT_OF[LABELS[int(label_ids.split(",")[0])]]))
    return tuple(out)


@cache
def sample_texts() -> tuple[str, ...]:
    return tuple(text for text, _ in _labelled_texts())


@cache
def _texts_by_mood() -> dict[str, tuple[str, ...]]:
    return {g: tuple(t for t, group in _labelled_texts() if group == g) for g in MOOD_GROUPS}


def _brand_text(rng: random.Random, brand: str) -> str:
    group = rng.choices(MOOD_GROUPS, weights=BRAND_MOOD[brand])[0]
    texts = _texts_by_mood()[group]
    return texts[rng.randrange(len(texts))]


def _created_at(rng: random.Random, now: datetime, spread_s: int) -> str:
    return (now - timedelta(seconds=rng.uniform(0, spread_s))).isoformat(timespec="milliseconds")


def sample_posts(
    n: int, *, seed: int = 1, run_id: str = "demo", now: datetime | None = None,
    spread_s: int = 3600,
) -> list[SampleRecord]:  # fmt: skip
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    out = []
    for i in range(n):
        brands = rng.sample(BRANDS, k=1 if rng.random() < 0.9 else 2)
        text = _brand_text(rng, brands[0])
        mention = HANDLES[brands[0]] if rng.random() < 0.6 else brands[0]
        text = f"{mention} {text}" if rng.random() < 0.5 else f"{text} {mention}"
        event_id = f"{run_id}-post-{i:06d}"
        doc = {
            "id": event_id,
            "brands": brands,
            "platform": rng.choice(PLATFORMS),
            "author": f"user{rng.randrange(100_000)}",
            "text": text,
            "lang": "en",
            "created_at": _created_at(rng, now, spread_s),
            "likes": rng.randrange(500),
        }
        out.append(SampleRecord(event_id.encode(), json.dumps(doc).encode(), "scored", event_id))
    return out


def sample_tickets(
    n: int, *, seed: int = 2, run_id: str = "demo", now: datetime | None = None,
    spread_s: int = 3600, customers: int = 300,
) -> list[SampleRecord]:  # fmt: skip
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    out = []
    for i in range(n):
        brand = rng.choice(BRANDS)
        product = rng.choice(PRODUCTS[brand])
        event_id = f"{run_id}-ticket-{i:06d}"
        doc = {
            "id": event_id,
            "customer_id": f"cust-{rng.randrange(customers):05d}",
            "customer_tier": rng.choices(TIERS, weights=(5, 10, 4, 1))[0],
            "brand": brand,
            "product": product,
            "channel": rng.choice(CHANNELS),
            "subject": rng.choice(SUBJECTS).format(p=product),
            "body": _brand_text(rng, brand),
            "priority": rng.choices(PRIORITIES, weights=(3, 10, 4, 1))[0],
            "lang": "en",
            "created_at": _created_at(rng, now, spread_s),
        }
        # Key by customer: one customer's tickets stay in order on one partition.
        out.append(SampleRecord(doc["customer_id"].encode(), json.dumps(doc).encode(), "scored",
                                event_id))  # fmt: skip
    return out


def bad_records(source: str, *, run_id: str = "demo", seed: int = 3) -> list[SampleRecord]:
    """One of each kind of bad input the worker must dead-letter, for `source`."""
    good = (sample_posts(1, seed=seed, run_id=run_id) if source == "post"
            else sample_tickets(1, seed=seed, run_id=run_id))[0]  # fmt: skip
    doc = json.loads(good.value)
    text_field = "text" if source == "post" else "body"

    def variant(tag: str, **changes: object) -> bytes:
        d = {**doc, "id": f"{run_id}-bad-{source}-{tag}", **changes}
        for k in [k for k, v in changes.items() if v is None]:
            del d[k]
        return json.dumps(d).encode()

    tag = f"{run_id}-bad-{source}".encode()  # every bad value is unique to its run
    cases = [
        ("invalid_json", b'{"id": "' + tag + b'-json", "text": "unterminated'),
        ("invalid_utf8", b'{"id": "' + tag + b'", "' + text_field.encode() + b'": "caf\xe9 \xff"}'),
        ("not_an_object", b'["' + tag + b'", "a list is not a record"]'),
        ("schema", variant("missing", **{text_field: None})),
        ("schema", variant("wrongtype", created_at=12345)),
        ("text_empty", variant("empty", **{text_field: "   \n\t "})),
        ("text_too_long", variant("long", **{text_field: "so angry " * 2000})),
        ("record_too_large", variant("huge", padding="x" * 300_000)),
        ("bad_timestamp", variant("naive", created_at="2026-11-28T10:00:00")),
    ]
    if source == "post":
        cases.append(("schema", variant("nobrand", brands=[])))
    else:
        cases.append(("schema", variant("tier", customer_tier="platinum")))
        # The thread fields: an unknown author role, an identifier with a control character.
        cases.append(("schema", variant("role", author_role="supervisor")))
        cases.append(("invalid_text", variant("thread", thread_id="TH\u0007-1")))
    return [
        SampleRecord(tag + f"-{i}".encode(), value, code) for i, (code, value) in enumerate(cases)
    ]


@cache
def _multilingual_texts() -> tuple[tuple[str, str, str], ...]:
    """(language, sentiment group, text) of the hand-written multilingual sample posts."""
    doc = json.loads((Path(__file__).parent / "multilingual_posts.json").read_text("utf-8"))
    return tuple((lang, mood, text) for lang, mood, text in doc["posts"])


def sample_multilingual_posts(
    n: int, *, seed: int = 3, run_id: str = "demo", now: datetime | None = None,
    spread_s: int = 3600, declared_share: float = 0.5,
) -> list[SampleRecord]:  # fmt: skip
    """Posts in Chinese, German, Spanish, ... (pipeline/traffic/multilingual_posts.json);
    about `declared_share` of them carry `lang`, the rest leave it to detection."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    texts = _multilingual_texts()
    out = []
    for i in range(n):
        lang, _, text = texts[rng.randrange(len(texts))]
        brand = rng.choice(BRANDS)
        event_id = f"{run_id}-mlpost-{i:06d}"
        doc: dict[str, object] = {
            "id": event_id,
            "brands": [brand],
            "platform": rng.choice(PLATFORMS),
            "author": f"user{rng.randrange(100_000)}",
            "text": f"{HANDLES[brand]} {text}",
            "created_at": _created_at(rng, now, spread_s),
        }
        if rng.random() < declared_share:
            doc["lang"] = lang
        out.append(SampleRecord(event_id.encode(), json.dumps(doc).encode(), "scored", event_id))
    return out


def multilingual_language(text: str) -> str | None:
    """The language a sample text was written in (tests), or None if not a sample."""
    for lang, _, sample in _multilingual_texts():
        if text.endswith(sample):
            return lang
    return None
