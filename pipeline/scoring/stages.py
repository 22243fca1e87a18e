"""The scoring flow for one batch: preprocess -> inference -> postprocess -> sink(s).

Kept free of Faust so it reads as the pipeline it is; the worker's scoring agents
(`pipeline.worker.scoring_agents`) feed it batches of Kafka records and ack them only
after their rows are stored.

Every record of a batch ends in exactly one of two places: ClickHouse
(`scored_events`) or the dead-letter topic. Outages are waited out inside the
clients; any other failure of a stage is isolated (`pipeline.resilience.isolation`): the
records it is caused by are dead-lettered with a `poison_*` code and the stage's
error, and the rest of the batch goes on. `process` raises only on cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.inference.ports import EmotionModelClient
from pipeline.language import Language, LanguagePolicy
from pipeline.postprocess import scored_row, summarise_predictions
from pipeline.records import RecordValidator, Rejected
from pipeline.records.models import InputRecord
from pipeline.records.raw import RawRecord
from pipeline.redaction import Redactor
from pipeline.resilience.failures import describe, is_outage
from pipeline.resilience.isolation import isolate
from pipeline.scoring.routing import ModelRouter
from pipeline.sink.buffer import StorageBuffer
from pipeline.sink.dead_letters import Letter, letter_for, poison_letter
from pipeline.sink.writer import RowWriter, StoredRow

log = logging.getLogger("moodpipe.stages")


@dataclass
class BatchResult:
    scored: int  # rows handed to storage
    rejected: int  # records dead-lettered before storage
    stored: Awaitable[object]  # resolves once the rows are stored or dead-lettered


@dataclass(slots=True)
class _Good:
    record: InputRecord
    raw: RawRecord
    language: Language


# Without a policy (tests, replays of old recordings): the declared language, or
# English, all scored by the English model.
_ENGLISH_ONLY = LanguagePolicy(detect="off", detector=None, multilingual=False, assume="en")


def _reason_redacted(letter: Letter, redactor: Redactor) -> Letter:
    rejected, key, value, position = letter
    try:
        reason = redactor.redact(rejected.reason).text
    except Exception:  # noqa: BLE001 - never lose a dead letter over its reason
        reason = rejected.reason
    return (Rejected(rejected.code, reason), key, value, position)


class ScoringStages:
    """preprocess -> inference -> postprocess for one source; storage is `RowWriter`'s.

    With a `StorageBuffer`, the rows of many batches (of every agent in the worker) go
    to ClickHouse in one insert; `prepare` returns as soon as the batch is scored, with
    a future that resolves once its rows are stored.
    """

    def __init__(
        self,
        source: str,
        validator: RecordValidator,
        inference: EmotionModelClient,
        writer: RowWriter,
        buffer: StorageBuffer[StoredRow] | None = None,
        *,
        data_attempts: int = 3,
        redactor: Redactor | None = None,
        multilingual: EmotionModelClient | None = None,
        languages: LanguagePolicy | None = None,
    ) -> None:
        self.source = source
        self.validator = validator
        self.inference = inference
        # The one routing rule (pipeline/scoring/routing.py), shared with `moodpipe score`.
        self.router = ModelRouter(languages or _ENGLISH_ONLY, inference, multilingual)
        self.writer = writer
        self.buffer = buffer
        self.data_attempts = data_attempts
        self.redactor = redactor

    async def process(self, batch: Sequence[RawRecord]) -> BatchResult:
        """Returns only when every record is in ClickHouse or on the dead-letter topic."""
        result = await self.prepare(batch)
        await result.stored
        return result

    async def prepare(self, batch: Sequence[RawRecord]) -> BatchResult:
        """Validate and score the batch and dead-letter what cannot be scored; the
        result's `stored` resolves when the scored rows are stored (or dead-lettered)."""
        good: list[_Good] = []
        letters: list[Letter] = []
        resolve = self.router.resolve
        for raw in batch:  # preprocess: decode, validate, language (never raises)
            outcome = self.validator.validate(self.source, raw.value)
            if isinstance(outcome, Rejected):
                letters.append(letter_for(outcome, raw))
            else:
                good.append(_Good(outcome, raw, resolve(outcome.lang, outcome.score_text)))
        rows: list[StoredRow] = []
        if good:
            routes = self.router.split(good, lambda item: item.language)
            # Each model gets its part of the batch, concurrently.
            answers = await asyncio.gather(
                *(
                    self._infer_with(self.router.client(route), part, letters)
                    for route, part in routes.items()
                )
            )
            rows = self._rows([triple for answer in answers for triple in answer], letters)
            if len(routes) > 1:
                # Back in input order: the routes came back one after the other, and the
                # scored topic must keep a partition's order (a thread's turns, a
                # brand's windows) when one batch mixes languages.
                rows.sort(key=lambda r: (r[1].raw.position.partition, r[1].raw.position.offset))
        if self.redactor is not None and letters:
            # A reason may quote the record (a schema error shows the bad value); the
            # log and the dead_letters table get it redacted, the topic keeps the bytes.
            letters = [_reason_redacted(letter, self.redactor) for letter in letters]
        await self.writer.dead_letter(letters)
        if self.buffer is not None:
            stored: Awaitable[object] = self.buffer.submit(rows)
        else:
            stored = asyncio.ensure_future(self.writer.write(rows))
        return BatchResult(scored=len(rows), rejected=len(letters), stored=stored)

    # --- the stages -------------------------------------------------------------

    async def _infer_with(
        self, client: EmotionModelClient, good: list[_Good], letters: list[Letter]
    ) -> list[tuple[list[_Good], Predictions, ModelInfo]]:
        model, parts = await asyncio.gather(client.model_info(), self._infer(client, good, letters))
        return [(part, predictions, model) for part, predictions in parts]

    async def _infer(
        self, client: EmotionModelClient, good: list[_Good], letters: list[Letter]
    ) -> list[tuple[list[_Good], Predictions]]:
        """Predictions per part of the batch; records Triton rejects alone -> letters."""
        try:
            texts = [g.record.score_text for g in good]
            return [(good, await client.score(texts))]
        except Exception as exc:
            if is_outage(exc):
                raise
            log.warning("inference of %d texts failed: %s; isolating", len(good), describe(exc))
        found = await isolate(
            good,
            lambda part: client.score([g.record.score_text for g in part], 1),
            probe=client.probe,
            what=f"{self.source} inference",
            log=log,
            single_attempts=self.data_attempts,
            initial_backoff=client.initial_backoff,
            max_backoff=client.max_backoff,
        )
        for item, error in found.poison:
            letters.append(poison_letter("poison_inference", item.raw, error))
        return found.done

    def _rows(
        self,
        parts: list[tuple[list[_Good], Predictions, ModelInfo]],
        letters: list[Letter],
    ) -> list[StoredRow]:
        scored_at = datetime.now(UTC)
        rows: list[StoredRow] = []
        for part, predictions, model in parts:
            try:
                summary = summarise_predictions(predictions)
            except Exception:  # noqa: BLE001 - a row the batch cannot take: row by row below
                summary = None
            for i, item in enumerate(part):
                try:
                    row = scored_row(
                        item.record,
                        predictions,
                        i,
                        item.raw.position,
                        model,
                        scored_at,
                        item.language,
                        self.redactor,
                        summary,
                    )
                except Exception as exc:  # noqa: BLE001 - this record's output is unusable
                    letters.append(poison_letter("poison_postprocess", item.raw, exc))
                    continue
                rows.append((row, item))
        return rows
