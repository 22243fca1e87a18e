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
from pipeline.sink.clickhouse import ClickHouseSink, apply_migrations
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
