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
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING as _CONSUMER_FETCHING
from faust.transport.consumer import Consumer as _FaustConsumer
from mode.utils.queues import FlowControlEvent

log = logging.getLogger("moodpipe.faust_fixes")

TPKey = tuple[str, int]


class KeepBuffersOnResume(FlowControlEvent):
    """Flow control that does not empty stream buffers on resume (see above)."""

    def resume(self) -> None:
        self._suspend.clear()
        self._resume.set()


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


# --- Acks only by moodpipe -------------------------------------------------------
#
# The silent loss of issue #10, traced in faust-streaming 0.15.3 (streams.py): a
# `noack_take` turns the stream's `enable_acks` off while it runs and, in its
# `finally`, back to what it was (on). When an exception escapes the agent's
# `async for`, the generator finishes, acks are on again, and the stream's passive
# drainer (`_passive_drainer`, still running in the background) keeps reading the
# topic and acking every event it reads although no agent ever saw it: Faust
# then commits the partitions to their ends. Two defences, both in `run_batches`:
# the stream's `enable_acks` is off before the first `noack_take` (so the `finally`
# restores off, and only moodpipe's explicit acks ever commit), and no exception
# leaves the loop: the failed batch stays unacked and its partitions are re-read.


async def run_batches(
    stream: Any,
    max_: int,
    within: float,
    handle: Any,
    *,
    what: str,
    in_flight: InFlight,
    consumer: Any,
    max_pending: int = 1,
) -> None:
    """Feed `stream` to `handle` in batches; ack each batch only once it is done.

    `handle(events)` gets the Faust events of one batch and may return an awaitable
    that completes when the batch is durable (rows waiting for a storage flush); up
    to `max_pending` such batches wait at once while the next ones are handled, and
    each is acked when its awaitable completes. If `handle` or the awaitable raises,
    nothing of that batch is acked, its partitions are re-read from its first offset
    (idempotent stages absorb the repeats), and the loop goes on after a backoff.
    """
    import asyncio

    stream.enable_acks = False
    waiting: asyncio.Queue[tuple[list[Any], Any]] = asyncio.Queue(maxsize=max_pending)
    acker = asyncio.ensure_future(_ack_when_done(stream, waiting, in_flight, consumer, what))
    backoff = 1.0
    try:
        while True:
            batches = stream.noack_take(max_, within=within)
            events: list[Any] = []
            try:
                async for events in batches:
                    in_flight.add(events)
                    try:
                        done = await handle(events)
                    except BaseException:
                        in_flight.release(events)
                        raise
                    await waiting.put((events, done))
                    backoff = 1.0
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed on a batch of %d; nothing of it is acked, re-reading it",
                              what, len(events))  # fmt: skip
                await _reread_batch(consumer, events)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                await batches.aclose()
    finally:
        acker.cancel()
        while not waiting.empty():  # batches never acked: no longer in flight either
            events, _ = waiting.get_nowait()
            in_flight.release(events)


async def _ack_when_done(
    stream: Any, waiting: Any, in_flight: InFlight, consumer: Any, what: str
) -> None:
    import asyncio

    while True:
        events, done = await waiting.get()
        try:
            if done is not None:
                await done
            for event in events:
                await stream.ack(event)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this acker is being stopped
            # The batch's completion was cancelled, not this task: the batch failed.
            log.warning("%s: a batch of %d was cancelled before it was stored; re-reading it",
                        what, len(events))  # fmt: skip
            await _reread_batch(consumer, events)
        except Exception:
            log.exception("%s failed on a batch of %d; nothing of it is acked, re-reading it",
                          what, len(events))  # fmt: skip
            await _reread_batch(consumer, events)
        finally:
            in_flight.release(events)


async def _reread_batch(consumer: Any, events: list[Any]) -> None:
    first: dict[Any, int] = {}
    for event in events:
        tp, offset = event.message.tp, event.message.offset
        first[tp] = min(offset, first.get(tp, offset))
    for tp, offset in first.items():
        if tp in consumer.assignment():
            await consumer.seek(tp, offset)


# --- Never commit past an unacked record (faust-streaming issue #606) -------------
#
# `Consumer._new_offset` in 0.15.3 skips its head-of-queue check when the committed
# offset is 0 (`if committed_offset:`) and allows a gap of one record
# (`min(acked) - committed_offset > 1`): with committed offset 100, offset 100 still
# being scored and 101.. acked (two batches of one partition finishing out of order,
# MOODPIPE_AGENT_CONCURRENCY > 1), it commits past 100, and a crash then loses it.
# The guard below returns nothing to commit unless the acked run starts exactly at
# the committed offset, and never commits past an offset an agent still holds.


UPSTREAM_NEW_OFFSET = _FaustConsumer._new_offset  # kept for the test that shows the bug


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


# --- Delivering a fetched record without four tasks per record --------------------
#
# Faust's fetch loop (`Consumer._drain_messages`, 0.15.3) hands every record to the
# streams through `await self.wait_first(callback(message), self.suspend_flow.wait())`:
# mode's `wait_first` wraps the callback, the flow-control event and the service's
# stopped and crashed events in four tasks and an `asyncio.wait`, then cancels three of
# them. Measured with py-spy on the null-model worker, that was ~15 % of its CPU (twice
# per event with alerting: the input record and its scored_event). The callback puts
# the record into the stream queues and almost always finishes without suspending.
# `drain_messages` below is the upstream loop with one change: it runs the callback's
# first step inline; only when that step suspends (a full queue) does the rest race
# the flow-control event in `wait_first` exactly as upstream, so a rebalance's
# suspension still abandons a blocked delivery. When flow is already suspended the
# upstream call is made unchanged.
#
# The second change: upstream polls with `getmany(timeout=1.0)`. When a stream's buffer
# is under pressure Faust drops its partitions from the set of active partitions, which
# is the very set the pending poll filters aiokafka's prefetched records with; when
# the buffer drains they are put back, but nothing wakes the poll, and aiokafka sends
# no new fetch for partitions whose prefetched records are still unread. Measured in a
# 10,000-post burst: polls that waited 1.0 s and returned nothing while 4 partitions
# had records ready, i.e. no event scored for ~0.6 s twice per burst. A short poll
# bounds that stall; an idle worker pays one cheap call to its consumer thread per poll.
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
    import asyncio

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


UPSTREAM_DRAIN_MESSAGES = _FaustConsumer._drain_messages  # its source is pinned in a test


def install_fast_delivery(consumer_class: Any) -> None:
    consumer_class._drain_messages = drain_messages


# --- Fetches held on quiet partitions ------------------------------------------------
#
# Faust creates its aiokafka consumer with fetch_max_wait_ms=1500 and no setting for it.
# aiokafka keeps one fetch per broker in flight; when the busy partitions still hold
# prefetched records, that fetch asks for the quiet ones only, and the broker holds it
# up to the full wait, so the busy partitions, drained meanwhile, wait too.


def install_fetch_max_wait(thread_class: Any, seconds: float) -> None:
    """Make the worker consumers Faust creates use `seconds` as fetch_max_wait."""
    create = thread_class._create_worker_consumer

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = max(1, int(seconds * 1000))
        return consumer

    thread_class._create_worker_consumer = _create_worker_consumer
