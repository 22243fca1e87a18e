"""ClickHouse connection, schema migrations and the batched, idempotent event sink.

`chdb://PATH` is the embedded engine. Only one process may open a chDB data
directory, so when the local runtime serves PATH over HTTP (it writes
`PATH.endpoint`), every other process connects through that endpoint instead.
`http(s)://` URLs go to a ClickHouse server unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from pipeline.postprocess import COLUMNS
from pipeline.resources import schemas_dir
from pipeline.retry import retry_forever
from pipeline.settings import Settings

log = logging.getLogger("moodpipe.sink")

EVENTS_TABLE = "scored_events"


def chdb_path(url: str) -> Path | None:
    if not url.startswith("chdb://"):
        return None
    return Path(url.removeprefix("chdb://")).resolve()


def endpoint_file(path: Path) -> Path:
    return path.with_name(path.name + ".endpoint")


def local_endpoint(url: str) -> str | None:
    """The HTTP URL of a live local server that owns this chDB directory, if any."""
    path = chdb_path(url)
    if path is None:
        return None
    try:
        info = json.loads(endpoint_file(path).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return str(info["url"])


def connect(settings: Settings, database: str | None = None) -> Client:
    url = settings.resolved_clickhouse_url
    password = settings.clickhouse_password.get_secret_value()
    served = local_endpoint(url)
    if served is not None:
        # The local front speaks uncompressed HTTP only.
        return clickhouse_connect.get_client(dsn=served, database=database, compress=False)
    if url.startswith("chdb://"):
        return clickhouse_connect.get_client(dsn=url, database=database)
    parts = urlsplit(url)
    return clickhouse_connect.get_client(
        host=parts.hostname,
        port=parts.port,
        secure=parts.scheme == "https",
        username=parts.username or settings.clickhouse_user,
        password=parts.password or password,
        database=database,
    )


def migration_files() -> list[Path]:
    return sorted((schemas_dir() / "clickhouse").glob("[0-9][0-9][0-9]_*.sql"))


def apply_migrations(client: Client, database: str) -> list[str]:
    """Create the database and apply each numbered DDL file once, in order.

    Every statement is itself idempotent (IF NOT EXISTS), so two workers starting at
    the same time, or a crash halfway, cannot leave the schema broken.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise ValueError(f"database name {database!r} is not a plain identifier")
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY name"
    )
    done = {
        row[0] for row in client.query(f"SELECT name FROM {database}.schema_migrations").result_rows
    }
    applied = []
    for path in migration_files():
        if path.name in done:
            continue
        for statement in _statements(path.read_text()):
            client.command(statement.replace("{database}", database))
        client.insert(f"{database}.schema_migrations", [[path.name]], column_names=["name"])
        applied.append(path.name)
        log.info("applied migration %s", path.name)
    return applied


def _statements(sql: str) -> list[str]:
    without_comments = "\n".join(
        line for line in sql.splitlines() if not line.strip().startswith("--")
    )
    return [s.strip() for s in without_comments.split(";") if s.strip()]


class ClickHouseSink:
    """Writes batches of scored rows; retries until ClickHouse has them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = settings.clickhouse_database
        self._client: Client | None = None

    def _connection(self) -> Client:
        if self._client is None:
            self._client = connect(self.settings, self.database)
        return self._client

    def migrate(self) -> list[str]:
        # Without a default database: it may not exist yet.
        client = connect(self.settings, None)
        try:
            return apply_migrations(client, self.database)
        finally:
            client.close()

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self._connection().insert(f"{self.database}.{table}", rows, column_names=list(columns))

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return self._connection().query(sql, parameters=params).result_rows

    async def _reset(self, _exc: BaseException) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)

    async def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Scored events, in `COLUMNS` order."""
        await self.write_to(EVENTS_TABLE, COLUMNS, rows)

    async def write_to(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        # clickhouse-connect is synchronous (and chDB has no async client): a thread
        # keeps the event loop free for Kafka heartbeats while the insert runs.
        await retry_forever(
            lambda: asyncio.to_thread(self._insert, table, columns, rows),
            what=f"ClickHouse insert of {len(rows)} rows into {table}",
            log=log,
            initial_backoff=self.settings.retry_initial_backoff,
            max_backoff=self.settings.retry_max_backoff,
            on_failure=self._reset,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
