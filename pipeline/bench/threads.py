"""`moodpipe eval --threads`: thread alerts on written threads, and thread mood on CPED.

1. The hand-written support threads (pipeline/traffic/support_threads.yaml), each
   labelled `worsening` or `calm`, go through the worker's own steps: the record
   validator, the routing rule and model (`ModelRouter`), the postprocess that makes
   the scored row and scored-topic message, and the alert detector with the rules.
   A thread counts as flagged when it raises `thread_worsening`: precision and recall
   against the labels.
2. CPED (../shared/data/cped, real Chinese TV dialogue with a human sentiment and
   emotion per utterance): the first speaker plays the customer, the others the
   agent. Per customer turn, the model's mood against the human sentiment (Pearson r,
   and the 3-class agreement of the mood's sign); per dialogue, whether the thread
   rule fires on the model's moods and on the human moods (agreement, precision and
   recall of the model against the human reading). The dialogue text stays in the
   data folder: only figures are written.
"""

from __future__ import annotations

import asyncio
import csv
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.alerts.detector import AlertDetector
from pipeline.alerts.models import ScoredEvent
from pipeline.alerts.rules import AlertRules, load_rules
from pipeline.alerts.threads import observe_turn
from pipeline.postprocess import scored_message, scored_row, summarise_predictions
from pipeline.records import RecordValidator
from pipeline.records.models import SupportTicket
from pipeline.records.raw import KafkaPosition
from pipeline.scoring.routing import ModelRouter, in_order, local_router
from pipeline.settings import Settings
from pipeline.traffic.threads import WrittenThread, thread_turns, written_threads

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CPED_MOOD = {"positive": 0.8, "neutral": 0.0, "negative": -0.8}
CPED_ANGRY = {"anger", "disgust"}


async def score_tickets(router: ModelRouter, tickets: Sequence[SupportTicket]) -> list[ScoredEvent]:
    """Tickets -> scored events, through the worker's routing, model and postprocess."""
    parts = await router.score([t.score_text for t in tickets], [t.lang for t in tickets])
    summaries = {id(p): summarise_predictions(p.predictions) for p in parts}
    now = datetime.now(UTC)
    events = []
    for i, part, row in in_order(parts, len(tickets)):
        ticket = tickets[i]
        position = KafkaPosition("eval", 0, i, now)
        language = part.languages[row]
        values = scored_row(ticket, part.predictions, row, position, part.model, now, language,
                            None, summaries[id(part)])  # fmt: skip
        events.append(ScoredEvent.from_message(scored_message(values)))
    return events


def _apply(store: dict[str, Any], detector: AlertDetector, events: list[ScoredEvent]) -> list[Any]:
    alerts = []
    for offset, event in enumerate(events):
        detection = detector.process(store, event, offset, 0)
        alerts += detection.alerts
        for key, value in detection.writes:
            store[key] = value
        for key in detection.deletes:
            store.pop(key, None)
    return alerts


def evaluate_written(
    settings: Settings, rules: AlertRules | None = None, router: ModelRouter | None = None
) -> dict[str, Any]:
    rules = rules or load_rules(settings.alert_rules)
    router = router or local_router(settings)
    validator = RecordValidator(settings.max_record_bytes, settings.max_text_chars,
                                now=lambda: T0 + timedelta(days=400))  # fmt: skip
    threads = written_threads()
    tickets: list[SupportTicket] = []
    owner: list[WrittenThread] = []
    for n, thread in enumerate(threads):
        start = T0 + timedelta(hours=n)
        for turn in thread_turns(thread, start, brand="Eval", customer_id=f"C-{n:03d}",
                                 thread_id=thread.id):  # fmt: skip
            ticket = validator.validate("ticket", turn.record.value)
            assert isinstance(ticket, SupportTicket), ticket
            tickets.append(ticket)
            owner.append(thread)
    events = asyncio.run(score_tickets(router, tickets))
    alerts = _apply({}, AlertDetector(rules), events)
    flagged = {a.subject for a in alerts if a.kind == "thread_worsening"}
    rows = []
    for thread in threads:
        moods = [round(e.sentiment_score, 3) for e in events
                 if e.thread_id == thread.id and e.from_customer]  # fmt: skip
        kinds = [a.kind + ":" + a.severity for a in alerts if a.subject == thread.id
                 and a.kind.startswith("thread")]  # fmt: skip
        rows.append({"thread": thread.id, "lang": thread.lang, "expect": thread.expect,
                     "flagged": thread.id in flagged, "customer_moods": moods,
                     "alerts": kinds})  # fmt: skip
    return {"threads": len(threads), **_confusion(
        [t.expect == "worsening" for t in threads], [t.id in flagged for t in threads]),
        "by_thread": rows}  # fmt: skip


