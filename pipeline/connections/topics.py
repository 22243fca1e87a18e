"""Creating the pipeline's topics with the configured partition count."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from pipeline.connections.kafka import KafkaConnection, as_connection

if TYPE_CHECKING:  # the settings import the connections: only their type here
    from pipeline.settings import Settings


async def ensure_topics(
    settings: Settings, names: list[str] | None = None, partitions: int | None = None
) -> list[str]:
    """Create missing topics; returns the names created. Existing ones are left alone."""
    wanted = names or settings.pipeline_topics
    admin = AIOKafkaAdminClient(**settings.kafka.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if missing:
            # Another worker may create it first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            n,
                            num_partitions=partitions or settings.topic_partitions,
                            replication_factor=1,
                        )
                        for n in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


async def partitions_of(kafka: KafkaConnection | str, topic: str) -> list[int]:
    """Partition ids of a topic; empty if it does not exist."""
    admin = AIOKafkaAdminClient(**as_connection(kafka).client_options())
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for d in described if d.get("error_code", 0) == 0
                  for p in d.get("partitions", []))  # fmt: skip


async def read_topic_json(
    kafka: KafkaConnection | str, topic: str, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Every JSON message now on a topic, from the start, with `_headers`, `_partition`
    and `_offset` added; partitions in order, each in offset order."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tps = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
    if not tps:
        return []
    consumer = AIOKafkaConsumer(**as_connection(kafka).client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=int(timeout * 1000))
            if not batch:
                break
            for tp, messages in batch.items():
                for message in messages:
                    doc = json.loads(message.value)
                    doc["_headers"] = {k: v.decode(errors="replace") for k, v in message.headers}
                    doc["_partition"] = message.partition
                    doc["_offset"] = message.offset
                    out.append(doc)
                if (await consumer.position(tp)) >= end[tp]:
                    remaining.discard(tp)
        return sorted(out, key=lambda d: (d["_partition"], d["_offset"]))
    finally:
        await consumer.stop()


async def seed_committed_offsets(
    kafka: KafkaConnection | str, group: str, topics: list[str]
) -> int:
    """Commit the earliest offset for every partition the group has never committed.

    Why: after an assignment Faust seeks each partition to its committed offset; a
    partition without one is not rewound, so anything Faust lost track of around the
    rebalance (see pipeline/worker/faust_patches/) would not be fetched again. With an offset
    in place it is, and consumer lag is defined from the first record. Returns how
    many partitions were seeded; an active group rejects the commit, which is fine:
    its members commit themselves.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    options = as_connection(kafka).client_options()
    committed = None
    for _ in range(20):  # a fresh broker elects the group coordinator after a moment
        admin = AIOKafkaAdminClient(**options)
        try:
            await admin.start()
            committed = await admin.list_consumer_group_offsets(group)
            break
        except KafkaError:
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    if committed is None:
        return 0  # Faust's own seek still works; this is a safety margin, not a must
    tps = [
        TopicPartition(topic, p)
        for topic in topics
        for p in await partitions_of(kafka, topic)
        if TopicPartition(topic, p) not in committed
        or committed[TopicPartition(topic, p)].offset < 0
    ]
    if not tps:
        return 0
    consumer = AIOKafkaConsumer(**options, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        earliest = await consumer.beginning_offsets(tps)
        await consumer.commit({tp: OffsetAndMetadata(earliest[tp], "") for tp in tps})
    except KafkaError:
        return 0
    finally:
        await consumer.stop()
    return len(tps)
