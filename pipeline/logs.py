"""Repeated warnings summarised, so an outage does not flood the worker log.

While Kafka is down, aiokafka and Faust log the same connection errors many times a
second (about 96 lines/s measured). A filter on the log handlers lets the first few
of each kind (logger, level, message template) through per window and counts the
rest; the next one let through after the window says how many were held back.
"""

from __future__ import annotations

import logging
import time

PER_WINDOW = 5
WINDOW = 30.0


class RepeatSummary(logging.Filter):
    def __init__(self, per_window: int = PER_WINDOW, window: float = WINDOW) -> None:
        super().__init__()
        self.per_window = per_window
        self.window = window
        # (logger, level, template) -> [window start, shown, held back]
        self._seen: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.levelno >= logging.CRITICAL:
            return True
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is None or now - seen[0] >= self.window:
            held = int(seen[2]) if seen else 0
            if seen and held and isinstance(record.msg, str):
                record.msg += f" [{held} more like this in the last {now - seen[0]:.0f}s]"
            self._seen[key] = [now, 1, 0]
            if len(self._seen) > 10_000:  # bounded: old kinds are forgotten
                self._seen = {key: self._seen[key]}
            return True
        if seen[1] < self.per_window:
            seen[1] += 1
            return True
        seen[2] += 1
        return False


_FILTER = RepeatSummary()


def summarise_repeats(logger: logging.Logger | None = None) -> RepeatSummary:
    """Install the filter on every handler of `logger` (default: root); idempotent."""
    for handler in (logger or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _FILTER
