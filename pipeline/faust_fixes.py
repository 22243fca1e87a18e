"""Two guards against faust-streaming 0.15.3 skipping records around a rebalance.

Why: after an assignment, Faust's recovery resumes the stream partitions, seeks them
to their committed offsets and resumes flow control, whose stream queues are cleared
on resume. Records fetched in between can be dropped while the consumer counts them
as read, so they are never delivered to an agent and never acked. The partition's
commit then stops at the first of them: nothing is lost (nothing after them is
committed either), but nothing commits again until the worker restarts. The
restart tests found it: offsets 117-119 of a partition were never delivered after a
restart, while 120 onwards were.

1. `KeepBuffersOnResume`: Faust's flow control empties every stream buffer when it
   resumes; buffers are already emptied explicitly when partitions are revoked, and
   emptying them again at the end of recovery is what drops the records fetched
   meanwhile. The app uses this flow control instead, so those records are delivered.
2. `StallGuard`, every few seconds:
   - keeps Faust's ack list sorted and unique: a record delivered twice around a
     rebalance can leave its offset there twice, after which commits advance by one
     or two offsets per commit interval instead of whole runs;
   - as a safety net, should a record still go missing: for each partition this
     worker owns, if the next offset to commit is neither acked nor in a batch an
     agent is processing while later offsets are acked, on two checks running, it
     seeks the partition back to its committed offset. The skipped records are
     fetched again (with the acked ones after them, which every stage handles
     idempotently) and the commit moves on;
   - likewise when a partition has records waiting but nothing delivered, acked or
     in flight, and its commit has not moved, for 20 s (seen once after a takeover).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from mode.utils.queues import FlowControlEvent

log = logging.getLogger("moodpipe.faust_fixes")

TPKey = tuple[str, int]


class KeepBuffersOnResume(FlowControlEvent):
    """Flow control that does not empty stream buffers on resume (see above)."""

    def resume(self) -> None:
        self._suspend.clear()
        self._resume.set()


class InFlight:
    """Offsets handed to agents in batches and not yet acked, per topic partition."""

    def __init__(self) -> None:
        self._offsets: dict[TPKey, Counter[int]] = {}

    @contextmanager
    def batch(self, events: Iterable[Any]) -> Iterator[None]:
        keys = [((e.message.topic, e.message.partition), e.message.offset) for e in events]
        for tp, offset in keys:
            self._offsets.setdefault(tp, Counter())[offset] += 1
        try:
            yield
        finally:
            for tp, offset in keys:
                counts = self._offsets[tp]
                counts[offset] -= 1
                if counts[offset] <= 0:
                    del counts[offset]

    def holds(self, topic: str, partition: int, offset: int) -> bool:
        return offset in self._offsets.get((topic, partition), ())

    def busy(self, topic: str, partition: int) -> bool:
        return bool(self._offsets.get((topic, partition)))


IDLE_CHECKS = 4  # checks running (20 s at the worker's 5 s) before an idle lag counts


class StallGuard:
    def __init__(self, in_flight: InFlight) -> None:
        self.in_flight = in_flight
        self._suspects: set[TPKey] = set()
        self._idle: dict[TPKey, tuple[int, int]] = {}  # tp -> (committed, checks seen idle)
        self.reseeks = 0

    def idle(self, consumer: Any) -> dict[Any, int]:
        """Partitions with records waiting that nothing has touched for IDLE_CHECKS checks.

        The other face of the same Faust bug: after a takeover, a partition's records
        can be dropped before any is delivered, so nothing is acked past the committed
        offset and `stalled` has no gap to see; the commit simply never moves while
        records wait. Nothing acked, no batch in flight, the committed offset unchanged
        and the partition's end beyond it, for IDLE_CHECKS checks: re-read it.
        """
        idle: dict[Any, int] = {}
        seen: dict[TPKey, tuple[int, int]] = {}
        for tp in consumer.assignment():
            key = (tp.topic, tp.partition)
            committed = consumer._committed_offset.get(tp)
            highwater = consumer.highwater(tp)
            if (
                committed is None
                or highwater is None
                or highwater <= committed
                or consumer._acked.get(tp)
                or self.in_flight.busy(*key)
            ):
                continue
            before, count = self._idle.get(key, (committed, 0))
            count = count + 1 if before == committed else 1
            if count >= IDLE_CHECKS:
                idle[tp] = committed
                count = 0
            seen[key] = (committed, count)
        self._idle = seen
        return idle

    def stalled(self, consumer: Any) -> dict[Any, int]:
        """Partitions stalled on two checks running -> the offset to re-read from.

        Reads the consumer's ack bookkeeping (`_committed_offset`, `_acked`,
        `_acked_index`): internal to Faust, hence the pinned faust-streaming version.
        """
        suspects: dict[Any, int] = {}
        for tp in consumer.assignment():
            committed = consumer._committed_offset.get(tp)
            acked = consumer._acked.get(tp)
            if committed is None or not acked or min(acked) <= committed:
                continue
            if committed in consumer._acked_index.get(tp, ()):
                continue
            if self.in_flight.holds(tp.topic, tp.partition, committed):
                continue
            suspects[tp] = committed
        stalled = {
            tp: o for tp, o in suspects.items() if (tp.topic, tp.partition) in self._suspects
        }
        self._suspects = {(tp.topic, tp.partition) for tp in suspects}
        return stalled

    @staticmethod
    def tidy_acks(consumer: Any) -> int:
        """Drop repeated and already-committed offsets from Faust's ack list.

        A record delivered twice around a rebalance can leave an offset in the list
        twice; Faust's commit then advances by one or two offsets per commit interval
        until it is past them. Keeping the list sorted and unique restores whole-run
        commits. Returns how many entries were dropped.
        """
        dropped = 0
        for tp, acked in list(consumer._acked.items()):
            committed = consumer._committed_offset.get(tp)
            tidy = sorted({o for o in acked if committed is None or o >= committed})
            if len(tidy) != len(acked):
                dropped += len(acked) - len(tidy)
                acked[:] = tidy
                consumer._acked_index[tp] = set(tidy)
        return dropped

    async def check(self, consumer: Any) -> None:
        dropped = self.tidy_acks(consumer)
        if dropped:
            log.info("dropped %d repeated or stale entries from the consumer's acks", dropped)
        for tp, offset in self.stalled(consumer).items():
            await self._reread(consumer, tp, offset, "was skipped and never processed")
        for tp, offset in self.idle(consumer).items():
            await self._reread(consumer, tp, offset, "waits but nothing was delivered")

    async def _reread(self, consumer: Any, tp: Any, offset: int, why: str) -> None:
        log.warning("%s[%d]: offset %d %s; re-reading from it", tp.topic, tp.partition,
                    offset, why)  # fmt: skip
        self.reseeks += 1
        await consumer.seek(tp, offset)
