"""The stall guard (see the package header, patch 2): every few seconds,

- keeps Faust's ack list sorted and unique: a record delivered twice around a
  rebalance can leave its offset there twice, after which commits advance by one
  or two offsets per commit interval instead of whole runs;
- as a safety net, should a record still go missing: for each partition this worker
  owns, if the next offset to commit is neither acked nor in a batch an agent is
  processing while later offsets are acked, on two checks running, it seeks the
  partition back to its committed offset. The skipped records are fetched again
  (with the acked ones after them, which every stage handles idempotently) and the
  commit moves on;
- likewise when a partition has records waiting but nothing delivered, acked or in
  flight, and its commit has not moved, for 20 s (seen once after a takeover).
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.worker.faust_patches.in_flight import InFlight, TPKey

log = logging.getLogger("moodpipe.faust_fixes")

IDLE_CHECKS = 4  # checks running (20 s at the worker's 5 s) before an idle lag counts


class BrokerOffsets:
    """Offsets asked of the broker, for what Faust's consumer does not know yet (its
    consumer thread owns the aiokafka consumer, so the calls run there)."""

    async def committed(self, consumer: Any, tps: list[Any]) -> dict[Any, int]:
        thread = consumer._thread
        client = thread._ensure_consumer()
        found: dict[Any, int] = {}
        for tp in tps:
            offset = await thread.call_thread(client.committed, tp)
            if offset is not None and offset >= 0:
                found[tp] = offset
        return found

    async def ends(self, consumer: Any, tps: list[Any]) -> dict[Any, int]:
        return dict(await consumer.highwaters(*tps))


class StallGuard:
    def __init__(self, in_flight: InFlight, broker: BrokerOffsets | None = None) -> None:
        self.in_flight = in_flight
        self.broker = broker or BrokerOffsets()
        self._suspects: set[TPKey] = set()
        self._idle: dict[TPKey, tuple[int, int]] = {}  # tp -> (committed, checks seen idle)
        # What Faust does not know of a partition it was just given (see _learn).
        self._committed_from_broker: dict[TPKey, int] = {}
        self._ends_from_broker: dict[TPKey, int] = {}
        self.reseeks = 0

    async def _learn(self, consumer: Any) -> None:
        """Faust knows a partition's committed offset only once it has committed it
        itself, and its end only once it has fetched from it. A partition just taken
        over from a dead worker has neither until its first batch, which never comes
        when its records were dropped or never fetched (the bug `idle` is for): `idle`
        was blind exactly there (seen in CI: after a takeover two partitions stayed
        unread for good). Ask the broker for those."""
        assigned = consumer.assignment()
        keys = {(tp.topic, tp.partition) for tp in assigned}
        self._committed_from_broker = {
            k: v for k, v in self._committed_from_broker.items() if k in keys
        }
        unknown = [
            tp
            for tp in assigned
            if consumer._committed_offset.get(tp) is None
            and (tp.topic, tp.partition) not in self._committed_from_broker
        ]
        unfetched = [tp for tp in assigned if consumer.highwater(tp) is None]
        try:
            if unknown:
                for tp, offset in (await self.broker.committed(consumer, unknown)).items():
                    self._committed_from_broker[(tp.topic, tp.partition)] = offset
            ends = await self.broker.ends(consumer, unfetched) if unfetched else {}
        except Exception as exc:  # noqa: BLE001 - a safety net; try again next check
            log.debug("could not read offsets from the broker: %s", exc)
            return
        self._ends_from_broker = {(tp.topic, tp.partition): end for tp, end in ends.items()}

    def _committed(self, consumer: Any, tp: Any) -> int | None:
        committed = consumer._committed_offset.get(tp)
        if committed is not None:
            return int(committed)
        return self._committed_from_broker.get((tp.topic, tp.partition))

    def _end(self, consumer: Any, tp: Any) -> int | None:
        end = consumer.highwater(tp)
        if end is not None:
            return int(end)
        return self._ends_from_broker.get((tp.topic, tp.partition))

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
            committed = self._committed(consumer, tp)
            highwater = self._end(consumer, tp)
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
        await self._learn(consumer)
        for tp, offset in self.idle(consumer).items():
            await self._reread(consumer, tp, offset, "waits but nothing was delivered")

    async def _reread(self, consumer: Any, tp: Any, offset: int, why: str) -> None:
        log.warning("%s[%d]: offset %d %s; re-reading from it", tp.topic, tp.partition,
                    offset, why)  # fmt: skip
        self.reseeks += 1
        await consumer.seek(tp, offset)
