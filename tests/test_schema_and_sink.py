"""Schemas and the ClickHouse sink, on the real ClickHouse engine (chDB in-process)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import clickhouse_connect
import jsonschema
import numpy as np
import pytest

from pipeline.emotions import LABELS
from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.language import LanguagePolicy
from pipeline.postprocess import COLUMNS, scored_row
from pipeline.records import RecordValidator
from pipeline.records.raw import KafkaPosition
from pipeline.resources import schemas_dir
from pipeline.sink.clickhouse import ClickHouseSink, apply_migrations, migration_files
from pipeline.traffic import sample_posts, sample_tickets


@pytest.fixture(scope="module")
def engine():
    # One in-memory chDB engine for this module (chDB allows one path per process).
    client = clickhouse_connect.get_client(dsn="chdb://memory")
    yield client
    client.close()


@pytest.mark.parametrize("path", sorted(schemas_dir().glob("*.schema.json")), ids=lambda p: p.name)
def test_json_schemas_are_valid(path) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_migrations_are_idempotent_and_match_the_row_layout(engine) -> None:
    assert apply_migrations(engine, "mp_schema") == [
        "001_scored_events.sql",
        "002_alerts.sql",
        "003_rollups.sql",
        "004_pii_redacted.sql",
        "005_languages.sql",
        "006_affect.sql",
        "007_threads.sql",
    ]
    assert apply_migrations(engine, "mp_schema") == []
    columns = [r[0] for r in engine.query("DESCRIBE TABLE mp_schema.scored_events").result_rows]
    # first_write is the sink's flag for the rollups (003_rollups.sql).
    assert [c for c in columns if c != "inserted_at"] == [*COLUMNS, "first_write"]
    scored = json.loads((schemas_dir() / "scored_event.schema.json").read_text())
    documented = set(scored["properties"]) | set(LABELS)
    assert set(COLUMNS) - {"brands"} <= documented | {"brands"}


def test_affect_migration_on_an_existing_database(engine, monkeypatch) -> None:
    """A database made before VAD (migrations 001-005, rows in the old layout) takes
    006: old events read NULL valence and stay out of the rollup's VAD means, new
    events carry theirs, and a minute's mean valence is valence_sum / vad_events."""
    import pipeline.sink.clickhouse as ch

    every = ch.migration_files()
    monkeypatch.setattr(ch, "migration_files", lambda: [p for p in every if p.name < "006"])
    apply_migrations(engine, "mp_vad")
    affect = ("valence", "arousal", "dominance", "intensity")
    later = (*affect, "thread_id", "author_role")  # columns of 006 and 007
    old_columns = [c for c in COLUMNS if c not in later]
    old = [[v for c, v in zip(COLUMNS, row, strict=True) if c not in later]
           for row in _rows(4, 0, vad=False)]  # fmt: skip
    engine.insert("mp_vad.scored_events", old, column_names=old_columns)
    monkeypatch.undo()
    assert apply_migrations(engine, "mp_vad") == ["006_affect.sql", "007_threads.sql"]
    new = _rows(0, 6, vad=True)
    engine.insert("mp_vad.scored_events", new, column_names=list(COLUMNS))
    assert engine.command("SELECT count() FROM mp_vad.scored_events WHERE valence IS NULL") == 4
    means = engine.query(
        "SELECT sum(events), sum(vad_events), sum(valence_sum) / sum(vad_events) "
        "FROM mp_vad.mood_minute"
    ).result_rows[0]
    expected = float(np.mean([r[COLUMNS.index("valence")] for r in new]))
    assert means[0] == 10 and means[1] == 6
    assert abs(means[2] - expected) < 1e-3
    avg = engine.command("SELECT avg(valence) FROM mp_vad.scored_events_dedup")
    assert abs(float(avg) - expected) < 1e-3  # avg() skips the old events' NULLs


def _rows(n_posts: int, n_tickets: int, vad: bool = False) -> list[list]:
    validator = RecordValidator(256 * 1024, 10_000)
    records = [validator.validate("post", r.value) for r in sample_posts(n_posts)]
    records += [validator.validate("ticket", r.value) for r in sample_tickets(n_tickets)]
    rng = np.random.default_rng(0)
    probs = rng.random((len(records), 28), dtype=np.float32)
    predictions = Predictions(
        probs,
        [[LABELS[j] for j in np.flatnonzero(row > 0.7)] for row in probs],
        ["joy"] * len(records),
        ["positive"] * len(records),
        (1 + 4 * rng.random((len(records), 3))).astype(np.float32) if vad else None,
    )
    model = ModelInfo("emotion", "test-1")
    now = datetime.now(UTC)
    return [
        scored_row(
            rec,
            predictions,
            i,
            KafkaPosition("t", 0, i, now),
            model,
            now,
            ENGLISH.resolve(rec.lang, rec.score_text),
        )
        for i, rec in enumerate(records)
    ]


