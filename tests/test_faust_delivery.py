"""The fetch loop's record delivery (faust_patches.delivery.deliver) keeps upstream's
semantics: a callback that finishes in one step is done inline, one that suspends
races the flow-control event through mode's real `wait_first`, and a suspension of
flow abandons a blocked delivery exactly as upstream does."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from mode import Service

from pipeline.settings import Settings
from pipeline.worker.app import create_app
from pipeline.worker.faust_patches.delivery import (
    UPSTREAM_DRAIN_MESSAGES,
    deliver,
    finish_started,
)


class FetchLoop(Service):
    """What `deliver` uses of Faust's consumer: mode's wait_first and suspend_flow."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()
        self.wait_first_calls = 0

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        self.wait_first_calls += 1
        return await super().wait_first(*coros, timeout=timeout)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_callback_that_finishes_in_one_step_is_delivered_without_wait_first() -> None:
    async def main() -> tuple[list[int], int]:
        loop = FetchLoop()
        seen: list[int] = []

        async def callback(message: int) -> None:
            seen.append(message)

        for i in range(5):
            await deliver(loop, callback, i)
        return seen, loop.wait_first_calls

    seen, calls = run(main())
    assert seen == [0, 1, 2, 3, 4]
    assert calls == 0


def test_a_callback_that_suspends_is_finished_with_results_passed_in() -> None:
    async def main() -> tuple[list[Any], int]:
        loop = FetchLoop()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        await queue.put(0)  # full: the next put suspends
        steps: list[Any] = []

        async def callback(message: int) -> None:
            steps.append("start")
            await queue.put(message)  # blocks until the reader below takes one
            steps.append(await asyncio.sleep(0, result="after sleep"))
            steps.append("put")

        async def reader() -> None:
            await asyncio.sleep(0.05)
            steps.append(("took", await queue.get()))

        reading = asyncio.ensure_future(reader())
        await deliver(loop, callback, 7)
        await reading
        steps.append(("left", queue.get_nowait()))
        return steps, loop.wait_first_calls

    steps, calls = run(main())
    assert steps == ["start", ("took", 0), "after sleep", "put", ("left", 7)]
    assert calls == 1


def test_suspending_flow_abandons_a_blocked_delivery_as_upstream_does() -> None:
    async def main() -> list[str]:
        loop = FetchLoop()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        await queue.put(0)
        events: list[str] = []

        async def callback(message: int) -> None:
            try:
                await queue.put(message)
                events.append("delivered")
            except asyncio.CancelledError:
                events.append("cancelled")
                raise

        async def rebalance() -> None:
            await asyncio.sleep(0.05)
            loop.suspend_flow.set()

        rebalancing = asyncio.ensure_future(rebalance())
        await asyncio.wait_for(deliver(loop, callback, 1), 5)
        await rebalancing
        await asyncio.sleep(0.01)  # let the cancelled delivery unwind
        events.append(f"queue holds {queue.qsize()}")
        return events

    assert run(main()) == ["cancelled", "queue holds 1"]


def test_with_flow_already_suspended_the_upstream_call_is_made() -> None:
    async def main() -> tuple[list[int], int]:
        loop = FetchLoop()
        loop.suspend_flow.set()
        seen: list[int] = []

        async def callback(message: int) -> None:
            seen.append(message)

        await deliver(loop, callback, 3)
        return seen, loop.wait_first_calls

    seen, calls = run(main())
    assert calls == 1
    assert seen in ([3], [])  # upstream: whichever of the two finished first


@pytest.mark.parametrize("suspend_first", [False, True])
def test_exceptions_reach_the_fetch_loop(suspend_first: bool) -> None:
    async def main() -> None:
        loop = FetchLoop()

        async def callback(message: int) -> None:
            if suspend_first:
                await asyncio.sleep(0)
            raise ValueError(f"bad {message}")

        await deliver(loop, callback, 9)

    with pytest.raises(ValueError, match="bad 9"):
        run(main())


def test_finish_started_completes_a_coroutine_from_its_first_yield() -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        return "done"

    async def main() -> str:
        coro = work()
        pending = coro.send(None)  # the first step, as deliver takes it
        return await asyncio.ensure_future(finish_started(coro, pending))

    assert run(main()) == "done"


def test_the_copied_fetch_loop_matches_the_pinned_upstream() -> None:
    # faust_patches.delivery.drain_messages is upstream's loop with two changes; when
    # faust-streaming changes it, this fails and the copy must be reviewed.
    source = inspect.getsource(UPSTREAM_DRAIN_MESSAGES)
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
    assert "getmany(timeout=1.0)" in source  # the poll the copy shortens
    assert "self.wait_first(\n" in source and "callback(message)" in source


def test_the_worker_installs_the_fetch_loop_and_fetch_wait() -> None:
    create_app(Settings())  # creating the app installs them

    assert Consumer._drain_messages.__qualname__ == "drain_messages"
    assert AIOKafkaConsumerThread._create_worker_consumer.__qualname__.startswith(
        "install_fetch_max_wait"
    )
