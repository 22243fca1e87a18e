"""Offsets an agent holds in a batch that is not acked yet: what the commit guard and
the stall guard must never pass or re-read under a running batch."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

TPKey = tuple[str, int]


class InFlight:
    """Offsets handed to agents in batches and not yet acked, per topic partition.

    A batch held longer than `stale_after` seconds no longer shields its partition
    from the stall guard's re-read (`holds`, `busy`): re-reading is always safe, since
    every stage is idempotent, while a batch that never completes would otherwise
    hold its partition for good. `lowest`, which bounds commits, counts every batch.
    """

    def __init__(self, stale_after: float = 120.0) -> None:
        self.stale_after = stale_after
        self._offsets: dict[TPKey, dict[int, list[float]]] = {}  # offset -> [count, since]

    @contextmanager
    def batch(self, events: Iterable[Any]) -> Iterator[None]:
        events = list(events)
        self.add(events)
        try:
            yield
        finally:
            self.release(events)

    def add(self, events: Iterable[Any]) -> None:
        now = time.monotonic()
        for e in events:
            held = self._offsets.setdefault((e.message.topic, e.message.partition), {})
            entry = held.setdefault(e.message.offset, [0, now])
            entry[0] += 1

    def release(self, events: Iterable[Any]) -> None:
        for e in events:
            held = self._offsets.get((e.message.topic, e.message.partition), {})
            entry = held.get(e.message.offset)
            if entry is not None:
                entry[0] -= 1
                if entry[0] <= 0:
                    del held[e.message.offset]

    def lowest(self, topic: str, partition: int) -> int | None:
        offsets = self._offsets.get((topic, partition))
        return min(offsets) if offsets else None

    def _fresh(self, topic: str, partition: int) -> dict[int, list[float]]:
        cutoff = time.monotonic() - self.stale_after
        held = self._offsets.get((topic, partition), {})
        return {o: e for o, e in held.items() if e[1] >= cutoff}

    def holds(self, topic: str, partition: int, offset: int) -> bool:
        return offset in self._fresh(topic, partition)

    def busy(self, topic: str, partition: int) -> bool:
        return bool(self._fresh(topic, partition))
