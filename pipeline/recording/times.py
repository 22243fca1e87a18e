"""Parsing the time and offset arguments of record and replay."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def parse_time_ms(value: str) -> int:
    """ISO 8601 (naive means UTC) or milliseconds since the epoch."""
    if re.fullmatch(r"\d{10,}", value):
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is neither an ISO 8601 time nor epoch milliseconds") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


OffsetRanges = dict[tuple[str, int], tuple[int, int]]


def parse_offsets(spec: str, topics: list[str]) -> OffsetRanges:
    """`P:START-END` (every topic) or `TOPIC:P:START-END`, comma-separated; END exclusive."""
    out: OffsetRanges = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        found = re.fullmatch(r"(?:(?P<topic>[^:]+):)?(?P<p>\d+):(?P<start>\d+)-(?P<end>\d+)", part)
        if not found:
            raise ValueError(
                f"offset range {part!r} is not PARTITION:START-END or TOPIC:PARTITION:START-END"
            )
        start, end = int(found["start"]), int(found["end"])
        if end <= start:
            raise ValueError(f"offset range {part!r} is empty (END is exclusive)")
        for topic in [found["topic"]] if found["topic"] else topics:
            if topic not in topics:
                raise ValueError(
                    f"offset range {part!r} names topic {topic!r}, which is not recorded"
                )
            out[(topic, int(found["p"]))] = (start, end)
    return out
