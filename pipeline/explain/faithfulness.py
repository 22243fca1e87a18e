"""Faithfulness of occlusion explanations: ERASER's comprehensiveness, top-k vs random-k.

For each text: remove its top k units (by occlusion effect) together and re-score;
remove k random units together (several draws, averaged) and re-score. A faithful
explanation lowers the score much more with its top units than at random (DeYoung
et al. 2020, "ERASER", comprehensiveness).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.explain.occlusion import Explainer, Target, removing


async def comprehensiveness(
    explainer: Explainer,
    items: Sequence[tuple[str, str]],
    target: Target,
    *,
    k: int = 3,
    draws: int = 5,
    seed: int = 0,
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """`items`: (text, lang). Texts with no more than k units are skipped (removing
    all of them tells nothing about which mattered)."""
    rng = random.Random(seed)
    top_drops: list[float] = []
    random_drops: list[float] = []
    wins = 0
    for text, lang in items:
        explanation = await explainer.explain(text, lang, target)
        if progress is not None:
            progress()
        effects = list(explanation.effects)
        if len(effects) <= k:
            continue
        top = sorted(effects, key=lambda e: (-e.delta, e.start))[:k]
        picks = [rng.sample(effects, k) for _ in range(draws)]
        variants = [removing(text, top)] + [removing(text, p) for p in picks]
        scores = await explainer.scores(variants, explanation.lang, target)
        top_drop = explanation.score - float(scores[0])
        random_drop = explanation.score - float(scores[1:].mean())
        top_drops.append(top_drop)
        random_drops.append(random_drop)
        wins += top_drop > random_drop
    n = len(top_drops)
    mean_top = statistics.fmean(top_drops) if n else 0.0
    mean_random = statistics.fmean(random_drops) if n else 0.0
    return {
        "texts": n,
        "k": k,
        "random_draws": draws,
        "target": target.name,
        "mean_score_drop_top_k": round(mean_top, 4),
        "mean_score_drop_random_k": round(mean_random, 4),
        "ratio": round(mean_top / mean_random, 2) if mean_random > 0 else None,
        "top_beats_random_share": round(wins / n, 4) if n else None,
    }