ENGLISH = LanguagePolicy(detect="off", detector=None, multilingual=False, assume="en")


def test_rewriting_the_same_events_leaves_one_row_each(engine) -> None:
    apply_migrations(engine, "mp_idem")
    rows = _rows(30, 20)
    for _ in range(3):  # a re-delivery, and a replay
        engine.insert("mp_idem.scored_events", rows, column_names=list(COLUMNS))
    assert engine.command("SELECT count() FROM mp_idem.scored_events") == 150
    assert engine.command("SELECT count() FROM mp_idem.scored_events_dedup") == 50
    assert engine.command("SELECT count() FROM mp_idem.scored_events FINAL") == 50
    engine.command("OPTIMIZE TABLE mp_idem.scored_events FINAL")
    assert engine.command("SELECT count() FROM mp_idem.scored_events") == 50


def test_row_values_follow_the_taxonomy(engine) -> None:
    apply_migrations(engine, "mp_tax")
    rows = _rows(10, 10)
    engine.insert("mp_tax.scored_events", rows, column_names=list(COLUMNS))
    bad = engine.command(
        "SELECT count() FROM mp_tax.scored_events WHERE ekman NOT IN "
        "('anger','disgust','fear','joy','sadness','surprise','neutral') OR sentiment NOT IN "
        "('positive','negative','ambiguous','neutral') OR top_score < 0 OR top_score > 1"
    )
    assert bad == 0


def test_sink_writes_through_the_settings_url(engine, tmp_path) -> None:
    from pipeline.settings import Settings

    # chdb://memory is the engine this process already holds.
    settings = Settings(clickhouse_url="chdb://memory", clickhouse_database="mp_sink")
    sink = ClickHouseSink(settings)
    sink.migrate()
    asyncio.run(sink.write(_rows(5, 5)))
    assert engine.command("SELECT count() FROM mp_sink.scored_events_dedup") == 10


def test_threads_migration_on_an_existing_database(engine, monkeypatch) -> None:
    """Tickets stored before threads (001-006) become one-message customer threads of
    their own id; agent and bot turns stored after stay out of the mood and ticket
    rollups (they are our replies, not the customer's mood) but are in `threads`."""
    import pipeline.sink.clickhouse as ch

    every = ch.migration_files()
    monkeypatch.setattr(ch, "migration_files", lambda: [p for p in every if p.name < "007"])
    apply_migrations(engine, "mp_threads")
    old_columns = [c for c in COLUMNS if c not in ("thread_id", "author_role")]
    rows = _rows(0, 4)
    old = [[v for c, v in zip(COLUMNS, row, strict=True) if c in old_columns] for row in rows]
    engine.insert("mp_threads.scored_events", old, column_names=old_columns)
    monkeypatch.undo()
    assert apply_migrations(engine, "mp_threads") == ["007_threads.sql"]
    stored = engine.query("SELECT event_id, thread_id, author_role FROM mp_threads.scored_events "
                          "ORDER BY event_id").result_rows  # fmt: skip
    assert stored == [(r[0], r[0], "customer") for r in sorted(rows)]
    assert engine.command("SELECT count() FROM mp_threads.threads WHERE turns = 1") == 4

    replies = []
    for i, row in enumerate(_rows(0, 3)):
        row = list(row)
        row[COLUMNS.index("event_id")] = f"reply-{i}"
        row[COLUMNS.index("thread_id")] = rows[0][0]  # replies in the first ticket's thread
        row[COLUMNS.index("brand")] = rows[0][COLUMNS.index("brand")]
        row[COLUMNS.index("author_role")] = "agent" if i < 2 else "bot"
        replies.append(row)
    engine.insert("mp_threads.scored_events", replies, column_names=list(COLUMNS))
    assert engine.command("SELECT sum(tickets) FROM mp_threads.ticket_hour") == 4
    assert engine.command("SELECT sum(events) FROM mp_threads.mood_minute") == 4
    thread = engine.query("SELECT turns, customer_turns FROM mp_threads.threads "
                          f"WHERE thread_id = '{rows[0][0]}'").result_rows  # fmt: skip
    assert thread == [(4, 1)]


