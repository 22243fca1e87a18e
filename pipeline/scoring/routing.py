"""The routing rule, once: a text's language -> the model that scores it, and how well.

Every entry point that scores text goes through `ModelRouter`: the worker's scoring
stages, `moodpipe score` (in-process or through Triton), `moodpipe eval`, the replay
tools (through the worker) and the bench. The language policy decides
(`pipeline.language`); the router holds the client of each route's model, so a
Chinese line on the command line reaches `emotion_ml` exactly as it would in the
worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.inference.ports import EmotionModelClient
from pipeline.language import Language, LanguagePolicy, Route
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.inference.triton_client import TritonEmotionClient

T = TypeVar("T")
log = logging.getLogger("moodpipe.routing")


@dataclass(frozen=True)
class RoutedScores:
    """One route's share of a batch: which texts, their languages, the model's answer."""

    indices: list[int]  # positions in the batch given to `ModelRouter.score`
    languages: list[Language]
    predictions: Predictions
    model: ModelInfo


class ModelRouter:
    def __init__(
        self,
        policy: LanguagePolicy,
        english: EmotionModelClient,
        multilingual: EmotionModelClient | None = None,
    ) -> None:
        """`multilingual`: None when no multilingual model is deployed; build the policy
        with `multilingual=False` then (everything to the English model, non-English
        flagged `model_coverage=none`)."""
        self.policy = policy
        self.clients: dict[Route, EmotionModelClient] = {
            "english": english,
            "multilingual": multilingual or english,
        }

    def resolve(self, declared: str, text: str) -> Language:
        return self.policy.resolve(declared, text)

    def client(self, route: Route) -> EmotionModelClient:
        return self.clients[route]

    @staticmethod
    def split(items: Sequence[T], language: Callable[[T], Language]) -> dict[Route, list[T]]:
        """Items grouped by route, each group in the batch's order."""
        routes: dict[Route, list[T]] = {}
        for item in items:
            routes.setdefault(language(item).route, []).append(item)
        return routes

    async def score(
        self, texts: Sequence[str], declared: Sequence[str] | None = None
    ) -> list[RoutedScores]:
        """Score `texts` (with their declared languages, "" = none): one call per route."""
        import asyncio

        langs = [self.resolve(d, t) for d, t in zip(declared or [""] * len(texts), texts,
                                                       strict=True)]  # fmt: skip
        routes = self.split(range(len(texts)), langs.__getitem__)

        async def one(route: Route, idx: list[int]) -> RoutedScores:
            client = self.clients[route]
            predictions, model = await asyncio.gather(
                client.score([texts[i] for i in idx]), client.model_info()
            )
            return RoutedScores(idx, [langs[i] for i in idx], predictions, model)

        return list(await asyncio.gather(*(one(r, idx) for r, idx in routes.items())))


def in_order(parts: list[RoutedScores], n: int) -> list[tuple[int, RoutedScores, int]]:
    """(batch position, its part, row within the part) for every text, in batch order."""
    where: list[tuple[int, RoutedScores, int]] = [(-1, parts[0], 0)] * n if parts else []
    for part in parts:
        for row, i in enumerate(part.indices):
            where[i] = (i, part, row)
    return where


def probabilities(parts: list[RoutedScores], n: int) -> np.ndarray:
    """The (n, 28) probabilities of a routed batch, in batch order."""
    out = np.zeros((n, 28), dtype=np.float32)
    for part in parts:
        out[part.indices] = part.predictions.probabilities
    return out


def local_router(settings: Settings) -> ModelRouter:
    """In-process models (`moodpipe score --local`, `eval`): the English one, and the
    multilingual one when it is built (`moodpipe model build`)."""
    from pipeline.inference.onnx_local import LocalEmotionModel, LocalModelClient, built

    english = LocalModelClient(LocalEmotionModel(model_name=settings.model_name))
    multilingual = None
    name = settings.multilingual_model_name
    if name and built(name):
        multilingual = LocalModelClient(LocalEmotionModel(model_name=name))
    elif name:
        log.warning("%r is not built (moodpipe model build): non-English text is scored by "
                    "%r and marked model_coverage=none", name, settings.model_name)  # fmt: skip
    policy = LanguagePolicy.from_settings(settings, multilingual is not None)
    return ModelRouter(policy, english, multilingual)


async def triton_multilingual(settings: Settings, *, wait: bool) -> TritonEmotionClient | None:
    """The multilingual model's Triton client, or None when this Triton does not serve
    it (a deployment choice, not an outage). `wait`: wait out a Triton that does not
    answer (the worker); otherwise raise at once (a command a person runs)."""
    from pipeline.inference.triton_client import TritonEmotionClient

    name = settings.multilingual_model_name
    if not name:
        return None
    client = TritonEmotionClient.from_settings(settings, name)
    if wait:
        served = await client.served()
    else:
        try:
            await client.check()
            served = True
        except LookupError:
            served = False
    if not served:
        log.warning("Triton at %s does not serve %r: non-English events are scored by %r "
                    "and marked model_coverage=none (MOODPIPE_MULTILINGUAL_MODEL_NAME)",
                    settings.triton_url, name, settings.model_name)  # fmt: skip
        await client.close()
        return None
    return client


async def triton_router(
    settings: Settings, *, wait: bool
) -> tuple[ModelRouter, list[TritonEmotionClient]]:
    """The router over Triton's models, and the clients to close after use.

    `wait`: a worker waits out a Triton that does not answer; a command a person runs
    (`wait=False`) fails at once instead of retrying an outage forever.
    """
    from pipeline.inference.triton_client import TritonEmotionClient

    if wait:
        english = TritonEmotionClient.from_settings(settings, settings.model_name)
    else:
        english = TritonEmotionClient.from_settings(
            settings.model_copy(update={"retry_max_backoff": 2.0}), settings.model_name
        )
        await english.check()
    multilingual = await triton_multilingual(settings, wait=wait)
    clients = [english] + ([multilingual] if multilingual is not None else [])
    policy = LanguagePolicy.from_settings(settings, multilingual is not None)
    return ModelRouter(policy, english, multilingual), clients
