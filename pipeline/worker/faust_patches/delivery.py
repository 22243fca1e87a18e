"""The fetch loop without four tasks per record, and with a short poll (patch 5).

Faust's fetch loop (`Consumer._drain_messages`, 0.15.3) hands every record to the
streams through `await self.wait_first(callback(message), self.suspend_flow.wait())`:
mode's `wait_first` wraps the callback, the flow-control event and the service's
stopped and crashed events in four tasks and an `asyncio.wait`, then cancels three of
them. Measured with py-spy on the null-model worker, that was ~15 % of its CPU (twice
per event with alerting: the input record and its scored_event). The callback puts
the record into the stream queues and almost always finishes without suspending.
`drain_messages` below is the upstream loop with one change: it runs the callback's
first step inline; only when that step suspends (a full queue) does the rest race
the flow-control event in `wait_first` exactly as upstream, so a rebalance's
suspension still abandons a blocked delivery. When flow is already suspended the
upstream call is made unchanged.

The second change: upstream polls with `getmany(timeout=1.0)`. When a stream's buffer
is under pressure Faust drops its partitions from the set of active partitions, which
is the very set the pending poll filters aiokafka's prefetched records with; when
the buffer drains they are put back, but nothing wakes the poll, and aiokafka sends
no new fetch for partitions whose prefetched records are still unread. Measured in a
10,000-post burst: polls that waited 1.0 s and returned nothing while 4 partitions
had records ready, i.e. no event scored for ~0.6 s twice per burst. A short poll
bounds that stall; an idle worker pays one cheap call to its consumer thread per poll.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING as _CONSUMER_FETCHING

from pipeline.worker.faust_patches.upstream import pin

POLL_TIMEOUT = 0.1  # seconds


class _Continue:
    """Awaitable that finishes a coroutine already stepped once outside of it.

    The first step yielded `pending` (a future, or None for a bare yield); this hands
    it to the awaiting task, as `await` would have, and goes on driving the coroutine,
    passing results, exceptions and cancellation through.
    """

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Any, pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Any:
        coro, pending = self.coro, self.pending
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # noqa: BLE001 - thrown in by the task: pass it on
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def finish_started(coro: Any, pending: Any) -> Any:
    """A coroutine (for a task) that completes `coro` from where its first step left."""
    return await _Continue(coro, pending)


async def deliver(consumer: Any, callback: Any, message: Any) -> None:
    """`await consumer.wait_first(callback(message), consumer.suspend_flow.wait())`,
    without the tasks when the callback finishes in one step."""
    suspend_flow = consumer.suspend_flow
    if suspend_flow.is_set():
        await consumer.wait_first(callback(message), suspend_flow.wait())
        return
    coro = callback(message)
    try:
        pending = coro.send(None)
    except StopIteration:
        return
    await consumer.wait_first(finish_started(coro, pending), suspend_flow.wait())


async def drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - the worker's loop
    """faust-streaming 0.15.3 `Consumer._drain_messages` with `deliver` and
    POLL_TIMEOUT (see above)."""
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = _CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = getmany(timeout=POLL_TIMEOUT)
            # Sleeping because sometimes getmany is called in a loop never releasing
            # to the event loop (upstream's comment)
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        # a gap in the incoming offsets
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        await deliver(self, callback, message)
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                     offset, message.key, message.value)  # fmt: skip
                unset_flag(flag_consumer_fetching)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


UPSTREAM_DRAIN_MESSAGES = pin("faust.transport.consumer.Consumer._drain_messages").original


def install_fast_delivery(consumer_class: Any) -> None:
    consumer_class._drain_messages = drain_messages
