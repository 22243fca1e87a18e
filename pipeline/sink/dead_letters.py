"""Dead letters: a rejected record, its original bytes and the reason, as JSON.

A dead letter must always fit on the dead-letter topic: a record the broker accepted
can be larger than what the producer may send once base64 and the reason are added.
Then its bytes are cut to fit, the letter says `truncated: true` and carries the
original length and SHA-256, and the partition moves on; it is never retried forever.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from pipeline.connections.kafka import KafkaConnection
from pipeline.records.models import RejectCode, Rejected
from pipeline.records.raw import KafkaPosition, RawRecord
from pipeline.resilience.failures import describe

# A record bound for the dead-letter topic: why, original key and value, where from.
Letter = tuple[Rejected, bytes | None, bytes | None, KafkaPosition]
# Sends dead letters and returns once the broker has every one of them.
DeadLetterSender = Callable[[Sequence[Letter]], Awaitable[None]]


def letter_for(rejected: Rejected, raw: RawRecord) -> Letter:
    return (rejected, raw.key, raw.value, raw.position)


def poison_letter(code: RejectCode, raw: RawRecord, exc: BaseException) -> Letter:
    """A valid record that one stage failed on alone, while it worked for the others."""
    stage = code.removeprefix("poison_")
    reason = (f"{stage} failed for this record alone, while the service worked for "
              f"other input: {describe(exc)}")  # fmt: skip
    return letter_for(Rejected(code, reason), raw)


REASON_HEADER = "moodpipe.reason"
ERROR_HEADER = "moodpipe.error"
TRUNCATED_HEADER = "moodpipe.truncated"

MAX_REASON_CHARS = 1000
MAX_KEY_BYTES = 4096  # a dead letter keeps at most this much of the original key
_ENVELOPE_SLACK = 256  # JSON quoting and the flag fields, beyond the measured document


def readable(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """A reason that is valid UTF-8 (no lone surrogates) and of bounded length."""
    text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dead_letter(
    rejected: Rejected,
    key: bytes | None,
    value: bytes | None,
    position: KafkaPosition,
    max_bytes: int = 900_000,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The dead-letter value (schemas/dead_letter.schema.json), at most `max_bytes`,
    and its headers."""
    value = value or b""
    reason = readable(rejected.reason)
    kept_key = key[:MAX_KEY_BYTES] if key is not None else None
    doc = {
        "error": rejected.code,
        "reason": reason,
        "source_topic": position.topic,
        "source_partition": position.partition,
        "source_offset": position.offset,
        "source_timestamp": position.timestamp.isoformat(),
        "key_b64": base64.b64encode(kept_key).decode() if kept_key is not None else None,
        "value_b64": "",
        "failed_at": datetime.now(UTC).isoformat(),
        "worker": socket.gethostname(),
        "truncated": False,
        "value_bytes": len(value),
        "value_sha256": hashlib.sha256(value).hexdigest(),
    }
    envelope = len(json.dumps(doc)) + _ENVELOPE_SLACK
    room = max(0, (max_bytes - envelope) * 3 // 4)  # raw bytes that fit once in base64
    kept = value[:room]
    doc["value_b64"] = base64.b64encode(kept).decode()
    doc["truncated"] = len(kept) < len(value) or (key is not None and kept_key != key)
    headers = [
        (ERROR_HEADER, rejected.code.encode()),
        (REASON_HEADER, reason.encode("utf-8")),
    ]
    if doc["truncated"]:
        headers.append((TRUNCATED_HEADER, b"true"))
    return json.dumps(doc).encode(), headers


# The ClickHouse `dead_letters` table: a queryable copy; the topic keeps the bytes.
DEAD_LETTER_COLUMNS = (
    "source_topic", "source_partition", "source_offset", "error", "reason", "failed_at",
)  # fmt: skip


def dead_letter_row(rejected: Rejected, position: KafkaPosition, failed_at: datetime) -> list:
    return [position.topic, position.partition, position.offset, rejected.code,
            readable(rejected.reason), failed_at]  # fmt: skip


async def read_dead_letters(
    kafka: KafkaConnection | str, topic: str, timeout: float = 10.0
) -> list[dict]:
    """Every dead letter currently on the topic (all partitions, from the start)."""
    from pipeline.connections.topics import read_topic_json

    return await read_topic_json(kafka, topic, timeout)