# --- the cluster schema (pipeline/sink/cluster.py) ---------------------------------


def test_cluster_schema_parses_and_is_replicated_and_distributed(engine) -> None:
    """No cluster runs here: each generated statement must parse (ClickHouse's own
    parser, formatQuery), and the shapes must be what docs/scaling.md promises."""
    import re

    from pipeline.sink.cluster import SHARDING_KEYS, cluster_migrations, cluster_statements

    statements = cluster_statements("mp", "two_by_two")
    for statement in statements:
        formatted = engine.command("SELECT formatQuery({q:String})", parameters={"q": statement})
        assert formatted, statement[:80]
    creates = [s for s in statements if s.startswith("CREATE TABLE")]
    locals_ = {re.match(r"CREATE TABLE IF NOT EXISTS mp\.(\w+)_local ", s).group(1): s
               for s in creates if "_local ON CLUSTER" in s}  # fmt: skip
    assert set(locals_) == set(SHARDING_KEYS)
    for name, sql in locals_.items():
        keeper = rf"ENGINE = Replicated\w+\('/clickhouse/tables/{{shard}}/mp/{name}_local', "
        assert re.search(keeper + r"'\{replica\}'", sql), name
        distributed = next(
            s for s in creates if s.startswith(f"CREATE TABLE IF NOT EXISTS mp.{name} ")
        )
        assert (
            f"AS mp.{name}_local ENGINE = Distributed(two_by_two, mp, {name}_local, " in distributed
        )
    scored = next(
        s for s in creates if s.startswith("CREATE TABLE IF NOT EXISTS mp.scored_events ")
    )
    assert scored.endswith("cityHash64(source, event_id))")  # re-deliveries meet on one shard
    # ReplacingMergeTree keeps its version column after the Keeper path and replica.
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/mp/scored_events_local', " \
           "'{replica}', scored_at)" in locals_["scored_events"]  # fmt: skip
    views = [s for s in statements if s.startswith("CREATE MATERIALIZED VIEW")]
    assert views and all(" TO mp." in v and "_local AS " in v for v in views)
    assert all("FROM mp.scored_events_local" in v for v in views)  # each shard's own inserts
    modified = [s for s in statements if "MODIFY QUERY" in s]
    assert modified and all("FROM mp.scored_events_local" in s for s in modified)
    assert all("ON CLUSTER two_by_two" in s for s in statements if not s.startswith("INSERT"))
    # Column changes reach the Distributed table; order keys stay on the local one.
    order = [s for s in statements if "MODIFY ORDER BY" in s]
    assert order and all("_local ON CLUSTER" in s for s in order)
    assert any(s.startswith("ALTER TABLE mp.scored_events ON CLUSTER two_by_two ADD COLUMN "
                            "IF NOT EXISTS thread_id") for s in statements)  # fmt: skip
    names = [name for name, _ in cluster_migrations("mp", "two_by_two")]
    assert names[1:] == [p.name for p in migration_files()]


def test_cluster_schema_refuses_what_it_cannot_convert(monkeypatch, tmp_path) -> None:
    import pipeline.sink.cluster as cluster

    new = tmp_path / "999_new.sql"
    new.write_text("CREATE TABLE IF NOT EXISTS {database}.surprise (a String) "
                   "ENGINE = MergeTree ORDER BY a;\n")  # fmt: skip
    monkeypatch.setattr(cluster, "migration_files", lambda: [*migration_files(), new])
    with pytest.raises(cluster.ClusterSchemaError, match="surprise has no sharding key"):
        cluster.cluster_statements("mp", "c")
    new.write_text("OPTIMIZE TABLE {database}.scored_events FINAL;\n")
    with pytest.raises(cluster.ClusterSchemaError, match="no cluster form for: OPTIMIZE"):
        cluster.cluster_statements("mp", "c")
    with pytest.raises(ValueError, match="not a plain identifier"):
        cluster.cluster_statements("mp", "c; DROP")


def test_single_node_schema_is_untouched_by_the_cluster_path(engine) -> None:
    apply_migrations(engine, "mp_single")
    tables = "SELECT name, engine FROM system.tables WHERE database = 'mp_single'"
    engines = dict(engine.query(tables).result_rows)
    assert engines["scored_events"] == "ReplacingMergeTree"
    assert not any(name.endswith("_local") for name in engines)
    assert "Distributed" not in engines.values()
