"""The sink stage's writer: rows -> ClickHouse, then the scored topic; poison and every
dead letter -> the dead-letter topic and its queryable copy in ClickHouse."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pipeline.postprocess import scored_message
from pipeline.records.raw import RawRecord
from pipeline.resilience.failures import describe, is_outage
from pipeline.resilience.isolation import isolate
from pipeline.sink.dead_letters import (
    DEAD_LETTER_COLUMNS,
    DeadLetterSender,
    Letter,
    dead_letter_row,
    poison_letter,
)
from pipeline.sink.ports import RowSink

log = logging.getLogger("moodpipe.stages")

# Publishes a batch's scored_event messages and returns once the broker has them.
ScoredPublisher = Callable[[list[dict[str, Any]]], Awaitable[None]]


class RowOrigin(Protocol):
    """What a row remembers of its record: the bytes to dead-letter if it fails alone."""

    @property
    def raw(self) -> RawRecord: ...


StoredRow = tuple[list[Any], RowOrigin]  # a scored_events row and the record it came from


class RowWriter:
    """The sink stage: rows -> ClickHouse (one lookup and one insert per call), then
    the scored topic; rows either of them rejects alone, and every letter, -> the
    dead-letter topic and its ClickHouse copy."""

    def __init__(
        self,
        sink: RowSink,
        send_dead_letters: DeadLetterSender,
        publish_scored: ScoredPublisher | None = None,
        *,
        data_attempts: int = 3,
    ) -> None:
        self.sink = sink
        self.send_dead_letters = send_dead_letters
        self.publish_scored = publish_scored
        self.data_attempts = data_attempts

    async def write(self, rows: list[StoredRow]) -> int:
        """Store, publish, dead-letter the poison; returns how many rows were stored."""
        letters: list[Letter] = []
        stored = await self._store(rows, None, letters)
        if self.publish_scored is not None and stored:
            await self._publish(stored, letters)
        await self.dead_letter(letters)
        return len(stored)

    async def _store(
        self, rows: list[StoredRow], stored: set[tuple[str, str]] | None, letters: list[Letter]
    ) -> list[StoredRow]:
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

        async def write(part: list[StoredRow]) -> None:
            await self.sink.write([row for row, _ in part], stored, 1)

        found = await isolate(
            rows,
            write,
            probe=self.sink.probe,
            what="storage",
            log=log,
            single_attempts=self.data_attempts,
            initial_backoff=self.sink.initial_backoff,
            max_backoff=self.sink.max_backoff,
        )
        for (_, item), error in found.poison:
            letters.append(poison_letter("poison_storage", item.raw, error))
        return [row for part, _ in found.done for row in part]

    async def _publish(self, rows: list[StoredRow], letters: list[Letter]) -> None:
        """Scored events onto the scored topic (after ClickHouse: a consumer may look an
        event up). A row that cannot be published is stored but would miss alerting:
        it is dead-lettered too, with the reason."""
        publish = self.publish_scored
        assert publish is not None
        messages: list[tuple[dict[str, Any], RowOrigin]] = []
        for row, item in rows:
            try:
                messages.append((scored_message(row), item))
            except Exception as exc:  # noqa: BLE001 - this row's message is unusable
                letters.append(poison_letter("poison_publish", item.raw, exc))
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
        for (_, item), error in found.poison:
            letters.append(poison_letter("poison_publish", item.raw, error))

    async def dead_letter(self, letters: list[Letter]) -> None:
        if not letters:
            return
        for rejected, _, _, position in letters:
            log.info("dead-lettering %s[%d]@%d: %s", position.topic, position.partition,
                     position.offset, rejected.reason[:300])  # fmt: skip
        await self.send_dead_letters(letters)
        await self.copy_dead_letters(self.sink, letters)

    @staticmethod
    async def copy_dead_letters(sink: RowSink, letters: Sequence[Letter]) -> None:
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
        for row, error in found.poison:
            log.error("dead letter %s[%s]@%s not copied to ClickHouse: %s",
                      row[0], row[1], row[2], describe(error))  # fmt: skip
