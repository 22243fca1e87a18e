"""`moodpipe record`: topics -> a recording file, streaming."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.connections.kafka import KafkaConnection, as_connection
from pipeline.connections.topics import partitions_of
from pipeline.recording.format import RecordedMessage, RecordingWriter
from pipeline.recording.times import OffsetRanges


def tool_version() -> str:
    try:
        return f"moodpipe {version('moodpipe')}"
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "moodpipe (source)"


async def record_topics(
    kafka: KafkaConnection | str,
    topics: list[str],
    out: Path,
    *,
    from_time_ms: int | None = None,
    until_time_ms: int | None = None,
    offsets: OffsetRanges | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Record what the topics hold now (within the bounds given); returns the trailer."""
    connection = as_connection(kafka)
    partitions = {t: await partitions_of(connection, t) for t in topics}
    missing = [t for t, ps in partitions.items() if not ps]
    if missing:
        raise ValueError(f"no such topic: {', '.join(missing)}")
    tps = [TopicPartition(t, p) for t in topics for p in partitions[t]]
    consumer = AIOKafkaConsumer(
        **connection.client_options(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        first = await consumer.beginning_offsets(tps)
        last = await consumer.end_offsets(tps)  # the snapshot we record up to
        start = dict(first)
        end = dict(last)
        if from_time_ms is not None:
            found = await consumer.offsets_for_times({tp: from_time_ms for tp in tps})
            start = {tp: (found[tp].offset if found[tp] else last[tp]) for tp in tps}
        if until_time_ms is not None:
            found = await consumer.offsets_for_times({tp: until_time_ms + 1 for tp in tps})
            end = {tp: (found[tp].offset if found[tp] else last[tp]) for tp in tps}
        for (topic, p), (lo, hi) in (offsets or {}).items():
            tp = TopicPartition(topic, p)
            if tp not in start:
                raise ValueError(f"{topic} has no partition {p}")
            start[tp], end[tp] = max(lo, first[tp]), min(hi, last[tp])
        if offsets:
            chosen = {TopicPartition(t, p) for t, p in offsets}
            for tp in tps:
                if tp not in chosen:
                    end[tp] = start[tp]
        for tp in tps:
            consumer.seek(tp, start[tp])
        pending = {tp for tp in tps if start[tp] < end[tp]}
        if on_start:
            on_start(sum(max(0, end[tp] - start[tp]) for tp in tps))
        source = {
            "bootstrap": connection.bootstrap,
            "topics": {t: {"partitions": len(partitions[t])} for t in topics},
            "from_time_ms": from_time_ms,
            "until_time_ms": until_time_ms,
            "offsets": {f"{tp.topic}:{tp.partition}": [start[tp], end[tp]] for tp in tps},
            "recorded_at": datetime.now(UTC).isoformat(),
        }
        with RecordingWriter(out, source, tool_version()) as writer:
            while pending:
                batch = await consumer.getmany(*pending, timeout_ms=2000, max_records=5000)
                written = 0
                for tp, messages in batch.items():
                    for m in messages:
                        if m.offset >= end[tp]:
                            break
                        writer.write(
                            RecordedMessage(
                                m.topic, m.partition, m.offset, m.timestamp, m.timestamp_type,
                                m.key, m.value, tuple(m.headers),
                            )
                        )  # fmt: skip
                        written += 1
                for tp in list(pending):
                    # position() passes transaction markers and compacted gaps too.
                    if await consumer.position(tp) >= end[tp]:
                        pending.discard(tp)
                if on_progress and written:
                    on_progress(written)
            return writer.close()
    finally:
        await consumer.stop()
