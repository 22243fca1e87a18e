"""The alert detector's cost per ticket: support-thread turns against the same tickets
as one-message threads, same run, in-process (the agent's batching, a dict store).

The null-model pipeline bench (`moodpipe bench --null-model`) streams posts; this is
what thread state adds to each ticket turn on top.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from typing import Any

from pipeline.alerts.detector import AlertDetector, StagedState
from pipeline.alerts.models import ScoredEvent
from pipeline.alerts.rules import load_rules
from pipeline.emotions import LABELS
from pipeline.traffic.threads import sample_threads


def _events(threads: int, seed: int) -> list[ScoredEvent]:
    rng = random.Random(seed)
    out = []
    for record in sample_threads(threads, run_id="bench"):
        doc = json.loads(record.value)
        mood = rng.uniform(-1, 1)
        scores = dict.fromkeys(LABELS, 0.0)
        scores["anger"] = max(0.0, -mood) * rng.random()
        out.append(ScoredEvent.from_message({
            "event_id": doc["id"], "source": "ticket", "brand": doc["brand"], "text": doc["body"],
            "created_at": doc["created_at"], "scores": scores, "sentiment_score": mood,
            "sentiment": "negative" if mood < -0.3 else "neutral", "top_emotion": "anger",
            "ekman": "anger", "customer_id": doc["customer_id"],
            "customer_tier": doc["customer_tier"], "priority": "normal",
            "product": doc["product"], "thread_id": doc["thread_id"],
            "author_role": doc["author_role"], "lang": "en",
        }))  # fmt: skip
    return out


def _run(events: list[ScoredEvent], batch: int = 500) -> tuple[float, int]:
    detector = AlertDetector(load_rules())
    base: dict[str, Any] = {}
    alerts = 0
    started = time.perf_counter()
    for start in range(0, len(events), batch):
        staged = StagedState(base)
        for offset in range(start, min(start + batch, len(events))):
            detection = detector.process(staged, events[offset], offset, 0)
            alerts += len(detection.alerts)
            staged.stage(detection, 0)
        for key, _, value in staged.writes():
            if value is None:
                base.pop(key, None)
            else:
                base[key] = value
    return (time.perf_counter() - started) / len(events) * 1e6, alerts


def run_detector_bench(threads: int = 2500, rounds: int = 5) -> dict[str, Any]:
    threaded = _events(threads, seed=0)
    # The same tickets as today's contract: each its own one-message customer thread.
    single = [replace(e, thread_id=e.event_id, author_role="customer") for e in threaded]
    best: dict[str, tuple[float, int]] = {}
    for r in range(rounds):
        for name, events in (("threads", threaded), ("one_message", single))[:: 1 if r % 2 else -1]:
            us, alerts = _run(events)
            if name not in best or us < best[name][0]:
                best[name] = (us, alerts)
    return {
        "ticket_turns": len(threaded),
        "us_per_ticket_threads": round(best["threads"][0], 2),
        "us_per_ticket_one_message": round(best["one_message"][0], 2),
        "ratio_threads_to_one_message": round(best["threads"][0] / best["one_message"][0], 3),
        "alerts": {"threads": best["threads"][1], "one_message": best["one_message"][1]},
    }
