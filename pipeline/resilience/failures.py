"""Is a failure an outage (wait it out) or caused by the data (dead-letter the record)?

The worker's rule: patience only for a service that does not answer. Everything else
is retried a bounded number of times and then isolated record by record
(`pipeline.resilience.isolation`), so one bad post can never hold a partition.

Outages, per client:
- the network: refused, reset, unreachable, timed out, DNS (`OSError`, `TimeoutError`);
- Kafka (aiokafka): errors the client itself marks `retriable` (broker not ready,
  not the leader, request timed out, no connection);
- Triton (gRPC): UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, CANCELLED, ABORTED,
  and a model that is not (yet) loaded, e.g. while tritonserver restarts;
- ClickHouse (clickhouse-connect): `OperationalError` (no connection, broken response)
  and server error codes that say the server or the deployment is unwell rather
  than a row (memory, too many parts, read-only, a missing table or column); an HTTP
  error without a ClickHouse code (a proxy in between) too.
Unknown exceptions are *not* outages: bounded retries, then isolation, which proves
the service healthy with a known-good probe before it blames a record.
"""

from __future__ import annotations

import asyncio

# ClickHouse error codes that mean "the server or deployment", not "this row"
# (src/Common/ErrorCodes.cpp). A code outside this set is treated as a data error.
CLICKHOUSE_OUTAGE_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE (connection cut mid-request)
        16,  # NO_SUCH_COLUMN_IN_TABLE: schema older than the worker (deploy order)
        47,  # UNKNOWN_IDENTIFIER
        60,  # UNKNOWN_TABLE
        81,  # UNKNOWN_DATABASE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        173,  # CANNOT_ALLOCATE_MEMORY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        279,  # ALL_CONNECTION_TRIES_FAILED
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        373,  # SESSION_IS_LOCKED
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        999,  # KEEPER_EXCEPTION
        1000,  # POCO_EXCEPTION (I/O inside the server)
    }
)

TRITON_OUTAGE_STATUSES = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "CANCELLED", "ABORTED"}
)
# Said by Triton while a model is loading or after it was unloaded.
TRITON_NOT_READY = ("is not ready", "unknown model", "is not found", "not loaded")


AIOKAFKA_OUTAGES = frozenset({"KafkaTimeoutError", "ProducerClosed", "KafkaConnectionError"})


class ServiceUnavailableError(ConnectionError):
    """Raised by moodpipe itself when a service is known to be down (e.g. the local
    ClickHouse front has no endpoint): an outage, waited out like a refused connection."""


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, asyncio.CancelledError):
        return False
    if isinstance(exc, OSError | TimeoutError):  # ConnectionError, gaierror, timeouts
        return True
    module = type(exc).__module__
    if module.startswith("aiokafka"):
        # A produce that timed out or a producer being restarted is the broker, not
        # the record, although aiokafka does not mark them retriable.
        name = type(exc).__name__
        return bool(getattr(exc, "retriable", False)) or name in AIOKAFKA_OUTAGES
    if module.startswith("tritonclient"):
        return _triton_outage(exc)
    if module.startswith("clickhouse_connect"):
        return _clickhouse_outage(exc)
    # A raw gRPC error that escaped tritonclient is the channel, not the data.
    return module.startswith("grpc")


def _triton_outage(exc: BaseException) -> bool:
    status_of = getattr(exc, "status", None)
    status = str(status_of() if callable(status_of) else status_of or "")
    name = status.rsplit(".", 1)[-1]
    if name in TRITON_OUTAGE_STATUSES:
        return True
    message = str(getattr(exc, "message", lambda: "")() or exc).lower()
    return any(marker in message for marker in TRITON_NOT_READY) or (
        "failed to connect" in message or "connection refused" in message
    )


def _clickhouse_outage(exc: BaseException) -> bool:
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DatabaseError):
        code = getattr(exc, "code", None)
        return code is None or code in CLICKHOUSE_OUTAGE_CODES
    return False


def describe(exc: BaseException, limit: int = 500) -> str:
    """`Type: message`, cut to `limit` characters, for logs and dead-letter reasons."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
