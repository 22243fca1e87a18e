"""Hand-written support threads (support_threads.yaml) as ticket records.

Each thread is a conversation: customer turns, agent replies, sometimes a bot; in
English, Spanish, German, French, Portuguese and Chinese; labelled with what it must
do: `worsening` (the customer's mood falls, or turns angry right after a reply) or
`calm` (calming down or stable). The demo and `moodpipe produce` send them as
tickets, the thread scenario replays them, `moodpipe eval --threads` measures the
thread alerts' precision and recall on them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import yaml

from pipeline.traffic.generate import BRANDS, SampleRecord

THREADS_FILE = Path(__file__).with_name("support_threads.yaml")


@dataclass(frozen=True)
class WrittenThread:
    id: str
    lang: str
    product: str
    tier: str
    expect: str  # "worsening" or "calm"
    turns: tuple[tuple[str, str], ...]  # (author_role, text)


@cache
def written_threads() -> tuple[WrittenThread, ...]:
    docs = yaml.safe_load(THREADS_FILE.read_text(encoding="utf-8"))
    return tuple(
        WrittenThread(
            d["id"],
            d["lang"],
            d["product"],
            d["tier"],
            d["expect"],
            tuple((role, text) for role, text in d["turns"]),
        )
        for d in docs
    )


@dataclass(frozen=True)
class ThreadTurn:
    created_at: datetime
    record: SampleRecord
    thread: WrittenThread


def thread_turns(
    thread: WrittenThread,
    start: datetime,
    *,
    brand: str,
    customer_id: str,
    thread_id: str,
    gap: timedelta = timedelta(minutes=6),
    declare_lang: bool = True,
    channel: str = "chat",
) -> list[ThreadTurn]:
    """The thread's turns as tickets, `gap` apart, keyed by brand (as the scored topic
    is): one thread's turns stay in order on one partition."""
    out = []
    for i, (role, text) in enumerate(thread.turns):
        at = start + gap * i
        event_id = f"{thread_id}-{i + 1}"
        doc: dict[str, object] = {
            "id": event_id,
            "thread_id": thread_id,
            "author_role": role,
            "customer_id": customer_id,
            "customer_tier": thread.tier,
            "brand": brand,
            "product": thread.product,
            "channel": channel,
            "subject": "",
            "body": text,
            "priority": "normal",
            "created_at": at.isoformat(timespec="milliseconds"),
        }
        if declare_lang:
            doc["lang"] = thread.lang
        record = SampleRecord(brand.encode(), json.dumps(doc, ensure_ascii=False).encode(),
                              "scored", event_id)  # fmt: skip
        out.append(ThreadTurn(at, record, thread))
    return out


def sample_threads(
    n: int, *, seed: int = 4, run_id: str = "demo", now: datetime | None = None,
    spread_s: int = 3600,
) -> list[SampleRecord]:  # fmt: skip
    """`n` threads' turns (written threads drawn at random, each for a random brand and
    customer), starting over the last `spread_s` seconds, in event-time order."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    threads = written_threads()
    turns: list[ThreadTurn] = []
    for i in range(n):
        thread = threads[rng.randrange(len(threads))]
        gap = timedelta(seconds=rng.uniform(60, 600))
        length = gap * (len(thread.turns) - 1)
        start = (
            now
            - length
            - timedelta(seconds=rng.uniform(0, max(0.0, spread_s - length.total_seconds())))
        )
        turns += thread_turns(
            thread, start, brand=rng.choice(BRANDS), customer_id=f"cust-{rng.randrange(1000):05d}",
            thread_id=f"{run_id}-thread-{i:05d}", gap=gap,
        )  # fmt: skip
    turns.sort(key=lambda t: t.created_at)
    return [t.record for t in turns]
