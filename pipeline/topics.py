"""Creating the pipeline's topics with the configured partition count."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.settings import Settings


async def ensure_topics(
    settings: Settings, names: list[str] | None = None, partitions: int | None = None
) -> list[str]:
    """Create missing topics; returns the names created. Existing ones are left alone."""
    wanted = names or settings.pipeline_topics
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
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


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """Partition ids of a topic; empty if it does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for d in described if d.get("error_code", 0) == 0
                  for p in d.get("partitions", []))  # fmt: skip
