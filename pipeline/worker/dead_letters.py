"""The dead-letter producer: letters onto the dead-letter topic, never retried forever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pipeline.resilience.failures import describe
from pipeline.resilience.retry import retry
from pipeline.settings import Settings
from pipeline.sink.dead_letters import MAX_KEY_BYTES, Letter, dead_letter

log = logging.getLogger("moodpipe.worker")

MIN_DEAD_LETTER_BYTES = 4096


class DeadLetterProducer:
    def __init__(self, topic: Any, settings: Settings) -> None:
        self.topic = topic
        self.settings = settings

    async def send(self, letters: Sequence[Letter]) -> None:
        """Every letter on the dead-letter topic, each cut to fit the producer's limit.

        If the broker still refuses them as too large (a topic with a smaller
        max.message.bytes), they are rebuilt four times smaller, down to their
        metadata: a dead letter is never retried forever for its size.
        """
        settings = self.settings
        max_bytes = settings.dead_letter_max_bytes

        async def send_all() -> None:
            pending = []
            for rejected, key, value, position in letters:
                doc, headers = dead_letter(rejected, key, value, position, max_bytes)
                kept_key = key[:MAX_KEY_BYTES] if key is not None else None
                pending.append(await self.topic.send(key=kept_key, value=doc, headers=headers))
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
