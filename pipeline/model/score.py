"""`moodpipe score`: texts on stdin -> one JSON line of emotions per text on stdout.

Every line is routed by language exactly as the worker routes it (a JSON line may
declare `lang`; otherwise it is detected), and says which `lang`, `model` and
`model_coverage` it got.

Each line goes through the worker's own input rules (`pipeline.records.validate`):
size, UTF-8, strict JSON, free-text cleaning, empty and over-long text. A line that
fails them is reported with its number and reason code, the way the worker would
dead-letter it, and the other lines are still scored.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from pipeline.emotions import LABELS
from pipeline.postprocess import summarise_predictions
from pipeline.records.models import Rejected
from pipeline.records.typed import LANG_PATTERN
from pipeline.records.validate import (
    clean_text,
    decode_bounded,
    parse_json,
    text_rejection,
)
from pipeline.scoring.routing import (
    RoutedScores,
    in_order,
    local_router,
    triton_router,
)
from pipeline.settings import Settings, load_settings


@dataclass(frozen=True)
class TextLimits:
    """The worker's limits (MOODPIPE_MAX_RECORD_BYTES, MOODPIPE_MAX_TEXT_CHARS)."""

    max_record_bytes: int
    max_text_chars: int

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TextLimits:
        settings = settings or load_settings()
        return cls(settings.max_record_bytes, settings.max_text_chars)


# Where a line's rejection goes: its 1-based number and why.
OnReject = Callable[[int, Rejected], None]


def line_error(number: int, rejected: Rejected) -> str:
    """'line 3: not valid UTF-8: ... [invalid_utf8]': the worker's reason and code."""
    return f"line {number}: {rejected.reason.removeprefix('value is ')} [{rejected.code}]"


def raise_on_reject(number: int, rejected: Rejected) -> None:
    raise ValueError(line_error(number, rejected))


def read_line(raw: bytes | str, limits: TextLimits) -> dict[str, Any] | Rejected:
    """One input line: plain text, or a JSON object with "text" (and "id", "lang")."""
    if isinstance(raw, str):  # lone surrogates stay invalid: they are not UTF-8
        raw = raw.encode("utf-8", "surrogatepass")
    line = decode_bounded(raw.rstrip(b"\r\n"), limits.max_record_bytes)
    if isinstance(line, Rejected):
        return line
    item: dict[str, Any] = {"id": None, "text": line, "lang": ""}
    field = "text"
    if line.lstrip().startswith("{"):
        doc = parse_json(line)
        if isinstance(doc, Rejected):
            return doc
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
            return Rejected("schema", 'a JSON line needs a string "text" field')
        lang = doc.get("lang", "")
        if not isinstance(lang, str) or (lang and not re.match(LANG_PATTERN, lang)):
            return Rejected("schema", '"lang" must be a language tag such as "zh" or "pt-BR"')
        item = {"id": doc.get("id"), "text": doc["text"], "lang": lang}
        field = "$.text"
    item["text"] = clean_text(item["text"])
    return text_rejection(item["text"], field, item["text"], field, limits.max_text_chars) or item


def read_inputs(
    lines: Iterable[bytes | str],
    limits: TextLimits | None = None,
    on_reject: OnReject = raise_on_reject,
) -> Iterator[dict[str, Any]]:
    limits = limits or TextLimits.from_settings()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        item = read_line(raw, limits)
        if isinstance(item, Rejected):
            on_reject(number, item)
        else:
            yield item


def to_json_lines(items: list[dict[str, Any]], parts: list[RoutedScores]) -> list[str]:
    """One JSON line per item, in input order, with the language and model it was routed to."""
    out = []
    # The same numbers the worker stores (pipeline/postprocess): one summary per part.
    summaries = {id(part): summarise_predictions(part.predictions) for part in parts}
    for i, part, row in in_order(parts, len(items)):
        item = items[i]
        pred = part.predictions
        probs = pred.probabilities[row]
        language = part.languages[row]
        valence, arousal, dominance, strength = summaries[id(part)].affect[row]
        doc: dict[str, Any] = {"id": item["id"]} if item["id"] is not None else {}
        doc |= {
            "text": item["text"],
            "lang": language.lang,
            # 5 decimals: beyond that, scores differ with batch shape (float noise).
            "probabilities": {
                label: round(float(p), 5) for label, p in zip(LABELS, probs, strict=True)
            },
            "top_emotion": LABELS[int(probs.argmax())],
            "labels": pred.labels[row],
            "ekman": pred.ekman[row],
            "sentiment": pred.sentiment[row],
            "valence": valence,
            "arousal": arousal,
            "dominance": dominance,
            "intensity": strength,
            "model": part.model.name,
            "model_version": part.model.version,
            "model_coverage": language.coverage,
        }
        out.append(json.dumps(doc, ensure_ascii=False))
    return out


def score_stream(
    lines: Iterable[bytes | str],
    out: TextIO,
    settings: Settings | None = None,
    *,
    use_triton: bool = False,
    batch: int = 64,
    limits: TextLimits | None = None,
    on_reject: OnReject = raise_on_reject,
) -> int:
    """Score every line that passes the input rules; returns how many were scored.
    `on_reject` gets the others (by default the first one raises ValueError).

    Each line is routed as the worker routes it (`pipeline.scoring.routing`): its
    declared `lang`, else the detected one, picks the model."""
    settings = settings or load_settings()
    limits = limits or TextLimits.from_settings(settings)
    inputs = read_inputs(lines, limits, on_reject)

    def batches() -> Iterator[list[dict[str, Any]]]:
        chunk: list[dict[str, Any]] = []
        for item in inputs:
            chunk.append(item)
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    async def run() -> int:
        clients: list[Any] = []
        if use_triton:
            router, clients = await triton_router(settings, wait=False)
        else:
            router = local_router(settings)
        n = 0
        try:
            for items in batches():
                parts = await router.score(
                    [it["text"] for it in items], [it["lang"] for it in items]
                )
                out.write("\n".join(to_json_lines(items, parts)) + "\n")
                n += len(items)
        finally:
            for client in clients:
                await client.close()
        return n

    return asyncio.run(run())
