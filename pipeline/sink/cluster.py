"""The ClickHouse schema for a cluster: the same migrations, as Replicated tables with
`ON CLUSTER` and Distributed tables in front (`moodpipe migrate --cluster NAME`).

Every table `T` of the single-node schema becomes:

- `T_local` on every node: the same columns, ordering and partitioning, with the
  Replicated form of its engine (`ReplicatedReplacingMergeTree` for
  `ReplacingMergeTree`, ...), replicated per shard through Keeper at
  `/clickhouse/tables/{shard}/<database>/T_local` and `{replica}` (the server's
  macros);
- `T`, a Distributed table over the `T_local` of every shard, under the name the
  pipeline, the dashboards and the saved queries already use.

Sharding keys: `scored_events` by a hash of (source, event_id), so the copies of a
re-delivered event land on one shard, where `FINAL` (which works per shard) still
removes them, and the sink's `already_stored` lookup (by event id, through the
Distributed table) finds them; `alerts` and `alert_deliveries` by the alert id, for
the same reason; `dead_letters` by its position. The rollups are written by their
materialized views on each shard from that shard's inserts (each shard rolls up its
own events), and read through their Distributed tables, whose queries already
`sum()` per key: a minute of one brand split over two shards sums the same. Views
(`scored_events_dedup`, `alerts_dedup`, `threads`) read the Distributed tables.

The single-node path (`pipeline.sink.clickhouse.apply_migrations`) does not use this
module and is unchanged. The statements are generated from the migration files, so a
new migration reaches the cluster schema without a second copy; shapes this
generator does not know raise, rather than being passed through unconverted.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.sink.clickhouse import _statements, migration_files

# Distributed sharding key per table (see the module docstring).
SHARDING_KEYS: dict[str, str] = {
    "scored_events": "cityHash64(source, event_id)",
    "alerts": "cityHash64(alert_id)",
    "alert_deliveries": "cityHash64(alert_id)",
    "dead_letters": "cityHash64(source_topic, source_partition, source_offset)",
    "mood_minute": "cityHash64(brand)",
    "ticket_hour": "cityHash64(brand)",
    "pipeline_minute": "rand()",
    "pii_minute": "rand()",
    "language_minute": "rand()",
    "pipeline_lag": "cityHash64(topic, partition)",
}

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_CREATE_TABLE = re.compile(
    rf"^CREATE TABLE IF NOT EXISTS \{{database\}}\.({_IDENT})\s*\((.*)\)\s*"
    rf"ENGINE\s*=\s*({_IDENT})(?:\(([^)]*)\))?(.*)$",
    re.S,
)
_CREATE_MV = re.compile(
    rf"^CREATE MATERIALIZED VIEW IF NOT EXISTS \{{database\}}\.({_IDENT})\s+"
    rf"TO \{{database\}}\.({_IDENT})\s+AS\s+(.*)$",
    re.S,
)
_CREATE_VIEW = re.compile(
    rf"^CREATE (OR REPLACE VIEW|VIEW IF NOT EXISTS) \{{database\}}\.({_IDENT})\s+AS\s+(.*)$",
    re.S,
)
_ALTER = re.compile(rf"^ALTER TABLE \{{database\}}\.({_IDENT})\s+(.*)$", re.S)
_INSERT = re.compile(rf"^INSERT INTO \{{database\}}\.({_IDENT})\s+SELECT\b", re.S)
_FROM_TABLE = re.compile(rf"\b(FROM|JOIN)\s+\{{database\}}\.({_IDENT})\b")


class ClusterSchemaError(ValueError):
    """A migration statement of a shape the cluster generator does not convert."""


def _local_sources(select: str, tables: set[str]) -> str:
    """A materialized view's SELECT reading the local tables (the inserts it sees)."""
    return _FROM_TABLE.sub(
        lambda m: f"{m.group(1)} {{database}}.{m.group(2)}_local"
        if m.group(2) in tables else m.group(0),
        select,
    )  # fmt: skip


def cluster_migrations(database: str, cluster: str) -> list[tuple[str, list[str]]]:
    """The statements that build the schema on `cluster`: ("", the preamble: database
    and migrations table, always run), then (migration file, its statements) in order."""
    for name, value in (("database", database), ("cluster", cluster)):
        if not re.fullmatch(_IDENT, value):
            raise ValueError(f"{name} {value!r} is not a plain identifier")
    on = f"ON CLUSTER {cluster}"
    preamble = [
        f"CREATE DATABASE IF NOT EXISTS {{database}} {on}",
        # One list of applied migrations for the whole cluster: every replica of every
        # shard shares this path.
        f"CREATE TABLE IF NOT EXISTS {{database}}.schema_migrations {on} "
        "(name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/"
        "schema_migrations', '{replica}') ORDER BY name",
    ]
    out = [("", preamble)]
    tables: set[str] = set()
    views: set[str] = set()
    for path in migration_files():
        converted: list[str] = []
        for statement in _statements(path.read_text()):
            converted += _convert(statement, on, cluster, tables, views, path.name)
        out.append((path.name, converted))
    return [(name, [s.replace("{database}", database) for s in sql]) for name, sql in out]