def _confusion(truth: Sequence[bool], predicted: Sequence[bool]) -> dict[str, Any]:
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    tn = len(truth) - tp - fp - fn
    return {
        "positives": sum(truth),
        "true_positives": tp, "false_positives": fp, "false_negatives": fn, "true_negatives": tn,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
    }  # fmt: skip


def _cped_dialogues(path: Path, limit: int, seed: int) -> list[list[dict[str, str]]]:
    dialogues: dict[str, list[dict[str, str]]] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            dialogues.setdefault(row["Dialogue_ID"], []).append(row)
    chosen = [d for d in dialogues.values() if len({r["Speaker"] for r in d}) >= 2 and len(d) >= 4]
    random.Random(seed).shuffle(chosen)
    return [sorted(d, key=lambda r: r["Utterance_ID"]) for d in chosen[:limit]]


def evaluate_cped(
    settings: Settings,
    data_dir: Path,
    rules: AlertRules | None = None,
    *,
    limit: int = 300,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    rules = rules or load_rules(settings.alert_rules)
    router = local_router(settings)
    dialogues = _cped_dialogues(data_dir / "cped" / "test_split.csv", limit, seed)
    thread_rule = rules.thread("CPED", "standard")
    anger_rule = rules.angry_customer("CPED", "standard")
    tickets: list[SupportTicket] = []
    gold: list[dict[str, str]] = []
    for n, dialogue in enumerate(dialogues):
        customer = dialogue[0]["Speaker"]
        for i, row in enumerate(dialogue):
            tickets.append(SupportTicket(
                id=f"cped-{n}-{i}", customer_id=f"C-{n}", customer_tier="standard",
                brand="CPED", product="dialogue", channel="chat", subject="",
                body=row["Utterance"] or "。", priority="normal", lang="zh",
                created_at=T0 + timedelta(minutes=n * 60 + i), thread_id=f"cped-{n}",
                author_role="customer" if row["Speaker"] == customer else "agent",
            ))  # fmt: skip
            gold.append(row)

    async def score_all() -> list[ScoredEvent]:
        out: list[ScoredEvent] = []
        for start in range(0, len(tickets), 256):
            out += await score_tickets(router, tickets[start : start + 256])
            if progress is not None:
                progress(min(len(tickets), start + 256))
        return out

    events = asyncio.run(score_all())
    model_moods, gold_moods = [], []
    agree = 0
    fired: dict[str, dict[str, bool]] = {}
    states: dict[tuple[str, str], Any] = {}
    for event, row in zip(events, gold, strict=True):
        human = replace(
            event,
            sentiment_score=CPED_MOOD[row["Sentiment"]],
            sentiment=row["Sentiment"],
            scores={"anger": 0.9 if row["Emotion"] in CPED_ANGRY else 0.0},
        )
        for reader, scored in (("model", event), ("human", human)):
            state, alerts = observe_turn(states.get((reader, event.thread_id)), scored,
                                         thread_rule, anger_rule)  # fmt: skip
            states[(reader, event.thread_id)] = state
            flags = fired.setdefault(event.thread_id, {"model": False, "human": False})
            flags[reader] |= any(a.kind == "thread_worsening" for a in alerts)
        if event.from_customer:
            model_moods.append(event.sentiment_score)
            gold_moods.append(CPED_MOOD[row["Sentiment"]])
            sign = "positive" if event.sentiment_score > 0.2 else (
                "negative" if event.sentiment_score < -0.2 else "neutral")  # fmt: skip
            agree += sign == row["Sentiment"]
    truth = [f["human"] for f in fired.values()]
    predicted = [f["model"] for f in fired.values()]
    return {
        "dialogues": len(dialogues),
        "customer_turns": len(model_moods),
        "turn_mood_pearson_r": round(float(np.corrcoef(model_moods, gold_moods)[0, 1]), 4),
        "turn_sentiment_agreement": round(agree / len(model_moods), 4),
        "human_mood_mean": round(statistics.fmean(gold_moods), 4),
        "thread_worsening_on_human_moods": sum(truth),
        "thread_worsening_on_model_moods": sum(predicted),
        "thread_alert_agreement": round(
            sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth), 4),
        **{f"model_vs_human_{k}": v for k, v in _confusion(truth, predicted).items()},
    }  # fmt: skip
