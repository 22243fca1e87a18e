"""What every agent of one worker app shares: the app, its settings, the patches'
in-flight offsets, raw topics and the dead-letter producer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import faust

from pipeline.scoring import BatchResult
from pipeline.settings import Settings
from pipeline.worker.dead_letters import DeadLetterProducer
from pipeline.worker.faust_patches import FaustPatches


@dataclass(frozen=True)
class WorkerHooks:
    """Points where a test harness can act inside a worker (pipeline.testing.faults);
    production workers have none."""

    # Called once a scoring batch is stored and before it is acked: the worst place to
    # fail. An exception here is a failed batch (re-read, never acked).
    after_stored: Callable[[BatchResult], None] | None = None


@dataclass
class WorkerContext:
    app: faust.App
    settings: Settings
    patches: FaustPatches
    dead_letters: DeadLetterProducer
    hooks: WorkerHooks = field(default_factory=WorkerHooks)

    def raw_topic(self, name: str) -> faust.TopicT:
        return raw_topic(self.app, self.settings, name)


def raw_topic(app: faust.App, settings: Settings, name: str) -> Any:
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
