"""A throwaway Kafka broker on free ports, for the scripts that make recordings."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.connections.topics import ensure_topics
from pipeline.local.runtime import LocalRuntime
from pipeline.settings import Settings
from pipeline.testing.plugin import free_port

TOPICS = ["social-posts", "support-tickets"]  # named like production's


@contextmanager
def private_broker() -> Iterator[Settings]:
    """Start a broker with the two input topics (4 partitions each); stop it after."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update({
            "MOODPIPE_DATA_DIR": tmp,
            "MOODPIPE_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}",
            "MOODPIPE_KAFKA_CONTROLLER_PORT": str(free_port()),
        })  # fmt: skip
        settings = Settings()
        runtime = LocalRuntime(settings)
        runtime.up(["kafka"])
        try:
            asyncio.run(ensure_topics(settings, TOPICS, partitions=4))
            yield settings
        finally:
            runtime.down()
