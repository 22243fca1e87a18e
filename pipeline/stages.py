"""The scoring flow for one batch: preprocess -> inference -> postprocess -> sink(s).

Kept free of Faust so it reads as the pipeline it is; `pipeline.app` feeds it
batches of Kafka events and acks them only after `process` returns.

Every record of a batch ends in exactly one of two places: ClickHouse
(`scored_events`) or the dead-letter topic. Outages are waited out inside the
clients; any other failure of a stage is isolated (`pipeline.isolation`): the
records it is caused by are dead-lettered with a `poison_*` code and the stage's
error, and the rest of the batch goes on. `process` raises only on cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.deadletter import DEAD_LETTER_COLUMNS, dead_letter_row
from pipeline.failures import describe, is_outage
from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.inference.triton_client import TritonEmotionClient
from pipeline.isolation import isolate
from pipeline.language import Language, LanguagePolicy
from pipeline.postprocess import KafkaPosition, scored_message, scored_row, summarise
from pipeline.records import RecordValidator, Rejected
from pipeline.records.models import InputRecord, RejectCode
from pipeline.redaction import Redactor
from pipeline.sink.buffer import StorageBuffer
from pipeline.sink.clickhouse import ClickHouseSink

log = logging.getLogger("moodpipe.stages")


@dataclass(frozen=True, slots=True)
class RawRecord:
    key: bytes | None
    value: bytes | None
    position: KafkaPosition


# A record bound for the dead-letter topic: why, original key and value, where from.
Letter = tuple[Rejected, bytes | None, bytes | None, KafkaPosition]
# Sends dead letters and returns once the broker has every one of them.
DeadLetterSender = Callable[[Sequence[Letter]], Awaitable[None]]
# Publishes a batch's scored_event messages and returns once the broker has them.
ScoredPublisher = Callable[[list[dict[str, Any]]], Awaitable[None]]


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


_Row = tuple[list[Any], _Good]  # a scored_events row and the record it came from


def _letter(rejected: Rejected, raw: RawRecord) -> Letter:
    return (rejected, raw.key, raw.value, raw.position)


def _reason_redacted(letter: Letter, redactor: Redactor) -> Letter:
    rejected, key, value, position = letter
    try:
        reason = redactor.redact(rejected.reason).text
    except Exception:  # noqa: BLE001 - never lose a dead letter over its reason
        reason = rejected.reason
    return (Rejected(rejected.code, reason), key, value, position)


def _poison(code: RejectCode, raw: RawRecord, exc: BaseException) -> Letter:
    stage = code.removeprefix("poison_")
    reason = (f"{stage} failed for this record alone, while the service worked for "
              f"other input: {describe(exc)}")  # fmt: skip
    return _letter(Rejected(code, reason), raw)


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
        inference: TritonEmotionClient,
        writer: RowWriter,
        buffer: StorageBuffer[_Row] | None = None,
        *,
        data_attempts: int = 3,
        redactor: Redactor | None = None,
        multilingual: TritonEmotionClient | None = None,
        languages: LanguagePolicy | None = None,
    ) -> None:
        self.source = source
        self.validator = validator
        self.inference = inference
        # Route -> the client of the model that scores it (pipeline/language.py).
        self.models = {"english": inference, "multilingual": multilingual or inference}
        self.languages = languages or _ENGLISH_ONLY
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
        resolve = self.languages.resolve
        for raw in batch:  # preprocess: decode, validate, language (never raises)
            outcome = self.validator.validate(self.source, raw.value)
            if isinstance(outcome, Rejected):
                letters.append(_letter(outcome, raw))
            else:
                good.append(_Good(outcome, raw, resolve(outcome.lang, outcome.score_text)))
        rows: list[_Row] = []
        if good:
            routes: dict[str, list[_Good]] = {}
            for item in good:
                routes.setdefault(item.language.route, []).append(item)
            # Each model gets its part of the batch, concurrently.
            answers = await asyncio.gather(
                *(
                    self._infer_with(self.models[route], part, letters)
                    for route, part in routes.items()
                )
            )
            rows = self._rows([triple for answer in answers for triple in answer], letters)
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
        self, client: TritonEmotionClient, good: list[_Good], letters: list[Letter]
    ) -> list[tuple[list[_Good], Predictions, ModelInfo]]:
        model, parts = await asyncio.gather(client.model_info(), self._infer(client, good, letters))
        return [(part, predictions, model) for part, predictions in parts]

    async def _infer(
        self, client: TritonEmotionClient, good: list[_Good], letters: list[Letter]
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
        for item, exc in found.poison:
            letters.append(_poison("poison_inference", item.raw, exc))
        return found.done

    def _rows(
        self,
        parts: list[tuple[list[_Good], Predictions, ModelInfo]],
        letters: list[Letter],
    ) -> list[_Row]:
        scored_at = datetime.now(UTC)
        rows: list[_Row] = []
        for part, predictions, model in parts:
            try:
                summary = summarise(predictions.probabilities)
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
                    letters.append(_poison("poison_postprocess", item.raw, exc))
                    continue
                rows.append((row, item))
        return rows


class RowWriter:
    """The sink stage: rows -> ClickHouse (one lookup and one insert per call), then
    the scored topic; rows either of them rejects alone, and every letter, -> the
    dead-letter topic and its ClickHouse copy."""

    def __init__(
        self,
        sink: ClickHouseSink,
        send_dead_letters: DeadLetterSender,
        publish_scored: ScoredPublisher | None = None,
        *,
        data_attempts: int = 3,
    ) -> None:
        self.sink = sink
        self.send_dead_letters = send_dead_letters
        self.publish_scored = publish_scored
        self.data_attempts = data_attempts

    async def write(self, rows: list[_Row]) -> int:
        """Store, publish, dead-letter the poison; returns how many rows were stored."""
        letters: list[Letter] = []
        stored = await self._store(rows, None, letters)
        if self.publish_scored is not None and stored:
            await self._publish(stored, letters)
        await self.dead_letter(letters)
        return len(stored)

    async def _store(
        self, rows: list[_Row], stored: set[tuple[str, str]] | None, letters: list[Letter]
    ) -> list[_Row]:
        """Rows now in ClickHouse; rows ClickHouse rejects alone -> letters."""
        if not rows:
            return []
        try:
            await self.sink.write([row for row, _ in rows], stored, self.data_attempts)
            return rows
        except Exception as exc:
            if is_outage(exc):
                raise
            log.warning("insert of %d rows failed: %s; isolating", len(rows), describe(exc))

        async def write(part: list[_Row]) -> None:
            await self.sink.write([row for row, _ in part], stored, 1)

        found = await isolate(
            rows,
            write,
            probe=self.sink.probe,
            what="storage",
            log=log,
            single_attempts=self.data_attempts,
            initial_backoff=self.sink.settings.retry_initial_backoff,
            max_backoff=self.sink.settings.retry_max_backoff,
        )
        for (_, item), exc in found.poison:
            letters.append(_poison("poison_storage", item.raw, exc))
        return [row for part, _ in found.done for row in part]

    async def _publish(self, rows: list[_Row], letters: list[Letter]) -> None:
        """Scored events onto the scored topic (after ClickHouse: a consumer may look an
        event up). A row that cannot be published is stored but would miss alerting:
        it is dead-lettered too, with the reason."""
        publish = self.publish_scored
        assert publish is not None
        messages: list[tuple[dict[str, Any], _Good]] = []
        for row, item in rows:
            try:
                messages.append((scored_message(row), item))
            except Exception as exc:  # noqa: BLE001 - this row's message is unusable
                letters.append(_poison("poison_publish", item.raw, exc))
        try:
            await publish([message for message, _ in messages])
            return
        except Exception as exc:
            if is_outage(exc):
                raise
            log.warning("scored-topic produce failed: %s; isolating", describe(exc))

        async def healthy() -> None:  # outages are classified; a producer has no probe
            return None

        found = await isolate(
            messages,
            lambda part: publish([message for message, _ in part]),
            probe=healthy,
            what="scored-topic produce",
            log=log,
        )
        for (_, item), exc in found.poison:
            letters.append(_poison("poison_publish", item.raw, exc))

    async def dead_letter(self, letters: list[Letter]) -> None:
        if not letters:
            return
        for rejected, _, _, position in letters:
            log.info("dead-lettering %s[%d]@%d: %s", position.topic, position.partition,
                     position.offset, rejected.reason[:300])  # fmt: skip
        await self.send_dead_letters(letters)
        await self.copy_dead_letters(self.sink, letters)

    @staticmethod
    async def copy_dead_letters(sink: ClickHouseSink, letters: Sequence[Letter]) -> None:
        """A queryable copy in `dead_letters` for dashboards and SQL; the topic keeps the
        bytes. A row the table rejects alone is logged and left out: the topic has it."""
        failed_at = datetime.now(UTC)
        rows = [dead_letter_row(rejected, pos, failed_at) for rejected, _, _, pos in letters]
        try:
            await sink.write_to("dead_letters", DEAD_LETTER_COLUMNS, rows)
            return
        except Exception as exc:
            if is_outage(exc):
                raise
        found = await isolate(
            rows,
            lambda part: sink.write_to("dead_letters", DEAD_LETTER_COLUMNS, part, 1),
            probe=sink.probe,
            what="dead_letters copy",
            log=log,
        )
        for row, exc in found.poison:
            log.error("dead letter %s[%s]@%s not copied to ClickHouse: %s",
                      row[0], row[1], row[2], describe(exc))  # fmt: skip
