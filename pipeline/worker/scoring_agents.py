"""The scoring agents: one per input topic, each feeding batches to the scoring flow.

Records -> agents -> inference client -> sink (ClickHouse, then the scored topic,
which feeds the alert agents). An event is acked (and so its offset becomes
committable) only after its batch is in ClickHouse or on the dead-letter topic:
`run_batches` leaves acking to us, and Faust commits only offsets below the first
unacked one of each partition. A crash therefore re-delivers, never skips, and the
ReplacingMergeTree table absorbs the re-delivered rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import faust

from pipeline.inference.triton_client import TritonEmotionClient
from pipeline.language import LanguagePolicy
from pipeline.records import RecordValidator
from pipeline.records.raw import KafkaPosition, RawRecord, kafka_time
from pipeline.redaction import Redactor
from pipeline.resilience.retry import retry
from pipeline.scoring import ScoringStages
from pipeline.scoring.routing import triton_multilingual
from pipeline.settings import Settings
from pipeline.sink.buffer import StorageBuffer
from pipeline.sink.clickhouse import ClickHouseSink
from pipeline.sink.writer import RowWriter, ScoredPublisher, StoredRow
from pipeline.worker.context import WorkerContext
from pipeline.worker.faust_patches import run_batches

log = logging.getLogger("moodpipe.worker")


def triton_client(settings: Settings, model_name: str) -> TritonEmotionClient:
    return TritonEmotionClient.from_settings(settings, model_name)


# The storage buffer, the multilingual client (None: not served), the policy, the redactor.
_Shared = tuple[
    StorageBuffer[StoredRow], TritonEmotionClient | None, LanguagePolicy, Redactor | None
]


class ScoringResources:
    """What the scoring agents of one worker share, made once, inside the running loop:
    the migrated schema, one storage buffer (the rows of every agent's batches meet in
    one insert per flush), the model clients, the language policy and the redactor."""

    def __init__(self, settings: Settings, writer: RowWriter, sink: ClickHouseSink) -> None:
        self.settings = settings
        self.writer = writer
        self.sink = sink
        self._lock = asyncio.Lock()
        self._made: _Shared | None = None

    async def stages(self, source: str) -> ScoringStages:
        settings = self.settings
        buffer, multilingual, languages, redactor = await self._shared()
        return ScoringStages(
            source,
            RecordValidator(
                settings.max_record_bytes,
                settings.max_text_chars,
                min_created_at=settings.min_created_at,
                max_future=timedelta(seconds=settings.max_future_seconds),
            ),
            triton_client(settings, settings.model_name),
            self.writer,
            buffer,
            data_attempts=settings.poison_attempts,
            redactor=redactor,
            multilingual=multilingual,
            languages=languages,
        )

    async def _shared(
        self,
    ) -> _Shared:
        async with self._lock:
            if self._made is None:
                settings = self.settings
                await retry(
                    lambda: asyncio.to_thread(self.sink.migrate),
                    what="ClickHouse migrations",
                    log=log,
                    initial_backoff=settings.retry_initial_backoff,
                    max_backoff=settings.retry_max_backoff,
                )
                buffer: StorageBuffer[StoredRow] = StorageBuffer(
                    self.writer.write,
                    max_rows=settings.sink_max_rows,
                    interval=settings.sink_flush_interval,
                    min_rows=settings.sink_min_rows,
                    max_wait=settings.sink_max_wait,
                )
                multilingual, languages = await self._languages()
                self._made = (buffer, multilingual, languages, await self._redactor())
            return self._made

    async def _languages(self) -> tuple[TritonEmotionClient | None, LanguagePolicy]:
        """The multilingual model's client (None when not served) and the language
        policy. A Triton without the multilingual model is a deployment choice, not an
        outage: non-English events are then scored by the English model and stored
        with model_coverage 'none'."""
        settings = self.settings
        client = await triton_multilingual(settings, wait=True)
        policy = await asyncio.to_thread(LanguagePolicy.from_settings, settings, client is not None)
        return client, policy

    async def _redactor(self) -> Redactor | None:
        """Loaded off the event loop (~1-2 s)."""
        settings = self.settings
        if settings.pii_redaction == "off":
            return None
        return await asyncio.to_thread(
            Redactor,
            settings.pii_redaction,
            hash_key=settings.pii_hash_key.get_secret_value().encode(),
            entities=settings.pii_entity_list,
            spacy_model=settings.pii_spacy_model,
        )


def raw_record(event: Any) -> RawRecord:
    message = event.message
    return RawRecord(
        key=message.key,
        value=message.value,
        position=KafkaPosition(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp=kafka_time(message.timestamp),
        ),
    )


def install(worker: WorkerContext, publish_scored: ScoredPublisher | None) -> None:
    """Declare the input topics and one scoring agent for each."""
    app, settings = worker.app, worker.settings
    sink = ClickHouseSink(settings)
    writer = RowWriter(sink, worker.dead_letters.send, publish_scored,
                       data_attempts=settings.poison_attempts)  # fmt: skip
    resources = ScoringResources(settings, writer, sink)
    after_stored = worker.hooks.after_stored

    async def score_stream(source: str, stream: faust.StreamT) -> None:
        stages = await resources.stages(source)

        async def score(events: list[Any]) -> Awaitable[None]:
            result = await stages.prepare([raw_record(e) for e in events])

            async def stored() -> None:
                await result.stored
                if after_stored is not None:
                    after_stored(result)

            return stored()

        await run_batches(
            stream,
            settings.batch_size,
            settings.batch_timeout,
            score,
            what=f"scoring {source}s",
            in_flight=worker.patches.in_flight,
            consumer=app.consumer,
            # Enough batches waiting for storage to fill a flush, so the agent keeps
            # scoring while the previous rows are written.
            max_pending=max(2, min(256, settings.sink_max_rows // settings.batch_size)),
        )

    posts = worker.raw_topic(settings.posts_topic)
    tickets = worker.raw_topic(settings.tickets_topic)

    @app.agent(posts, name="score_posts", concurrency=settings.agent_concurrency)
    async def score_posts(stream: faust.StreamT) -> None:
        await score_stream("post", stream)

    @app.agent(tickets, name="score_tickets", concurrency=settings.agent_concurrency)
    async def score_tickets(stream: faust.StreamT) -> None:
        await score_stream("ticket", stream)
