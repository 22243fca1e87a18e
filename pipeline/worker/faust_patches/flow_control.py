"""Stream buffers kept when flow control resumes (see the package header, patch 1).

Why: after an assignment, Faust's recovery resumes the stream partitions, seeks them
to their committed offsets and resumes flow control, whose stream queues are cleared
on resume. Records fetched in between were dropped while the consumer counted them as
read, so they were never delivered nor acked, and the partition's commit stopped at
the first of them until the worker restarted (found by the restart tests: offsets
117-119 of a partition never delivered after a restart, 120 onwards were). Buffers
are already emptied explicitly when partitions are revoked; emptying them again at
the end of recovery is what dropped the records fetched meanwhile.
"""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent


class KeepBuffersOnResume(FlowControlEvent):
    """Flow control that does not empty stream buffers on resume (see above)."""

    def resume(self) -> None:
        self._suspend.clear()
        self._resume.set()
