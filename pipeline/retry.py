"""Retry-until-success with capped exponential backoff, for the worker's I/O stages.

The worker never gives up on a batch: its offsets stay uncommitted until the batch is
durable, so waiting out an outage loses nothing, while dropping the batch would.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def retry_forever(
    action: Callable[[], Awaitable[T]],
    *,
    what: str,
    log: logging.Logger,
    initial_backoff: float,
    max_backoff: float,
    on_failure: Callable[[BaseException], Awaitable[None]] | None = None,
) -> T:
    backoff = initial_backoff
    attempt = 0
    while True:
        attempt += 1
        try:
            result = await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the stage is retried
            delay = backoff * random.uniform(0.8, 1.2)  # jitter: workers do not retry in step
            log.warning(
                "%s failed (attempt %d): %s; retrying in %.1fs", what, attempt, _short(exc), delay
            )
            if on_failure is not None:
                await on_failure(exc)
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, max_backoff)
            continue
        if attempt > 1:
            log.info("%s succeeded after %d attempts", what, attempt)
        return result


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 300 else text[:300] + "..."
