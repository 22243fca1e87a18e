"""Never commit past an unacked record: faust-streaming issue #606 (patch 4).

`Consumer._new_offset` in 0.15.3 skips its head-of-queue check when the committed
offset is 0 (`if committed_offset:`) and allows a gap of one record
(`min(acked) - committed_offset > 1`): with committed offset 100, offset 100 still
being scored and 101.. acked (two batches of one partition finishing out of order,
MOODPIPE_AGENT_CONCURRENCY > 1), it commits past 100, and a crash then loses it.
The guard below returns nothing to commit unless the acked run starts exactly at
the committed offset, and never commits past an offset an agent still holds.
"""

from __future__ import annotations

from typing import Any

from pipeline.worker.faust_patches.in_flight import InFlight
from pipeline.worker.faust_patches.upstream import pin

# Kept for the test that shows the bug.
UPSTREAM_NEW_OFFSET = pin("faust.transport.consumer.Consumer._new_offset").original


def guarded_new_offset(in_flight: InFlight) -> Any:
    """`Consumer._new_offset` as 0.15.3 has it, with the head check fixed."""
    from faust.utils.functional import consecutive_numbers

    def _new_offset(self: Any, tp: Any) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        max_offset = max(acked)
        gap_for_tp = self._gap[tp]
        if gap_for_tp:  # offsets the broker will never deliver count as acked (as upstream)
            candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
            if candidates:
                filled = [o for entry in candidates for o in range(entry.begin, entry.end)]
                acked.extend(filled)
                gap_for_tp.chop(0, max(filled[-1], max_offset + 1))
        acked.sort()
        committed = self._committed_offset.get(tp)
        if committed is not None and acked[0] > committed:
            return None  # the record at the committed offset is not acked yet
        held = in_flight.lowest(tp.topic, tp.partition)
        if committed is None and held is not None and held < acked[0]:
            return None  # no committed offset known: at least never pass a held record
        batch = next(consecutive_numbers(acked))
        acked[: len(batch)] = []
        self._acked_index[tp].difference_update(batch)
        return batch[-1] + 1

    return _new_offset


def install_commit_guard(consumer_class: Any, in_flight: InFlight) -> None:
    consumer_class._new_offset = guarded_new_offset(in_flight)
