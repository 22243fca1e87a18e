"""The scoring flow for one batch: preprocess -> inference -> postprocess -> sink(s).

Kept free of Faust so it reads as the pipeline it is; `pipeline.app` feeds it
batches of Kafka events and acks them only after `process` returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.deadletter import DEAD_LETTER_COLUMNS, dead_letter, dead_letter_row
from pipeline.inference.triton_client import TritonEmotionClient
from pipeline.postprocess import KafkaPosition, scored_message, scored_row
from pipeline.records import RecordValidator, Rejected
from pipeline.records.models import InputRecord
from pipeline.sink.clickhouse import ClickHouseSink

log = logging.getLogger("moodpipe.stages")


@dataclass(frozen=True, slots=True)
class RawRecord:
    key: bytes | None
    value: bytes | None
    position: KafkaPosition


# Sends one dead letter (value, headers, original key) and returns once it is durable.
DeadLetterSender = Callable[[bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[None]]
# Publishes a batch's scored_event messages and returns once the broker has them.
ScoredPublisher = Callable[[list[dict[str, Any]]], Awaitable[None]]


@dataclass
class BatchResult:
    scored: int
    rejected: int


class ScoringStages:
    def __init__(
        self,
        source: str,
        validator: RecordValidator,
        inference: TritonEmotionClient,
        sink: ClickHouseSink,
        send_dead_letter: DeadLetterSender,
        publish_scored: ScoredPublisher | None = None,
    ) -> None:
        self.source = source
        self.validator = validator
        self.inference = inference
        self.sink = sink
        self.send_dead_letter = send_dead_letter
        self.publish_scored = publish_scored

    async def process(self, batch: Sequence[RawRecord]) -> BatchResult:
        """Returns only when every record is in ClickHouse or on the dead-letter topic."""
        good: list[tuple[InputRecord, KafkaPosition]] = []
        bad: list[tuple[Rejected, RawRecord]] = []
        for raw in batch:  # preprocess: decode and validate
            outcome = self.validator.validate(self.source, raw.value)
            if isinstance(outcome, Rejected):
                bad.append((outcome, raw))
            else:
                good.append((outcome, raw.position))

        async def score_and_store() -> None:
            if not good:
                return
            # Which events are already stored (a re-delivery) is looked up while the
            # model runs: it only needs the records.
            async with asyncio.TaskGroup() as group:
                lookup = group.create_task(
                    self.sink.already_stored(
                        [(r.source, r.brand, r.created_at, r.id) for r, _ in good]
                    )
                )
                model = group.create_task(self.inference.model_info())
                scoring = group.create_task(
                    self.inference.score([record.score_text for record, _ in good])
                )
            predictions = scoring.result()
            scored_at = datetime.now(UTC)
            rows = [
                scored_row(record, predictions, i, position, model.result(), scored_at)
                for i, (record, position) in enumerate(good)
            ]
            await self.sink.write(rows, lookup.result())
            # After ClickHouse: a consumer of the scored topic (the alert detector) may
            # look an event up; the batch is acked only after both.
            if self.publish_scored is not None:
                await self.publish_scored([scored_message(row) for row in rows])

        async def reject() -> None:
            if not bad:
                return
            for rejected, raw in bad:
                log.info(
                    "dead-lettering %s[%d]@%d: %s",
                    raw.position.topic, raw.position.partition, raw.position.offset,
                    rejected.reason,
                )  # fmt: skip
                value, headers = dead_letter(rejected, raw.key, raw.value, raw.position)
                await self.send_dead_letter(raw.key, value, headers)
            # A queryable copy for dashboards and SQL; the topic keeps the bytes.
            failed_at = datetime.now(UTC)
            await self.sink.write_to(
                "dead_letters",
                DEAD_LETTER_COLUMNS,
                [dead_letter_row(rejected, raw.position, failed_at) for rejected, raw in bad],
            )

        await asyncio.gather(score_and_store(), reject())
        return BatchResult(scored=len(good), rejected=len(bad))
