"""Dead letters: a rejected record, its original bytes and the reason, as JSON."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime

from pipeline.postprocess import KafkaPosition
from pipeline.records.models import Rejected

REASON_HEADER = "moodpipe.reason"
ERROR_HEADER = "moodpipe.error"


def dead_letter(
    rejected: Rejected, key: bytes | None, value: bytes | None, position: KafkaPosition
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The dead-letter value (schemas/dead_letter.schema.json) and its headers."""
    doc = {
        "error": rejected.code,
        "reason": rejected.reason,
        "source_topic": position.topic,
        "source_partition": position.partition,
        "source_offset": position.offset,
        "source_timestamp": position.timestamp.isoformat(),
        "key_b64": base64.b64encode(key).decode() if key is not None else None,
        "value_b64": base64.b64encode(value or b"").decode(),
        "failed_at": datetime.now(UTC).isoformat(),
        "worker": socket.gethostname(),
    }
    headers = [
        (ERROR_HEADER, rejected.code.encode()),
        (REASON_HEADER, rejected.reason.encode("utf-8", errors="replace")[:1000]),
    ]
    return json.dumps(doc).encode(), headers


# The ClickHouse `dead_letters` table: a queryable copy; the topic keeps the bytes.
DEAD_LETTER_COLUMNS = (
    "source_topic", "source_partition", "source_offset", "error", "reason", "failed_at",
)  # fmt: skip


def dead_letter_row(rejected: Rejected, position: KafkaPosition, failed_at: datetime) -> list:
    return [position.topic, position.partition, position.offset, rejected.code,
            rejected.reason, failed_at]  # fmt: skip


async def read_dead_letters(bootstrap: str, topic: str, timeout: float = 10.0) -> list[dict]:
    """Every dead letter currently on the topic (all partitions, from the start)."""
    from pipeline.topics import read_topic_json

    return await read_topic_json(bootstrap, topic, timeout)
