"""The batch loop: acks only by moodpipe, after a batch is durable (patch 3).

The silent loss of issue #10, traced in faust-streaming 0.15.3 (streams.py): a
`noack_take` turns the stream's `enable_acks` off while it runs and, in its
`finally`, back to what it was (on). When an exception escapes the agent's
`async for`, the generator finishes, acks are on again, and the stream's passive
drainer (`_passive_drainer`, still running in the background) keeps reading the
topic and acking every event it reads although no agent ever saw it: Faust
then commits the partitions to their ends. Two defences, both in `run_batches`:
the stream's `enable_acks` is off before the first `noack_take` (so the `finally`
restores off, and only moodpipe's explicit acks ever commit), and no exception
leaves the loop: the failed batch stays unacked and its partitions are re-read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pipeline.worker.faust_patches.in_flight import InFlight

log = logging.getLogger("moodpipe.faust_fixes")


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
