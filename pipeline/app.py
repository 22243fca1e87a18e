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
from datetime import UTC, datetime
from typing import Any

import faust

from pipeline.alerts import agents as alert_agents
from pipeline.faust_fixes import InFlight, KeepBuffersOnResume, StallGuard
from pipeline.inference.triton_client import TritonEmotionClient
from pipeline.postprocess import KafkaPosition
from pipeline.records import RecordValidator
from pipeline.retry import retry_forever
from pipeline.settings import Settings, load_settings
from pipeline.sink.clickhouse import ClickHouseSink
from pipeline.stages import RawRecord, ScoringStages

log = logging.getLogger("moodpipe.worker")

settings: Settings = load_settings()

app = faust.App(
    settings.app_id,
    broker=settings.kafka_url,
    store="memory://",
    topic_partitions=settings.topic_partitions,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
    web_enabled=settings.web_port > 0,
    web_port=settings.web_port or 6066,
    web_bind=settings.bind_host,
    web_host=settings.bind_host,
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


@app.timer(interval=5.0)
async def guard_stalled_commits() -> None:
    await stall_guard.check(app.consumer)


_migrated = asyncio.Lock()
_migration_done = False


async def _send_dead_letter(
    key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    async def send() -> None:
        pending = await dead_letter_topic.send(key=key, value=value, headers=headers)
        await pending  # delivered and acknowledged by the broker

    await retry_forever(
        send,
        what="dead-letter produce",
        log=log,
        initial_backoff=settings.retry_initial_backoff,
        max_backoff=settings.retry_max_backoff,
    )


publish_scored = (
    alert_agents.install(app, settings, _raw_topic, _send_dead_letter, in_flight)
    if settings.alerts_enabled
    else None
)


async def _build_stages(source: str) -> ScoringStages:
    global _migration_done
    sink = ClickHouseSink(settings)
    async with _migrated:
        if not _migration_done:
            await retry_forever(
                lambda: asyncio.to_thread(sink.migrate),
                what="ClickHouse migrations",
                log=log,
                initial_backoff=settings.retry_initial_backoff,
                max_backoff=settings.retry_max_backoff,
            )
            _migration_done = True
    inference = TritonEmotionClient(
        settings.triton_url,
        settings.model_name,
        timeout=settings.triton_timeout,
        initial_backoff=settings.retry_initial_backoff,
        max_backoff=settings.retry_max_backoff,
        threshold_override=settings.label_threshold,
    )
    return ScoringStages(
        source,
        RecordValidator(settings.max_record_bytes, settings.max_text_chars),
        inference,
        sink,
        _send_dead_letter,
        publish_scored,
    )


def _raw_record(event: Any) -> RawRecord:
    message = event.message
    return RawRecord(
        key=message.key,
        value=message.value,
        position=KafkaPosition(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp=datetime.fromtimestamp(message.timestamp, UTC),
        ),
    )


async def _score_stream(source: str, stream: faust.StreamT) -> None:
    stages = await _build_stages(source)
    async for events in stream.noack_take(settings.batch_size, within=settings.batch_timeout):
        with in_flight.batch(events):
            result = await stages.process([_raw_record(e) for e in events])
            for event in events:
                await stream.ack(event)
        log.debug("%s batch: %d scored, %d dead-lettered", source, result.scored, result.rejected)


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
