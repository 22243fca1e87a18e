"""`moodpipe replay`: a recording -> topics, with keys, headers and timestamps kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aiokafka import AIOKafkaProducer

from pipeline.connections.kafka import KafkaConnection, as_connection
from pipeline.connections.topics import partitions_of
from pipeline.recording.format import RecordingError, RecordingReader


@dataclass
class ReplaySummary:
    replayed: int = 0
    filtered_out: int = 0
    # Records with neither key nor value: the Kafka client cannot produce them, so
    # they are sent with an empty value and counted here.
    null_records_sent_empty: int = 0
    error: RecordingError | None = None  # set when the file was damaged part-way


async def replay_recording(
    path: Path,
    kafka: KafkaConnection | str,
    *,
    topic_map: dict[str, str] | None = None,
    speed: float = 0.0,
    timestamps: Literal["original", "now"] = "original",
    from_ms: int | None = None,
    until_ms: int | None = None,
    partitioning: Literal["original", "key"] = "original",
    on_start: Callable[[int | None], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Produce every intact record of the recording (speed 0 = as fast as possible).

    A damaged file is replayed up to the damage; the summary's `error` says where it
    stopped, and nothing after it is sent.
    """
    summary = ReplaySummary()
    with RecordingReader(path) as reader:
        targets = {t: (topic_map or {}).get(t, t) for t in reader.topics}
        if partitioning == "original":
            for source, target in targets.items():
                have = len(await partitions_of(kafka, target))
                need = reader.header["source"]["topics"][source]["partitions"]
                if have < need:
                    raise ValueError(
                        f"{target} has {have} partitions but {source} was recorded with {need}; "
                        "create it with as many, or replay with --partitioning key"
                    )
        if on_start:
            on_start(None)
        producer = AIOKafkaProducer(
            **as_connection(kafka).client_options(),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=16 << 20,
        )
        await producer.start()
        try:
            pending: list[asyncio.Future] = []
            first_ts: int | None = None
            started = time.monotonic()
            shift = 0
            try:
                for m in reader:
                    if (from_ms is not None and m.timestamp_ms < from_ms) or (
                        until_ms is not None and m.timestamp_ms > until_ms
                    ):
                        summary.filtered_out += 1
                        continue
                    if first_ts is None:
                        first_ts = m.timestamp_ms
                        if timestamps == "now":
                            shift = int(time.time() * 1000) - first_ts
                    if speed > 0:
                        due = started + (m.timestamp_ms - first_ts) / 1000 / speed
                        delay = due - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    value = m.value
                    if value is None and m.key is None:
                        value = b""
                        summary.null_records_sent_empty += 1
                    pending.append(
                        await producer.send(
                            targets[m.topic],
                            value=value,
                            key=m.key,
                            partition=m.partition if partitioning == "original" else None,
                            timestamp_ms=m.timestamp_ms + shift,
                            headers=list(m.headers) or None,
                        )
                    )
                    if len(pending) >= 1000:
                        await _drain(pending, summary, on_progress)
            except RecordingError as exc:
                summary.error = exc
            await _drain(pending, summary, on_progress)
        finally:
            await producer.stop()
    return summary


async def _drain(
    pending: list[asyncio.Future], summary: ReplaySummary, on_progress: Callable[[int], None] | None
) -> None:
    for fut in pending:
        await fut
    summary.replayed += len(pending)
    if on_progress and pending:
        on_progress(len(pending))
    pending.clear()


def recorded_count(path: Path) -> int | None:
    """How many records the header's offset ranges hold (the trailer is at the far end),
    or None when the header has none: a progress bar's total."""
    with RecordingReader(path) as reader:
        ranges = reader.header["source"].get("offsets", {}).values()
        return sum(end - start for start, end in ranges) or None
