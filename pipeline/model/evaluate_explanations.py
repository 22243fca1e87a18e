"""`moodpipe eval --explanations`: faithfulness and cost of the alert explanations.

Samples (texts the models should find angry): GoEmotions test texts labelled anger,
annoyance or disgust (English model), and BRIGHTER dev texts labelled anger or
disgust in Chinese, German and Spanish (multilingual model, routed by declared
language, as the worker routes them). For each set: ERASER's comprehensiveness
(pipeline/explain/faithfulness.py) with k = 3 on the anger score, and the cost of an
explanation (one batched call of 1 + units texts) against scoring the text once,
timed in the same run.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from pipeline.emotions import LABELS
from pipeline.explain import Explainer, anger_target
from pipeline.explain.faithfulness import comprehensiveness
from pipeline.model.corpora import read_brighter
from pipeline.model.data import read_split
from pipeline.scoring.routing import local_router
from pipeline.settings import Settings

PER_SET = 100
BRIGHTER_SETS = {"chn": "zh", "deu": "de", "esp": "es"}


def samples(data_dir: Path, per_set: int = PER_SET) -> dict[str, list[tuple[str, str]]]:
    sets: dict[str, list[tuple[str, str]]] = {}
    split = read_split(data_dir / "goemotions" / "test.tsv")
    angry = [LABELS.index(e) for e in ("anger", "annoyance", "disgust")]
    sets["en (GoEmotions test)"] = [
        (text, "en") for text, row in zip(split.texts, split.labels, strict=True)
        if row[angry].any() and len(text.split()) >= 6
    ][:per_set]  # fmt: skip
    for code, lang in BRIGHTER_SETS.items():
        path = data_dir / "brighter-dev" / f"{code}.csv"
        if not path.exists():
            continue
        data = read_brighter(path)
        # SIX = anger, disgust, fear, joy, sadness, surprise
        rows = [
            (t, lang) for t, labels in zip(data.texts, data.labels, strict=True)
            if labels[0] or labels[1]
        ]  # fmt: skip
        sets[f"{lang} (BRIGHTER dev {code})"] = rows[:per_set]
    return sets


def evaluate_faithfulness(settings: Settings, data_dir: Path) -> dict[str, Any]:
    router = local_router(settings)
    explainer = Explainer(router, settings.explain_max_units)
    target = anger_target()

    async def run() -> dict[str, Any]:
        results: dict[str, Any] = {"sets": {}, "cost": {}}
        for name, items in samples(data_dir).items():
            results["sets"][name] = await comprehensiveness(explainer, items, target, k=3)
            # Cost: an explanation vs scoring the text alone, same texts, same run.
            texts = items[:30]
            started = time.perf_counter()
            for text, lang in texts:
                await explainer.scores([text], lang, target)
            single = (time.perf_counter() - started) / len(texts)
            started = time.perf_counter()
            units = 0
            for text, lang in texts:
                units += len((await explainer.explain(text, lang, target)).effects)
            explained = (time.perf_counter() - started) / len(texts)
            results["cost"][name] = {
                "ms_per_explanation": round(explained * 1000, 2),
                "ms_per_single_score": round(single * 1000, 2),
                "ratio": round(explained / single, 2),
                "mean_units": round(units / len(texts), 1),
                "where": "in-process onnxruntime, this machine's CPU",
            }
        return results

    return asyncio.run(run())
