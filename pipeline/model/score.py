"""`moodpipe score`: texts on stdin -> one JSON line of emotions per text on stdout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from pipeline.emotions import LABELS
from pipeline.inference.model_info import ModelInfo, Predictions


def read_inputs(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Plain lines are texts; a line holding a JSON object uses its `text` (and keeps `id`)."""
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {number}: not valid JSON: {exc}") from exc
            if not isinstance(doc.get("text"), str):
                raise ValueError(f'line {number}: a JSON line needs a string "text" field')
            yield {"id": doc.get("id"), "text": doc["text"]}
        else:
            yield {"id": None, "text": line}


def to_json_lines(items: list[dict[str, Any]], pred: Predictions, model: ModelInfo) -> list[str]:
    out = []
    for i, item in enumerate(items):
        probs = pred.probabilities[i]
        doc: dict[str, Any] = {"id": item["id"]} if item["id"] is not None else {}
        doc |= {
            "text": item["text"],
            # 5 decimals: beyond that, scores differ with batch shape (float noise).
            "probabilities": {
                label: round(float(p), 5) for label, p in zip(LABELS, probs, strict=True)
            },
            "top_emotion": LABELS[int(probs.argmax())],
            "labels": pred.labels[i],
            "ekman": pred.ekman[i],
            "sentiment": pred.sentiment[i],
            "model": model.name,
            "model_version": model.version,
        }
        out.append(json.dumps(doc, ensure_ascii=False))
    return out


def score_stream(
    lines: Iterable[str], out: TextIO, triton_url: str | None, model_name: str, batch: int = 64
) -> int:
    inputs = read_inputs(lines)
    count = 0

    def batches() -> Iterator[list[dict[str, Any]]]:
        chunk: list[dict[str, Any]] = []
        for item in inputs:
            chunk.append(item)
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    if triton_url:
        from pipeline.inference.triton_client import TritonEmotionClient

        async def run() -> int:
            client = TritonEmotionClient(triton_url, model_name, max_backoff=2.0)
            n = 0
            try:
                info = await client.model_info()
                for items in batches():
                    pred = await client.score([it["text"] for it in items])
                    out.write("\n".join(to_json_lines(items, pred, info)) + "\n")
                    n += len(items)
            finally:
                await client.close()
            return n

        return asyncio.run(run())

    from pipeline.inference.onnx_local import LocalEmotionModel

    model = LocalEmotionModel(model_name=model_name)
    for items in batches():
        pred = model.predict([it["text"] for it in items])
        out.write("\n".join(to_json_lines(items, pred, model.info)) + "\n")
        count += len(items)
    return count
