"""Storage batches decoupled from inference batches: many small batches, one big insert.

Inference batches are sized for the model (64 texts); ClickHouse wants thousands of
rows per insert and few inserts per second per table, and its cost is per call (the
local front measured 36-43 ms per insert whether 1 or 256 rows). The buffer gathers
the rows of every agent of the worker and writes them in one flush at most every
`interval` seconds, or at once when `max_rows` are waiting. A submission's future is
resolved only after its rows are written (or isolated and dead-lettered): the events
are acked then, never before.

Why a minimum interval between flushes rather than a fixed timer: under load the
rows that arrive while one flush runs make the next one big, and when traffic is light
a row waits at most `interval` (default 0.25 s), which keeps produce -> row latency
well under a second instead of adding a full second to every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class StorageBuffer(Generic[T]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[object]],
        *,
        max_rows: int = 10_000,
        interval: float = 0.25,
    ) -> None:
        self.write = write
        self.max_rows = max_rows
        self.interval = interval
        self._pending: list[tuple[list[T], asyncio.Future[None]]] = []
        self._rows = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_flush = 0.0
        self.flushes = 0

    def submit(self, rows: Sequence[T]) -> asyncio.Future[None]:
        """Queue rows for the next flush; the future resolves once they are written."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not rows:
            future.set_result(None)
            return future
        self._pending.append((list(rows), future))
        self._rows += len(rows)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        self._wake.set()
        return future

    @property
    def waiting(self) -> int:
        return self._rows

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future in self._pending:
            if not future.done():
                future.cancel()

    async def _run(self) -> None:
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            delay = self._last_flush + self.interval - time.monotonic()
            while delay > 0 and self._rows < self.max_rows:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                delay = self._last_flush + self.interval - time.monotonic()
            taken = self._take()
            self._last_flush = time.monotonic()
            rows = [row for part, _ in taken for row in part]
            try:
                await self.write(rows)
            except asyncio.CancelledError:
                for _, future in taken:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - each submitter re-reads its batch
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.flushes += 1
            for _, future in taken:
                if not future.done():
                    future.set_result(None)

    def _take(self) -> list[tuple[list[T], asyncio.Future[None]]]:
        """Whole submissions, oldest first, up to max_rows (at least one)."""
        taken, count = [], 0
        while self._pending and (not taken or count + len(self._pending[0][0]) <= self.max_rows):
            part = self._pending.pop(0)
            taken.append(part)
            count += len(part[0])
        self._rows -= count
        return taken
