"""A fetch wait for the worker consumers Faust creates (patch 6).

Faust creates its aiokafka consumer with fetch_max_wait_ms=1500 and no setting for it.
aiokafka keeps one fetch per broker in flight; when the busy partitions still hold
prefetched records, that fetch asks for the quiet ones only, and the broker holds it
up to the full wait, so the busy partitions, drained meanwhile, wait too.
"""

from __future__ import annotations

from typing import Any

from pipeline.worker.faust_patches.upstream import pin


def install_fetch_max_wait(thread_class: Any, seconds: float) -> None:
    """Make the worker consumers Faust creates use `seconds` as fetch_max_wait.

    Wraps upstream's method (captured before any patch), so installing twice does not
    stack wrappers."""
    create = pin(
        "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer"
    ).original

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = max(1, int(seconds * 1000))
        return consumer

    thread_class._create_worker_consumer = _create_worker_consumer
