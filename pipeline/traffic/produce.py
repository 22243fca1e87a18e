"""Producing records to Kafka (sample traffic, tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer

from pipeline.connections.kafka import KafkaConnection, as_connection
from pipeline.traffic.generate import SampleRecord


async def produce(
    kafka: KafkaConnection | str,
    topic: str,
    records: Sequence[SampleRecord],
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Produce all records and wait until the broker has acknowledged every one."""
    producer = AIOKafkaProducer(
        **as_connection(kafka).client_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=1_048_576,
    )
    await producer.start()
    try:
        pending = []
        for record in records:
            pending.append(await producer.send(topic, value=record.value, key=record.key))
            if len(pending) >= 500:
                for fut in pending:
                    await fut
                if on_progress:
                    on_progress(len(pending))
                pending.clear()
        for fut in pending:
            await fut
        if on_progress and pending:
            on_progress(len(pending))
    finally:
        await producer.stop()
