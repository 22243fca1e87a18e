"""The Faust application: one agent per input topic, each scoring in batches.

Records -> agents -> inference client -> sink (ClickHouse, then the scored topic,
which feeds the alert agents in `pipeline.alerts.agents`). An event is acked (and so its offset
becomes committable) only after its batch is in ClickHouse or on the dead-letter
topic: `noack_take` leaves acking to us, and Faust commits only offsets below the
first unacked one of each partition. A crash therefore re-delivers, never skips,
and the ReplacingMergeTree table absorbs the re-delivered rows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from pipeline.alerts import agents as alert_agents
from pipeline.deadletter import MAX_KEY_BYTES, dead_letter
from pipeline.failures import describe
from pipeline.faust_fixes import (
    InFlight,
    KeepBuffersOnResume,
    StallGuard,
    install_commit_guard,
    install_fast_delivery,
    install_fetch_max_wait,
    run_batches,
)
from pipeline.inference.triton_client import TritonEmotionClient
from pipeline.language import LanguagePolicy
from pipeline.logs import summarise_repeats
from pipeline.postprocess import KafkaPosition, kafka_time
from pipeline.records import RecordValidator
from pipeline.redaction import Redactor
from pipeline.retry import retry
from pipeline.settings import Settings, load_settings
from pipeline.sink.buffer import StorageBuffer
from pipeline.sink.clickhouse import ClickHouseSink
from pipeline.stages import Letter, RawRecord, RowWriter, ScoringStages

log = logging.getLogger("moodpipe.worker")

settings: Settings = load_settings()

app = faust.App(
    settings.app_id,
    broker=settings.kafka_url,
    # SASL / TLS from the settings (None: PLAINTEXT); the same as every other client.
    broker_credentials=settings.kafka.faust_credentials(),
    store="memory://",
    topic_partitions=settings.topic_partitions,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
    web_enabled=settings.web_port > 0,
    web_port=settings.web_port or 6066,
    web_bind=settings.bind_host,
    web_host=settings.bind_host,
    producer_max_request_size=settings.producer_max_request_size,
    # Commit on Faust's timer only (every 2.8 s). By default Faust also commits every
    # 10,000 acks from inside its fetch loop, where the commit (a producer flush, then
    # the offset commit) stops fetching meanwhile: with alerting on that put ~1 s on
    # the p50 produce -> row latency at 1,100 events/s (measured with the null model).
    broker_commit_every=1_000_000_000,
)


# Before any stream buffer exists: buffers register with the app's flow control.
app.__dict__["flow_control"] = KeepBuffersOnResume(loop=app.loop)


def _raw_topic(name: str) -> faust.TopicT:
    # Raw bytes in and out: decoding is validation, and a bad record must reach the
    # dead-letter topic byte for byte.
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )


posts_topic = _raw_topic(settings.posts_topic)
tickets_topic = _raw_topic(settings.tickets_topic)
dead_letter_topic = _raw_topic(settings.dead_letter_topic)

in_flight = InFlight()
stall_guard = StallGuard(in_flight)
install_commit_guard(Consumer, in_flight)
install_fast_delivery(Consumer)
install_fetch_max_wait(AIOKafkaConsumerThread, settings.fetch_max_wait)


@app.task
async def quiet_repeated_warnings() -> None:
    # After the worker has set up its log handlers.
    summarise_repeats()


@app.task
async def size_the_producer_buffer() -> None:
    # Faust pauses every stream while more than `max_messages` (100) table changelog
    # messages wait to be produced, then drains them one by one with a 0.1 s wait
    # each: the alert detector writes hundreds per batch, so consumption stalled for
    # seconds ("producer buffer full"). The messages are produced all the same; the
    # bound only needs to keep memory in check.
    app.producer.buffer.max_messages = settings.producer_buffer_max_messages


@app.timer(interval=5.0)
async def guard_stalled_commits() -> None:
    await stall_guard.check(app.consumer)


_migrated = asyncio.Lock()
_migration_done = False


async def _send_dead_letters(letters: Sequence[Letter]) -> None:
    """Every letter on the dead-letter topic, each cut to fit the producer's limit.

    If the broker still refuses them as too large (a topic with a smaller
    max.message.bytes), they are rebuilt four times smaller, down to their metadata:
    a dead letter is never retried forever for its size.
    """
    max_bytes = settings.dead_letter_max_bytes

    async def send_all() -> None:
        pending = []
        for rejected, key, value, position in letters:
            doc, headers = dead_letter(rejected, key, value, position, max_bytes)
            kept_key = key[:MAX_KEY_BYTES] if key is not None else None
            pending.append(await dead_letter_topic.send(key=kept_key, value=doc, headers=headers))
        await asyncio.gather(*pending)  # delivered and acknowledged by the broker

    while True:
        try:
            await retry(
                send_all,
                what=f"dead-letter produce of {len(letters)}",
                log=log,
                initial_backoff=settings.retry_initial_backoff,
                max_backoff=settings.retry_max_backoff,
                data_attempts=None if max_bytes <= MIN_DEAD_LETTER_BYTES else 2,
            )
            return
        except Exception as exc:  # noqa: BLE001 - not an outage: try smaller letters
            max_bytes = max(MIN_DEAD_LETTER_BYTES, max_bytes // 4)
            log.warning("dead letters refused (%s); sending them cut to %d bytes",
                        describe(exc, 200), max_bytes)  # fmt: skip


MIN_DEAD_LETTER_BYTES = 4096


publish_scored = (
    alert_agents.install(app, settings, _raw_topic, _send_dead_letters, in_flight)
    if settings.alerts_enabled
    else None
)


# One sink stage for the whole worker: the rows of every agent's batches meet in one
# buffer and reach ClickHouse in one insert per flush (pipeline/sink/buffer.py).
_sink = ClickHouseSink(settings)
_writer = RowWriter(_sink, _send_dead_letters, publish_scored,
                    data_attempts=settings.poison_attempts)  # fmt: skip
_buffer: StorageBuffer[Any] | None = None


def _storage_buffer() -> StorageBuffer[Any]:
    global _buffer
    if _buffer is None:  # inside the running loop
        _buffer = StorageBuffer(
            _writer.write,
            max_rows=settings.sink_max_rows,
            interval=settings.sink_flush_interval,
            min_rows=settings.sink_min_rows,
            max_wait=settings.sink_max_wait,
        )
    return _buffer


async def _build_stages(source: str) -> ScoringStages:
    global _migration_done
    sink = _sink
    async with _migrated:
        if not _migration_done:
            await retry(
                lambda: asyncio.to_thread(sink.migrate),
                what="ClickHouse migrations",
                log=log,
                initial_backoff=settings.retry_initial_backoff,
                max_backoff=settings.retry_max_backoff,
            )
            _migration_done = True
    inference = _triton_client(settings.model_name)
    multilingual, languages = await _languages()
    return ScoringStages(
        source,
        RecordValidator(
            settings.max_record_bytes,
            settings.max_text_chars,
            min_created_at=settings.min_created_at,
            max_future=timedelta(seconds=settings.max_future_seconds),
        ),
        inference,
        _writer,
        _storage_buffer(),
        data_attempts=settings.poison_attempts,
        redactor=await _redactor(),
        multilingual=multilingual,
        languages=languages,
    )


def _triton_client(model_name: str) -> TritonEmotionClient:
    return TritonEmotionClient(
        settings.triton_url,
        model_name,
        tls=settings.triton_tls_options,
        timeout=settings.triton_timeout,
        initial_backoff=settings.retry_initial_backoff,
        max_backoff=settings.retry_max_backoff,
        threshold_override=settings.label_threshold,
        data_attempts=settings.poison_attempts,
    )


_languages_lock = asyncio.Lock()
_languages_made: list[tuple[TritonEmotionClient | None, LanguagePolicy]] = []


async def _languages() -> tuple[TritonEmotionClient | None, LanguagePolicy]:
    """The multilingual model's client (None when not served) and the language policy,
    one per worker. A Triton without the multilingual model is a deployment choice,
    not an outage: non-English events are then scored by the English model and
    stored with model_coverage 'none'."""
    async with _languages_lock:
        if not _languages_made:
            client = None
            if settings.multilingual_model_name:
                client = _triton_client(settings.multilingual_model_name)
                if not await client.served():
                    log.warning(
                        "Triton at %s does not serve %r: non-English events are scored by "
                        "%r and marked model_coverage=none (MOODPIPE_MULTILINGUAL_MODEL_NAME)",
                        settings.triton_url,
                        settings.multilingual_model_name,
                        settings.model_name,
                    )
                    await client.close()
                    client = None
            policy = await asyncio.to_thread(
                LanguagePolicy.from_settings, settings, client is not None
            )
            _languages_made.append((client, policy))
        return _languages_made[0]


_redactor_lock = asyncio.Lock()
_redactor_made: list[Redactor | None] = []


async def _redactor() -> Redactor | None:
    """One per worker, shared by the agents; loaded off the event loop (~1-2 s)."""
    async with _redactor_lock:
        if not _redactor_made:
            made = None
            if settings.pii_redaction != "off":
                made = await asyncio.to_thread(
                    Redactor,
                    settings.pii_redaction,
                    hash_key=settings.pii_hash_key.get_secret_value().encode(),
                    entities=settings.pii_entity_list,
                    spacy_model=settings.pii_spacy_model,
                )
            _redactor_made.append(made)
        return _redactor_made[0]


def _raw_record(event: Any) -> RawRecord:
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


class InjectedCrashError(RuntimeError):
    """Raised on purpose (MOODPIPE_FAULT_AGENT_CRASHES) to test crash recovery."""


_crashes_left = settings.fault_agent_crashes


async def _score_stream(source: str, stream: faust.StreamT) -> None:
    stages = await _build_stages(source)

    async def score(events: list[Any]) -> Awaitable[None]:
        result = await stages.prepare([_raw_record(e) for e in events])

        async def stored() -> None:
            global _crashes_left
            await result.stored
            if _crashes_left > 0 and result.scored:
                # The worst place to fail: stored, not yet acked.
                _crashes_left -= 1
                raise InjectedCrashError(f"injected crash after storing {result.scored} events")

        return stored()

    await run_batches(
        stream,
        settings.batch_size,
        settings.batch_timeout,
        score,
        what=f"scoring {source}s",
        in_flight=in_flight,
        consumer=app.consumer,
        # Enough batches waiting for storage to fill a flush, so the agent keeps
        # scoring while the previous rows are written.
        max_pending=max(2, min(256, settings.sink_max_rows // settings.batch_size)),
    )


@app.agent(posts_topic, concurrency=settings.agent_concurrency)
async def score_posts(stream: faust.StreamT) -> None:
    await _score_stream("post", stream)


@app.agent(tickets_topic, concurrency=settings.agent_concurrency)
async def score_tickets(stream: faust.StreamT) -> None:
    await _score_stream("ticket", stream)


LAG_COLUMNS = ("at", "worker", "topic", "partition", "lag")
_worker_name = f"{socket.gethostname()}:{os.getpid()}"
_lag_sink = ClickHouseSink(settings)


@app.timer(interval=settings.lag_sample_interval)
async def sample_lag() -> None:
    """Consumer lag of this worker's partitions into ClickHouse, for the health dashboard.

    Best effort: a failed sample is logged and skipped, never retried (the next one
    comes soon) and never in the way of scoring.
    """
    consumed = set(settings.consumed_topics)
    committed = app.monitor.tp_committed_offsets
    now = datetime.now(UTC)
    rows = []
    for tp in app.consumer.assignment():
        highwater = app.consumer.highwater(tp)
        if tp.topic in consumed and highwater is not None and tp in committed:
            rows.append([now, _worker_name, tp.topic, tp.partition, highwater - committed[tp]])
    if rows:
        try:
            await asyncio.to_thread(_lag_sink.insert_once, "pipeline_lag", LAG_COLUMNS, rows)
        except Exception as exc:  # noqa: BLE001 - a lost sample is harmless
            log.debug("lag sample not stored: %s", exc)
