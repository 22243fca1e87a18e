"""Source stage: a record as it came off Kafka, bytes untouched, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class KafkaPosition:
    topic: str
    partition: int
    offset: int
    timestamp: datetime  # the record's Kafka timestamp (produce time)


# A Kafka timestamp is whatever the producer set; outside this range (ClickHouse's
# DateTime64 range, with margin) the time the worker read the record stands in.
_KAFKA_TIME_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


def kafka_time(timestamp: float | None) -> datetime:
    """A Kafka record's timestamp (seconds) as produced_at, or now if it is unusable."""
    try:
        at = datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None
    except (OverflowError, OSError, ValueError, TypeError):
        at = None
    if at is None or not _KAFKA_TIME_RANGE[0] <= at < _KAFKA_TIME_RANGE[1]:
        return datetime.now(UTC)
    return at


@dataclass(frozen=True, slots=True)
class RawRecord:
    """Key and value bytes exactly as consumed: decoding is validation's job, and a bad
    record must reach the dead-letter topic byte for byte."""

    key: bytes | None
    value: bytes | None
    position: KafkaPosition
