"""Shared test helpers: polling, querying and a per-test pipeline namespace."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.deadletter import read_dead_letters
from pipeline.settings import Settings
from pipeline.sink.clickhouse import connect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Namespace:
    """One test's own topics, consumer group and database on the shared runtime."""

    settings: Settings
    env: dict[str, str]
    log_dir: Path
    workers: list[Any] = field(default_factory=list)

    def query(self, sql: str, **params: Any) -> list[tuple]:
        client = connect(self.settings, self.settings.clickhouse_database)
        try:
            return client.query(sql, parameters=params).result_rows
        finally:
            client.close()

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.query(sql, **params)[0][0]

    def landed(self) -> int:
        return int(self.scalar("SELECT count() FROM scored_events_dedup"))

    def dead_letters(self) -> list[dict]:
        return asyncio.run(
            read_dead_letters(self.settings.kafka_bootstrap, self.settings.dead_letter_topic)
        )

    def dead_values(self) -> list[bytes]:
        return [base64.b64decode(d["value_b64"]) for d in self.dead_letters()]
