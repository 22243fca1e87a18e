"""ClickHouse connection, schema migrations and the batched, idempotent event sink.

`chdb://PATH` is the embedded engine. Only one process may open a chDB data
directory, so when the local runtime serves PATH over HTTP (it writes
`PATH.endpoint`), every other process connects through that endpoint instead.
`http(s)://` URLs go to a ClickHouse server unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from pipeline.postprocess import COLUMNS
from pipeline.resilience.failures import ServiceUnavailableError
from pipeline.resilience.retry import retry
from pipeline.resources import schemas_dir
from pipeline.settings import Settings

log = logging.getLogger("moodpipe.sink")

EVENTS_TABLE = "scored_events"
_SOURCE, _BRAND, _CREATED, _EVENT = (
    COLUMNS.index(c) for c in ("source", "brand", "created_at", "event_id")
)


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


def connect(
    settings: Settings, database: str | None = None, *, embedded_fallback: bool = True
) -> Client:
    """A client for the configured ClickHouse.

    `embedded_fallback`: for `chdb://PATH` with no live local front, open the engine
    in this process (the CLI after `moodpipe local down`). A worker passes False: a
    front that is down is an outage to wait out (`ServiceUnavailableError`), and a worker
    that opened the directory itself would lock the restarted front out of it.
    """
    url = settings.resolved_clickhouse_url
    password = settings.clickhouse_password.get_secret_value()
    # No session id: the sink runs the already-stored lookup and inserts from several
    # threads at once, and ClickHouse serialises the queries of one session.
    sessionless: dict[str, Any] = {"autogenerate_session_id": False}
    served = local_endpoint(url)
    if served is not None:
        # The local front speaks uncompressed HTTP only.
        return clickhouse_connect.get_client(
            dsn=served,
            database=database,
            compress=False,
            username=settings.clickhouse_user,
            password=password,
            **sessionless,
        )
    if url.startswith("chdb://"):
        if not embedded_fallback and url != "chdb://memory":
            raise ServiceUnavailableError(
                f"the local ClickHouse front for {url} is not running "
                "(moodpipe local up clickhouse)"
            )
        return clickhouse_connect.get_client(dsn=url, database=database)
    parts = urlsplit(url)
    return clickhouse_connect.get_client(
        host=parts.hostname,
        port=parts.port,
        secure=parts.scheme == "https",
        username=parts.username or settings.clickhouse_user,
        password=password,
        database=database,
        **_tls_options(settings),
        **sessionless,
    )


def _tls_options(settings: Settings) -> dict[str, Any]:
    ca_file = str(settings.clickhouse_ca_file) if settings.clickhouse_ca_file else None
    if ca_file is None and settings.clickhouse_verify:
        return {}
    return {"pool_mgr": _tls_pool(ca_file, settings.clickhouse_verify)}


@functools.cache
def _tls_pool(ca_file: str | None, verify: bool) -> Any:
    """One shared connection pool per CA file, owned by this module.

    Why not clickhouse-connect's `ca_cert=`: it then creates a pool of its own and
    closes it with the client, through a lock that urllib3-future (installed as
    `urllib3` by grafana-client's niquests) does not have: every close raised.
    """
    from clickhouse_connect.driver import httputil

    return httputil.get_pool_manager(ca_cert=ca_file, verify=verify)


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


TEXT_COLUMNS = ("text", "subject", "author")


def apply_text_ttl(client: Client, database: str, days: int) -> None:
    """Expire raw text after `days` (0: keep it); scores, labels and rollups stay.

    A column TTL resets the value to '' when parts merge after the deadline. Applied on
    every migrate, so changing MOODPIPE_RAW_TEXT_TTL_DAYS takes effect at the next start.
    """
    answer = client.command(f"SHOW CREATE TABLE {database}.{EVENTS_TABLE}")
    create = answer if isinstance(answer, str) else "".join(map(str, answer))  # type: ignore[arg-type]
    create = create.replace("\\n", "\n")
    for column in TEXT_COLUMNS:
        current = re.search(rf"`{column}` String TTL ([^,\n]+)", create)
        if days:
            wanted = f"toDateTime(created_at) + toIntervalDay({days})"
            if current is None or current.group(1).strip() != wanted:
                client.command(
                    f"ALTER TABLE {database}.{EVENTS_TABLE} MODIFY COLUMN {column} String "
                    f"TTL toDateTime(created_at) + INTERVAL {days} DAY"
                )
        elif current is not None:
            client.command(
                f"ALTER TABLE {database}.{EVENTS_TABLE} MODIFY COLUMN {column} REMOVE TTL"
            )


def _statements(sql: str) -> list[str]:
    without_comments = "\n".join(
        line for line in sql.splitlines() if not line.strip().startswith("--")
    )
    return [s.strip() for s in without_comments.split(";") if s.strip()]


class ClickHouseSink:
    """Writes batches of scored rows: waits out outages, raises what the data causes.

    `embedded_fallback`: see `connect`; False (a worker) never opens the engine itself.
    """

    def __init__(self, settings: Settings, *, embedded_fallback: bool = False) -> None:
        self.settings = settings
        self.database = settings.clickhouse_database
        self.embedded_fallback = embedded_fallback
        self._client: Client | None = None

    @property
    def initial_backoff(self) -> float:
        return self.settings.retry_initial_backoff

    @property
    def max_backoff(self) -> float:
        return self.settings.retry_max_backoff

    def _connection(self) -> Client:
        if self._client is None:
            self._client = connect(
                self.settings, self.database, embedded_fallback=self.embedded_fallback
            )
        return self._client

    def migrate(self) -> list[str]:
        # Without a default database: it may not exist yet.
        client = connect(self.settings, None, embedded_fallback=self.embedded_fallback)
        try:
            applied = apply_migrations(client, self.database)
            apply_text_ttl(client, self.database, self.settings.raw_text_ttl_days)
            return applied
        finally:
            client.close()

    def insert_once(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """One insert attempt, no retry (`write_to` retries until it succeeds)."""
        self._connection().insert(f"{self.database}.{table}", rows, column_names=list(columns))

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._connection().query(sql, parameters=params).result_rows]

    async def _reset(self, _exc: BaseException) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)

    async def write(
        self,
        rows: Sequence[Sequence[Any]],
        stored: set[tuple[str, str]] | None = None,
        data_attempts: int | None = 3,
    ) -> None:
        """Scored events, in `COLUMNS` order, flagged for the rollups (see below).

        `stored`: the result of `already_stored` for these events, when the caller
        looked it up ahead (the scoring stage does, while the model runs).
        """
        if not rows:
            return
        if stored is None:
            stored = await self.already_stored(
                [(r[_SOURCE], r[_BRAND], r[_CREATED], r[_EVENT]) for r in rows], data_attempts
            )
        seen = set(stored)
        flagged = []
        for row in rows:
            key = (row[_SOURCE], row[_EVENT])
            flagged.append([*row, 0 if key in seen else 1])
            seen.add(key)  # the same event twice in one batch counts once
        await self.write_to(EVENTS_TABLE, (*COLUMNS, "first_write"), flagged, data_attempts)

    async def already_stored(
        self, events: Sequence[tuple[str, str, datetime, str]], data_attempts: int | None = 3
    ) -> set[tuple[str, str]]:
        """(source, event_id) of the given (source, brand, created_at, event_id) stored.

        Why: the rollup materialized views (003_rollups.sql) read only rows written
        with first_write = 1, so a re-delivered or replayed event is not counted twice.
        One lookup per batch, on the table's sort key (source, brand, created_at, id).
        """
        if not events:
            return set()
        return await self._retry(
            lambda: asyncio.to_thread(self._stored, events),
            "ClickHouse lookup of already-stored events",
            data_attempts,
        )

    def _stored(self, events: Sequence[tuple[str, str, datetime, str]]) -> set[tuple[str, str]]:
        rows = (
            self._connection()
            .query(
                f"SELECT source, event_id FROM {self.database}.{EVENTS_TABLE} "
                "WHERE source IN {sources:Array(String)} AND brand IN {brands:Array(String)} "
                "AND created_at BETWEEN {lo:DateTime64(3)} AND {hi:DateTime64(3)} "
                "AND has({ids:Array(String)}, event_id)",
                parameters={
                    "sources": sorted({e[0] for e in events}),
                    "brands": sorted({e[1] for e in events}),
                    "lo": min(e[2] for e in events),
                    "hi": max(e[2] for e in events),
                    "ids": [e[3] for e in events],
                },
            )
            .result_rows
        )
        return {(source, event_id) for source, event_id in rows}

    async def write_to(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        data_attempts: int | None = 3,
    ) -> None:
        """Insert `rows`; outages are waited out, other failures raised after
        `data_attempts` tries (None: retried forever) for the caller to isolate."""
        if not rows:
            return
        # clickhouse-connect is synchronous (and chDB has no async client): a thread
        # keeps the event loop free for Kafka heartbeats while the insert runs.
        await self._retry(
            lambda: asyncio.to_thread(self.insert_once, table, columns, rows),
            f"ClickHouse insert of {len(rows)} rows into {table}",
            data_attempts,
        )

    async def probe(self) -> None:
        """A known-good round trip through the same lookup the writes make: the server
        answers, the events table is there and takes the query (isolation's proof that
        a failing row is the row's fault, not the table's)."""
        probe_key = ("post", "moodpipe-probe", datetime(2020, 1, 1, tzinfo=UTC), "probe")
        await asyncio.to_thread(self._stored, [probe_key])

    async def _retry(self, action: Any, what: str, data_attempts: int | None) -> Any:
        return await retry(
            action,
            what=what,
            log=log,
            initial_backoff=self.settings.retry_initial_backoff,
            max_backoff=self.settings.retry_max_backoff,
            on_failure=self._reset,
            data_attempts=data_attempts,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