def cluster_statements(database: str, cluster: str) -> list[str]:
    """Every statement, in order (what `moodpipe migrate --cluster NAME --print` shows)."""
    return [s for _, sql in cluster_migrations(database, cluster) for s in sql]


def _convert(
    statement: str, on: str, cluster: str, tables: set[str], views: set[str], where: str
) -> list[str]:
    if m := _CREATE_TABLE.match(statement):
        name, columns, engine, args, rest = m.groups()
        if name not in SHARDING_KEYS:
            raise ClusterSchemaError(f"{where}: table {name} has no sharding key in SHARDING_KEYS")
        tables.add(name)
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{name}_local', '{{replica}}'"
        replicated = f"Replicated{engine}({path}{', ' + args if args else ''})"
        return [
            f"CREATE TABLE IF NOT EXISTS {{database}}.{name}_local {on} ({columns}) "
            f"ENGINE = {replicated}{rest}",
            f"CREATE TABLE IF NOT EXISTS {{database}}.{name} {on} AS {{database}}.{name}_local "
            f"ENGINE = Distributed({cluster}, {{database}}, {name}_local, "
            f"{SHARDING_KEYS[name]})",
        ]
    if m := _CREATE_MV.match(statement):
        view, target, select = m.groups()
        if target not in tables:
            raise ClusterSchemaError(f"{where}: view {view} writes to unknown table {target}")
        views.add(view)
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.{view} {on} "
            f"TO {{database}}.{target}_local AS {_local_sources(select, tables)}"
        ]
    if m := _CREATE_VIEW.match(statement):
        how, view, select = m.groups()
        return [f"CREATE {how} {{database}}.{view} {on} AS {select}"]
    if m := _ALTER.match(statement):
        name, change = m.groups()
        if name in views:  # MODIFY QUERY of a materialized view: read the local tables
            return [f"ALTER TABLE {{database}}.{name} {on} {_local_sources(change, tables)}"]
        if name not in tables:
            raise ClusterSchemaError(f"{where}: ALTER of unknown table {name}")
        out = [f"ALTER TABLE {{database}}.{name}_local {on} {change}"]
        # Column changes reach the Distributed table too; order keys, mutations and
        # TTLs belong to the local tables only.
        if re.match(r"\s*(ADD|DROP|MODIFY|RENAME)\s+COLUMN\b", change, re.I):
            distributed = _column_changes_only(change)
            if distributed:
                out.append(f"ALTER TABLE {{database}}.{name} {on} {distributed}")
        return out
    if m := _INSERT.match(statement):
        # A backfill of a rollup from existing events: through the Distributed tables,
        # once, from the node that applies the migration (a new cluster has no events).
        return [statement]
    raise ClusterSchemaError(f"{where}: no cluster form for: {statement[:120]}")


def _column_changes_only(change: str) -> str:
    """The comma-separated column clauses of an ALTER, without other clauses."""
    clauses = _split_top_level(change)
    keep = [c for c in clauses if re.match(r"\s*(ADD|DROP|MODIFY|RENAME)\s+COLUMN\b", c, re.I)]
    return ", ".join(c.strip() for c in keep)


def _split_top_level(text: str) -> list[str]:
    parts, depth, start, quote = [], 0, 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def apply_cluster_migrations(client: Any, database: str, cluster: str) -> list[str]:
    """Apply each migration not yet applied on the cluster, in order; returns their
    names. Statements are idempotent (IF NOT EXISTS), and the applied list is itself a
    replicated table, so a second run, or a run from another node, does nothing."""
    migrations = cluster_migrations(database, cluster)
    for statement in migrations[0][1]:
        client.command(statement)
    done = {r[0] for r in client.query(f"SELECT name FROM {database}.schema_migrations")
            .result_rows}  # fmt: skip
    applied = []
    for name, statements in migrations[1:]:
        if name in done:
            continue
        for statement in statements:
            client.command(statement)
        client.insert(f"{database}.schema_migrations", [[name]], column_names=["name"])
        applied.append(name)
    return applied
