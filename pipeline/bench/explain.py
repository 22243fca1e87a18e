"""What an explanation costs per alert: one batched call of 1 + units texts, against
scoring the same text once, same run, in-process or through Triton.

Texts: the customer turns of the written support threads (pipeline/traffic), the
alerted kind of text, in their six languages, each routed as the worker routes it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from pipeline.explain import Explainer, anger_target
from pipeline.scoring.routing import local_router, triton_router
from pipeline.settings import Settings
from pipeline.traffic.threads import written_threads


def run_explain_cost(settings: Settings, use_triton: bool, rounds: int = 3) -> dict[str, Any]:
    items = [(text, t.lang) for t in written_threads() for role, text in t.turns
             if role == "customer"]  # fmt: skip

    async def run() -> dict[str, Any]:
        clients: list[Any] = []
        if use_triton:
            router, clients = await triton_router(settings, wait=False)
        else:
            router = local_router(settings)
        explainer = Explainer(router, settings.explain_max_units)
        target = anger_target()
        try:
            await explainer.explain(*items[0], target)  # warm-up (and jieba's dictionary)
            by_lang: dict[str, dict[str, list[float]]] = {}
            units: list[int] = []
            for _ in range(rounds):
                for text, lang in items:
                    cell = by_lang.setdefault(lang, {"single": [], "explain": []})
                    started = time.perf_counter()
                    await explainer.scores([text], lang, target)
                    cell["single"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    units.append(len((await explainer.explain(text, lang, target)).effects))
                    cell["explain"].append(time.perf_counter() - started)
        finally:
            for client in clients:
                await client.close()
        per_lang = {
            lang: {
                "ms_per_explanation": round(statistics.median(c["explain"]) * 1000, 2),
                "ms_per_single_score": round(statistics.median(c["single"]) * 1000, 2),
                "ratio": round(statistics.median(c["explain"]) / statistics.median(c["single"]), 2),
            }
            for lang, c in sorted(by_lang.items())
        }
        every = [x for c in by_lang.values() for x in c["explain"]]
        single = [x for c in by_lang.values() for x in c["single"]]
        return {
            "path": "triton-grpc" if use_triton else "in-process",
            "texts": len(items),
            "rounds": rounds,
            "mean_units": round(statistics.fmean(units), 1),
            "ms_per_explanation_median": round(statistics.median(every) * 1000, 2),
            "ms_per_single_score_median": round(statistics.median(single) * 1000, 2),
            "ratio": round(statistics.median(every) / statistics.median(single), 2),
            "by_lang": per_lang,
        }

    return asyncio.run(run())
