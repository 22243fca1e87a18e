"""The stall guard's decision, on a stand-in for Faust's consumer bookkeeping.

(The restart tests in test_alerts_e2e.py exercise it on the real broker.)
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import TopicPartition

from pipeline.worker.faust_patches.in_flight import InFlight
from pipeline.worker.faust_patches.stall_guard import IDLE_CHECKS, StallGuard

TP = TopicPartition("posts", 1)


class Consumer:
    def __init__(self, committed: int, acked: list[int]) -> None:
        self._committed_offset: dict[Any, int | None] = {TP: committed}
        self._acked = defaultdict(list, {TP: list(acked)})
        self._acked_index = defaultdict(set, {TP: set(acked)})
        self.seeks: list[tuple[Any, int]] = []

    def assignment(self) -> set[Any]:
        return {TP}

    def highwater(self, tp: Any) -> int:
        return self.end

    end = 200

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


def event(offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(topic=TP.topic, partition=TP.partition,
                                                   offset=offset))  # fmt: skip


def test_a_gap_at_the_committed_offset_is_reread_after_two_checks() -> None:
    consumer = Consumer(committed=117, acked=list(range(120, 180)))  # 117-119 never came
    guard = StallGuard(InFlight())
    asyncio.run(guard.check(consumer))
    assert consumer.seeks == []  # one sighting could be a batch about to be acked
    asyncio.run(guard.check(consumer))
    assert consumer.seeks == [(TP, 117)]


def test_no_reread_while_the_offset_is_in_a_batch_being_processed() -> None:
    consumer = Consumer(committed=117, acked=list(range(150, 180)))
    in_flight = InFlight()
    guard = StallGuard(in_flight)
    with in_flight.batch([event(o) for o in range(117, 150)]):  # e.g. Triton is down
        for _ in range(3):
            asyncio.run(guard.check(consumer))
    assert consumer.seeks == []
    assert not in_flight.holds(TP.topic, TP.partition, 117)  # released after the batch


def test_contiguous_acks_or_nothing_acked_is_not_a_stall() -> None:
    for committed, acked in ((117, list(range(117, 130))), (117, []), (117, [100, 101])):
        consumer = Consumer(committed, acked)
        guard = StallGuard(InFlight())
        for _ in range(3):
            asyncio.run(guard.check(consumer))
        assert consumer.seeks == [], (committed, acked)


def test_repeated_and_committed_offsets_are_dropped_from_the_ack_list() -> None:
    consumer = Consumer(committed=87, acked=[86, 87, 87, 88, 88, 89, 91])
    assert StallGuard.tidy_acks(consumer) == 3
    assert consumer._acked[TP] == [87, 88, 89, 91]
    assert consumer._acked_index[TP] == {87, 88, 89, 91}
    assert StallGuard.tidy_acks(consumer) == 0


def test_a_partition_with_waiting_records_that_nothing_touches_is_reread() -> None:
    consumer = Consumer(committed=117, acked=[])
    guard = StallGuard(InFlight())
    for _ in range(IDLE_CHECKS - 1):
        asyncio.run(guard.check(consumer))
    assert consumer.seeks == []
    asyncio.run(guard.check(consumer))
    assert consumer.seeks == [(TP, 117)]


def test_no_idle_reread_when_busy_caught_up_or_moving() -> None:
    busy = InFlight()
    with busy.batch([event(117)]):  # a batch stuck on an outage is not idle
        consumer = Consumer(committed=117, acked=[])
        guard = StallGuard(busy)
        for _ in range(2 * IDLE_CHECKS):
            asyncio.run(guard.check(consumer))
        assert consumer.seeks == []
    caught_up = Consumer(committed=200, acked=[])
    moving = Consumer(committed=100, acked=[])
    guard_a, guard_b = StallGuard(InFlight()), StallGuard(InFlight())
    for i in range(2 * IDLE_CHECKS):
        asyncio.run(guard_a.check(caught_up))
        moving._committed_offset[TP] = 100 + i  # commits advance between checks
        asyncio.run(guard_b.check(moving))
    assert caught_up.seeks == [] and moving.seeks == []


def test_a_batch_held_too_long_no_longer_shields_its_partition() -> None:
    stuck = InFlight(stale_after=0.0)  # every batch counts as held too long at once
    with stuck.batch([event(117)]):
        consumer = Consumer(committed=117, acked=[])
        guard = StallGuard(stuck)
        for _ in range(IDLE_CHECKS):
            asyncio.run(guard.check(consumer))
        assert consumer.seeks == [(TP, 117)]
        assert stuck.lowest(TP.topic, TP.partition) == 117  # commits still respect it


class FakeBroker:
    """What the broker knows of a partition Faust was just given."""

    def __init__(self, committed: int, end: int, fail: bool = False) -> None:
        self.committed_offset, self.end, self.fail = committed, end, fail
        self.asked: list[str] = []

    async def committed(self, consumer: Any, tps: list[Any]) -> dict[Any, int]:
        self.asked.append("committed")
        if self.fail:
            raise ConnectionError("broker gone")
        return {tp: self.committed_offset for tp in tps}

    async def ends(self, consumer: Any, tps: list[Any]) -> dict[Any, int]:
        self.asked.append("ends")
        return {tp: self.end for tp in tps}


class TakenOver(Consumer):
    """A partition just taken over: Faust has neither committed it nor fetched it."""

    def __init__(self) -> None:
        super().__init__(committed=0, acked=[])
        self._committed_offset[TP] = None

    def highwater(self, tp: Any) -> Any:
        return None


def test_a_taken_over_partition_that_is_never_read_is_reread_from_the_group_offset() -> None:
    consumer, broker = TakenOver(), FakeBroker(committed=32, end=300)
    guard = StallGuard(InFlight(), broker)  # type: ignore[arg-type]
    for _ in range(IDLE_CHECKS):
        asyncio.run(guard.check(consumer))
    assert consumer.seeks == [(TP, 32)]
    assert broker.asked.count("committed") == 1  # learned once, not every check


def test_the_broker_not_answering_leaves_the_guard_quiet() -> None:
    consumer = TakenOver()
    guard = StallGuard(InFlight(), FakeBroker(32, 300, fail=True))  # type: ignore[arg-type]
    for _ in range(2 * IDLE_CHECKS):
        asyncio.run(guard.check(consumer))
    assert consumer.seeks == []
