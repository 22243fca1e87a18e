"""Consumer lag of this worker's partitions into ClickHouse, for the health dashboard."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime

from pipeline.sink.clickhouse import ClickHouseSink
from pipeline.worker.context import WorkerContext

log = logging.getLogger("moodpipe.worker")

LAG_COLUMNS = ("at", "worker", "topic", "partition", "lag")


def install(worker: WorkerContext) -> None:
    app, settings = worker.app, worker.settings
    name = f"{socket.gethostname()}:{os.getpid()}"
    sink = ClickHouseSink(settings)
    consumed = set(settings.consumed_topics)

    @app.timer(interval=settings.lag_sample_interval)
    async def sample_lag() -> None:
        """Best effort: a failed sample is logged and skipped, never retried (the next
        one comes soon) and never in the way of scoring."""
        committed = app.monitor.tp_committed_offsets
        now = datetime.now(UTC)
        rows = []
        for tp in app.consumer.assignment():
            highwater = app.consumer.highwater(tp)
            if tp.topic in consumed and highwater is not None and tp in committed:
                rows.append([now, name, tp.topic, tp.partition, highwater - committed[tp]])
        if rows:
            try:
                await asyncio.to_thread(sink.insert_once, "pipeline_lag", LAG_COLUMNS, rows)
            except Exception as exc:  # noqa: BLE001 - a lost sample is harmless
                log.debug("lag sample not stored: %s", exc)
