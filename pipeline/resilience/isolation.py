"""Finding the records that make a batch fail, so the rest of the batch goes on.

A batch that fails with an error that is not an outage (after its bounded retries) is
split in halves, recursively, until every failing record stands alone. A record that
fails alone is poison only if the service is shown to work meanwhile: another part
of the batch succeeded, or a known-good probe does. Otherwise the failure is the
service's (a model that fails for every input, a table that rejects every row), and
the whole isolation is repeated after a backoff, like an outage: then no record is
blamed for it, and nothing is dead-lettered that a healthy service would have taken.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pipeline.resilience.failures import describe, is_outage

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Isolated(Generic[T, R]):
    """What isolation found: the parts that succeeded and the records that did not."""

    done: list[tuple[list[T], R]] = field(default_factory=list)
    poison: list[tuple[T, BaseException]] = field(default_factory=list)


async def isolate(
    items: Sequence[T],
    attempt: Callable[[list[T]], Awaitable[R]],
    *,
    probe: Callable[[], Awaitable[object]],
    what: str,
    log: logging.Logger,
    single_attempts: int = 2,
    initial_backoff: float = 0.2,
    max_backoff: float = 10.0,
) -> Isolated[T, R]:
    """Bisect `items` over `attempt`; returns the successful parts and the poison records.

    `attempt` must wait out outages itself (`pipeline.resilience.retry.retry`) and raise anything
    else at once. `single_attempts`: tries of a record alone before it is suspected.
    """
    backoff = initial_backoff
    while True:
        found: Isolated[T, R] = Isolated()
        await _bisect(list(items), attempt, found, single_attempts)
        if not found.poison:
            return found
        if found.done:
            return _report(found, what, log)
        # Nothing succeeded: is the service healthy for a known-good input?
        try:
            await probe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the probe failing says "not the data"
            delay = backoff * random.uniform(0.8, 1.2)
            log.warning(
                "%s fails for every record and for a known-good probe (%s): treating it "
                "as an outage, retrying in %.1fs", what, describe(exc, 300), delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, max_backoff)
            continue
        return _report(found, what, log)


async def _bisect(
    chunk: list[T],
    attempt: Callable[[list[T]], Awaitable[R]],
    found: Isolated[T, R],
    single_attempts: int,
) -> None:
    tries = single_attempts if len(chunk) == 1 else 1
    for n in range(tries):
        try:
            found.done.append((chunk, await attempt(chunk)))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_outage(exc):
                raise  # `attempt` gave up on an outage: not ours to judge
            if len(chunk) == 1 and n == tries - 1:
                found.poison.append((chunk[0], exc))
                return
    if len(chunk) > 1:
        middle = len(chunk) // 2
        await _bisect(chunk[:middle], attempt, found, single_attempts)
        await _bisect(chunk[middle:], attempt, found, single_attempts)


def _report(found: Isolated[T, R], what: str, log: logging.Logger) -> Isolated[T, R]:
    log.warning(
        "%s: isolated %d poison record(s); %d part(s) of the batch went through",
        what, len(found.poison), len(found.done),
    )  # fmt: skip
    return found
