"""Retries with capped exponential backoff: forever for an outage, a few times for the rest.

An outage (`pipeline.resilience.failures.is_outage`) is waited out: the batch's offsets stay
uncommitted, so waiting loses nothing while dropping the batch would. A failure that
is not an outage may be caused by the data; after `data_attempts` tries it is raised
to the caller, which isolates the records that cause it (`pipeline.resilience.isolation`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pipeline.resilience.failures import describe, is_outage

T = TypeVar("T")

# During a long outage the backoff reaches its cap; one warning per this many seconds
# per retry loop is enough to see it in the log (the rest are counted, not printed).
LOG_EVERY = 30.0


async def retry(
    action: Callable[[], Awaitable[T]],
    *,
    what: str,
    log: logging.Logger,
    initial_backoff: float,
    max_backoff: float,
    on_failure: Callable[[BaseException], Awaitable[None]] | None = None,
    data_attempts: int | None = None,
) -> T:
    """Run `action` until it succeeds.

    `data_attempts`: how many times a failure that is not an outage is tried before it
    is raised; None retries every failure forever (start-up work such as migrations,
    where there is no record to blame).
    """
    backoff = initial_backoff
    attempt = 0
    data_failures = 0
    last_logged = 0.0
    quiet = 0
    while True:
        attempt += 1
        try:
            result = await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage = is_outage(exc)
            if not outage:
                data_failures += 1
                if data_attempts is not None and data_failures >= data_attempts:
                    if on_failure is not None:
                        await on_failure(exc)
                    raise
            delay = backoff * random.uniform(0.8, 1.2)  # jitter: workers do not retry in step
            now = time.monotonic()
            if now - last_logged >= LOG_EVERY or attempt <= 2:
                more = f" ({quiet} more failures since the last message)" if quiet else ""
                log.warning(
                    "%s failed (attempt %d, %s): %s; retrying in %.1fs%s",
                    what, attempt, "outage" if outage else "error", describe(exc, 300),
                    delay, more,
                )  # fmt: skip
                last_logged, quiet = now, 0
            else:
                quiet += 1
            if on_failure is not None:
                await on_failure(exc)
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, max_backoff)
            continue
        if attempt > 1:
            log.info("%s succeeded after %d attempts", what, attempt)
        return result
