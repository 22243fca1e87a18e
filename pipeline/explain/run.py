"""`moodpipe explain`: explanations for texts, through the models the worker would use."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pipeline.explain.occlusion import DEFAULT_TOP, Explainer, Target, anger_target, negative_target
from pipeline.scoring.routing import local_router, triton_router
from pipeline.settings import Settings


def target_named(name: str) -> Target:
    """'anger' (angry_customer's score), 'negative', or emotions joined by commas
    (summed: 'sadness,grief')."""
    if name == "anger":
        return anger_target()
    if name == "negative":
        return negative_target()
    emotions = tuple(e.strip() for e in name.split(",") if e.strip())
    return Target(name, emotions, "sum")


def explain_texts(
    texts: Sequence[str],
    langs: Sequence[str],
    settings: Settings,
    *,
    use_triton: bool = False,
    target: Target | None = None,
    top: int = DEFAULT_TOP,
) -> list[dict[str, Any]]:
    """One explanation per text, as stored on alerts (`Explanation.as_dict`)."""

    async def run() -> list[dict[str, Any]]:
        clients: list[Any] = []
        if use_triton:
            router, clients = await triton_router(settings, wait=False)
        else:
            router = local_router(settings)
        explainer = Explainer(router, settings.explain_max_units)
        try:
            out = []
            for text, lang in zip(texts, langs, strict=True):
                explanation = await explainer.explain(text, lang, target)
                out.append({"text": text, **explanation.as_dict(top)})
            return out
        finally:
            for client in clients:
                await client.close()

    return asyncio.run(run())
