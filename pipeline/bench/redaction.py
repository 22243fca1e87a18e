"""`moodpipe bench --redaction`: what PII redaction catches, misses, and costs.

- Quality on a small hand-labelled set (bench/data/pii_labelled.jsonl: support-ticket
  and social-post style texts with their PII spans, and hard negatives such as order
  and tracking numbers, Luhn-invalid cards, IBANs with a wrong checksum).
- Cost in µs per event on the sample traffic (posts and tickets, as the worker sees
  them), against the same loop without redaction, in the same run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.redaction import Redactor, Span
from pipeline.resources import resource_dir


def labelled_set(path: Path | None = None) -> list[dict[str, Any]]:
    path = path or resource_dir("bench") / "data" / "pii_labelled.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate(redactor: Redactor, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Span-level precision and recall: a found span counts when its kind matches a
    labelled span's and they overlap."""
    per_kind: dict[str, Counter[str]] = {}
    misses: list[list[str]] = []
    false_alarms: list[list[str]] = []
    for item in items:
        text = item["text"]
        labelled = [(kind, text.index(value), text.index(value) + len(value))
                    for kind, value in item["pii"]]  # fmt: skip
        found = redactor.find(text)
        matched: set[int] = set()
        for span in found:
            hit = next(
                (i for i, (kind, start, end) in enumerate(labelled)
                 if i not in matched and kind == span.kind and _overlap(span, start, end)),
                None,
            )  # fmt: skip
            counts = per_kind.setdefault(span.kind, Counter())
            if hit is None:
                counts["fp"] += 1
                false_alarms.append([span.kind, text[span.start : span.end], text])
            else:
                matched.add(hit)
                counts["tp"] += 1
        for i, (kind, start, end) in enumerate(labelled):
            if i not in matched:
                per_kind.setdefault(kind, Counter())["fn"] += 1
                misses.append([kind, text[start:end], text])
    total = sum((c for c in per_kind.values()), Counter())
    return {
        "texts": len(items),
        "labelled_spans": sum(len(i["pii"]) for i in items),
        "precision": _ratio(total["tp"], total["tp"] + total["fp"]),
        "recall": _ratio(total["tp"], total["tp"] + total["fn"]),
        "per_kind": {
            k: {
                **dict(c),
                "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
                "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
            }
            for k, c in sorted(per_kind.items())
        },
        "missed": misses,
        "false_alarms": false_alarms,
    }


def cost_per_event(
    redactor: Redactor, events: list[list[str]], rounds: int = 3
) -> dict[str, float]:
    """µs per event (its stored texts: a post's text, a ticket's subject and body)
    for redact(), best of `rounds`, less the same loop without redaction."""

    def best(fn: Any) -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            for texts in events:
                for text in texts:
                    fn(text)
            times.append(time.perf_counter() - started)
        return min(times) / len(events) * 1e6

    baseline = best(lambda text: text)
    with_redaction = best(redactor.redact)
    with_pii = sum(1 for texts in events if any(redactor.find(t) for t in texts))
    return {
        "events": len(events),
        "us_per_event": round(with_redaction - baseline, 1),
        "share_with_pii": round(with_pii / len(events), 3),
    }


def _overlap(span: Span, start: int, end: int) -> bool:
    return span.start < end and start < span.end


def _ratio(a: int, b: int) -> float:
    return round(a / b, 3) if b else 1.0


def run_redaction_bench(json_out: str | None, console: Any) -> dict[str, Any]:
    from pipeline.records import RecordValidator
    from pipeline.records.models import SupportTicket
    from pipeline.traffic import sample_posts, sample_tickets

    started = time.perf_counter()
    redactor = Redactor("mask")
    load_s = time.perf_counter() - started
    quality = evaluate(redactor, labelled_set())
    validator = RecordValidator(256 * 1024, 10_000)
    events: list[list[str]] = []
    for source, records in (("post", sample_posts(1500)), ("ticket", sample_tickets(1500))):
        for r in records:
            record = validator.validate(source, r.value)
            if isinstance(record, SupportTicket):
                events.append([record.subject, record.body])
            else:
                events.append([getattr(record, "text", "")])
    cost = cost_per_event(redactor, events)
    # And what a text that does hold PII costs (the labelled ones with spans).
    with_pii = [[item["text"]] for item in labelled_set() if item["pii"]]
    cost["us_per_text_with_pii"] = cost_per_event(redactor, with_pii * 20)["us_per_event"]
    result = {"load_s": round(load_s, 2), "quality": quality, "cost": cost}
    console.print(
        f"PII redaction (Presidio, mask): precision {quality['precision']}, recall "
        f"{quality['recall']} on {quality['labelled_spans']} labelled spans in "
        f"{quality['texts']} texts; {cost['us_per_event']} µs per event on sample traffic "
        f"({cost['share_with_pii']:.1%} with PII), {cost['us_per_text_with_pii']} µs per text "
        f"holding PII; loads in {load_s:.1f} s"
    )
    for kind, figures in quality["per_kind"].items():
        console.print(f"  {kind}: {figures}")
    for kind, value, _ in quality["missed"]:
        console.print(f"  missed {kind}: {value!r}")
    for kind, value, _ in quality["false_alarms"]:
        console.print(f"  false alarm {kind}: {value!r}")
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result
