"""Workarounds for faust-streaming 0.15.3, each in its own module, installed by `install`.

moodpipe promises that every input offset is committed only after its record is in
ClickHouse or on the dead-letter topic. Faust's own code breaks that promise in the
places below (each found by a test that lost, stalled or duplicated records, or by a
profile), so the worker patches them. Every upstream function a patch replaces, wraps
or relies on is pinned by a hash of its source (`upstream.PINS`): an upgrade fails
the tests and logs an error at start until the patch is reviewed against it.

| # | module | what it does | private upstream API it touches | upstream | remove when |
|---|---|---|---|---|---|
| 1 | `flow_control` | flow control that keeps stream buffers on resume, so records fetched during recovery are delivered | `App.flow_control` (replaced before any buffer exists), `FlowControlEvent.resume` | faust-streaming #216, PR #217, PR #253 (the clearing on resume is by design) | recovery stops clearing buffers it filled itself, and the restart tests pass without it |
| 2 | `stall_guard` | every 5 s: tidies the ack list; re-reads a partition whose commit is stuck behind a skipped or never-delivered record | `Consumer._acked`, `_acked_index`, `_committed_offset` (read and rewritten), `Consumer._thread`, `AIOKafkaConsumerThread._ensure_consumer` | #502, #629, #596 (open) | those are fixed and the kill -9 and takeover tests run a release without a re-seek logged |
| 3 | `batches` | the batch loop: acks only by moodpipe after a batch is durable; a failed batch is re-read, never acked | `Stream.enable_acks` (kept off), the `noack_take` restore of it in its `finally` | #189, #315 (acks of records no agent saw) | `noack_take` no longer re-enables acks while the passive drainer runs, and the agent-crash test passes without it |
| 4 | `commit_guard` | `Consumer._new_offset` that never commits past an unacked or in-flight record | `Consumer._new_offset` (replaced), `_acked`, `_acked_index`, `_gap` | #606 (open), PR #707 (unmerged) | a release contains PR #707 or an equal fix, and the commit-past-head test fails on upstream's function |
| 5 | `delivery` | the fetch loop without four tasks per record (inline first step), polled every 0.1 s | `Consumer._drain_messages` (replaced by a copy with two changes) | none filed; measured here (py-spy, 10,000-post burst) | upstream delivers without `wait_first` per record and wakes the poll when partitions resume |
| 6 | `fetch_wait` | `fetch_max_wait_ms` of the worker consumers from `MOODPIPE_FETCH_MAX_WAIT` | `AIOKafkaConsumerThread._create_worker_consumer` (wrapped), aiokafka's `AIOKafkaConsumer._fetch_max_wait_ms` before `start` | none filed (Faust hard-codes 1,500 ms) | Faust has a setting for it |
| 7 | `producer_buffer` | room for the detector's changelog writes, so streams are not paused per batch | `ProducerBuffer.max_messages` (class default 100), read by `wait_until_ebb` | none filed | Faust has a setting for it |

Also tuned, through public settings, in `pipeline.worker.app`: commits on the timer
only (`broker_commit_every`), since a commit from inside the fetch loop stops fetching.
Patches 4-6 change classes, so they hold for every app in the process: one worker app
per process, as Faust itself assumes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from pipeline.settings import Settings
from pipeline.worker.faust_patches import upstream
from pipeline.worker.faust_patches.batches import run_batches
from pipeline.worker.faust_patches.commit_guard import install_commit_guard
from pipeline.worker.faust_patches.delivery import install_fast_delivery
from pipeline.worker.faust_patches.fetch_wait import install_fetch_max_wait
from pipeline.worker.faust_patches.flow_control import KeepBuffersOnResume
from pipeline.worker.faust_patches.in_flight import InFlight
from pipeline.worker.faust_patches.producer_buffer import size_producer_buffer
from pipeline.worker.faust_patches.stall_guard import StallGuard

log = logging.getLogger("moodpipe.faust_fixes")

STALL_CHECK_INTERVAL = 5.0  # seconds between stall-guard checks


@dataclass(frozen=True)
class FaustPatches:
    """What the agents share with the patches: the offsets they hold in batches."""

    in_flight: InFlight
    stall_guard: StallGuard


def install(app: Any, settings: Settings) -> FaustPatches:
    """Install every patch for `app`; call right after creating it, before any topic,
    agent or table (stream buffers register with the flow control on creation)."""
    for pin in upstream.changed():
        log.error("faust patch %r relies on %s, whose source differs from the reviewed "
                  "version: review pipeline/worker/faust_patches/%s.py against it",
                  pin.patch, pin.name, pin.patch)  # fmt: skip
    app.__dict__["flow_control"] = KeepBuffersOnResume(loop=app.loop)
    in_flight = InFlight()
    stall_guard = StallGuard(in_flight)
    install_commit_guard(Consumer, in_flight)
    install_fast_delivery(Consumer)
    install_fetch_max_wait(AIOKafkaConsumerThread, settings.fetch_max_wait)

    @app.task
    async def size_the_producer_buffer() -> None:
        size_producer_buffer(app, settings.producer_buffer_max_messages)

    @app.timer(interval=STALL_CHECK_INTERVAL)
    async def guard_stalled_commits() -> None:
        await stall_guard.check(app.consumer)

    return FaustPatches(in_flight, stall_guard)


__all__ = ["FaustPatches", "InFlight", "StallGuard", "install", "run_batches", "upstream"]
