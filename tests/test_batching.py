"""Unit tests of the batch logic in ScoringStages and the Triton client's chunking.

The collaborators here are in-memory recorders, so these tests claim nothing about
Kafka, Triton or ClickHouse; the end-to-end tests cover those for real.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import numpy as np

from pipeline.emotions import LABELS
from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.inference.triton_client import TritonEmotionClient
from pipeline.postprocess import COLUMNS
from pipeline.records import RecordValidator
from pipeline.records.raw import KafkaPosition, RawRecord
from pipeline.scoring import ScoringStages
from pipeline.sink.buffer import StorageBuffer
from pipeline.sink.writer import RowWriter
from pipeline.traffic import bad_records, sample_posts


class RecordingInference:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def model_info(self) -> ModelInfo:
        return ModelInfo("emotion", "test-1")

    initial_backoff = max_backoff = 0.01

    async def score(self, texts: list[str], data_attempts: int | None = None) -> Predictions:
        self.calls.append(texts)
        if any("POISON" in t for t in texts):
            raise ValueError("the model cannot take this text")
        out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
        out[:, LABELS.index("anger")] = [len(t) % 10 / 10 for t in texts]
        n = len(texts)
        return Predictions(out, [["anger"]] * n, ["anger"] * n, ["negative"] * n)

    async def probe(self) -> None:
        return None


class RecordingSink:
    initial_backoff = max_backoff = 0.01

    def __init__(self, refuse: str = "") -> None:
        self.batches: list[list[list]] = []
        self.lookups: list[list[tuple]] = []
        self.tables: dict[str, list[list]] = {}
        self.refuse = refuse  # an event id this "table" rejects

    async def already_stored(self, events: list[tuple], data_attempts=None) -> set:
        self.lookups.append(events)
        return set()

    async def write(self, rows: list[list], stored: set | None = None, data_attempts=None) -> None:
        if self.refuse and any(r[0] == self.refuse for r in rows):
            raise ValueError("Cannot parse input")
        self.batches.append(rows)

    async def write_to(self, table: str, columns: tuple, rows: list[list], attempts=None) -> None:
        self.tables.setdefault(table, []).extend(rows)

    async def probe(self) -> None:
        return None


def _raw(records, topic="posts"):
    return [
        RawRecord(r.key, r.value, KafkaPosition(topic, 0, i, datetime.now(UTC)))
        for i, r in enumerate(records)
    ]


def test_one_batch_scores_good_records_in_one_call_and_dead_letters_the_rest() -> None:
    good = sample_posts(10, run_id="b")
    bad = bad_records("post", run_id="b")
    mixed = good[:5] + bad + good[5:]
    inference, sink, letters = RecordingInference(), RecordingSink(), []

    async def send(batch) -> None:
        letters.extend(batch)

    stages = ScoringStages(
        "post", RecordValidator(256 * 1024, 10_000), inference, RowWriter(sink, send)
    )
    result = asyncio.run(stages.process(_raw(mixed)))
    assert (result.scored, result.rejected) == (10, len(bad))
    assert len(inference.calls) == 1 and len(inference.calls[0]) == 10
    assert len(sink.batches) == 1
    assert len(sink.lookups) == 0  # the recorder's write does the lookup; none per batch
    assert len(sink.tables["dead_letters"]) == len(bad)  # the queryable copy
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in sink.batches[0]]
    # Order and Kafka positions are kept: row i is good[i] at its own offset.
    assert [r["event_id"] for r in rows] == [g.event_id for g in good]
    assert [r["source_offset"] for r in rows] == [
        0,
        1,
        2,
        3,
        4,
        *range(5 + len(bad), 10 + len(bad)),
    ]
    assert [key for _, key, _, _ in letters] == [b.key for b in bad]
    assert all(rejected.code == b.expect for (rejected, *_), b in zip(letters, bad, strict=True))


def test_all_bad_batch_never_calls_the_model() -> None:
    inference, sink = RecordingInference(), RecordingSink()

    async def send(batch) -> None:
        pass

    stages = ScoringStages(
        "post", RecordValidator(256 * 1024, 10_000), inference, RowWriter(sink, send)
    )
    asyncio.run(stages.process(_raw(bad_records("post"))))
    assert inference.calls == [] and sink.batches == []


def test_records_the_model_or_the_table_rejects_alone_are_dead_lettered_the_rest_stored() -> None:
    posts = sample_posts(40, run_id="iso")
    poisoned = posts[3].value.replace(b'"text": "', b'"text": "POISON ', 1)
    batch = [*posts[:3], type(posts[3])(posts[3].key, poisoned, "poison"), *posts[4:]]
    refused = posts[17].event_id
    inference, sink, letters = RecordingInference(), RecordingSink(refuse=refused), []

    async def send(batch) -> None:
        letters.extend(batch)

    stages = ScoringStages("post", RecordValidator(256 * 1024, 10_000), inference,
                           RowWriter(sink, send, data_attempts=1),
                           data_attempts=1)  # fmt: skip
    result = asyncio.run(stages.process(_raw(batch)))
    assert (result.scored, result.rejected) == (39, 1)  # the storage poison: in the writer
    stored = {row[0] for rows in sink.batches for row in rows}
    assert stored == {p.event_id for p in posts} - {posts[3].event_id, refused}
    codes = {rejected.code: position.offset for rejected, _, _, position in letters}
    assert codes == {"poison_inference": 3, "poison_storage": 17}
    assert "the model cannot take this text" in letters[0][0].reason
    assert len(sink.tables["dead_letters"]) == 2


def test_triton_client_splits_batches_over_the_model_max(monkeypatch) -> None:
    client = TritonEmotionClient("127.0.0.1:1", "emotion")
    seen: list[int] = []

    async def fake_info() -> ModelInfo:
        client._max_batch = 256
        return ModelInfo("emotion", "v")

    async def fake_infer(texts: list[str]) -> Predictions:
        seen.append(len(texts))
        n = len(texts)
        probs = np.full((n, 28), len(seen), dtype=np.float32)
        return Predictions(probs, [[f"c{len(seen)}"]] * n, ["joy"] * n, ["positive"] * n)

    monkeypatch.setattr(client, "model_info", fake_info)
    monkeypatch.setattr(client, "_infer", fake_infer)
    result = asyncio.run(client.score([f"t{i}" for i in range(600)]))
    assert seen == [256, 256, 88]
    assert result.probabilities.shape == (600, 28) and len(result) == 600
    assert result.probabilities[0, 0] == 1 and result.probabilities[-1, 0] == 3
    assert result.labels[0] == ["c1"] and result.labels[-1] == ["c3"]


def test_a_threshold_override_relabels_from_probabilities() -> None:
    probs = np.zeros((2, 28), dtype=np.float32)
    probs[0, LABELS.index("anger")] = 0.55
    probs[1, LABELS.index("joy")] = 0.45
    base = Predictions(probs, [["anger"], ["joy"]], ["anger", "joy"], ["negative", "positive"])
    assert base.with_threshold(0.5, LABELS).labels == [["anger"], []]
    assert base.with_threshold(0.4, LABELS).labels == [["anger"], ["joy"]]


def test_the_storage_buffer_writes_many_batches_in_one_insert_and_acks_after_it() -> None:
    inference, sink = RecordingInference(), RecordingSink()

    async def send(batch) -> None:
        pass

    async def run() -> list[bool]:
        writer = RowWriter(sink, send)
        buffer: StorageBuffer = StorageBuffer(writer.write, max_rows=10_000, interval=0.3)
        stages = ScoringStages("post", RecordValidator(256 * 1024, 10_000), inference, writer,
                               buffer)  # fmt: skip
        posts = sample_posts(200, run_id="buf")
        results = [await stages.prepare(_raw(posts[i : i + 20])) for i in range(0, 200, 20)]
        pending_before = [r.stored.done() for r in results]  # type: ignore[attr-defined]
        await asyncio.gather(*(r.stored for r in results))
        await buffer.close()
        return pending_before

    pending_before = asyncio.run(run())
    # After a quiet spell the first rows go at once; the nine batches scored while the
    # interval runs wait for the next flush and share one insert.
    assert not any(pending_before[1:]), "done before its insert"
    assert [len(b) for b in sink.batches] == [20, 180]
    assert len(inference.calls) == 10


def test_the_storage_buffer_flushes_at_max_rows_without_waiting() -> None:
    written: list[int] = []

    async def write(rows: list) -> None:
        written.append(len(rows))

    async def run() -> None:
        buffer: StorageBuffer = StorageBuffer(write, max_rows=100, interval=60)
        first = buffer.submit(list(range(60)))
        second = buffer.submit(list(range(60)))  # over max_rows: the first flush goes now
        await asyncio.wait_for(first, 5)
        assert not second.done() or written == [60, 60]
        await buffer.close()

    asyncio.run(run())
    assert written[0] == 60


def test_light_traffic_waits_for_max_wait_a_pause_flushes_heavy_goes_at_the_interval() -> None:
    written: list[tuple[int, float]] = []
    marks: dict[str, float] = {}

    async def run() -> None:
        started = time.monotonic()

        def now() -> float:
            return time.monotonic() - started

        async def write(rows: list) -> None:
            written.append((len(rows), now()))

        buffer: StorageBuffer = StorageBuffer(write, max_rows=10_000, interval=0.15,
                                              min_rows=1000, max_wait=0.6)  # fmt: skip
        futures = []
        for _ in range(18):  # light, steady: 20 rows every 0.05 s (< interval apart)
            futures.append(buffer.submit(list(range(20))))
            await asyncio.sleep(0.05)
        marks["last_light"] = now()
        await asyncio.wait_for(asyncio.gather(*futures), 5)
        await asyncio.sleep(0.2)
        marks["heavy"] = now()
        await asyncio.wait_for(buffer.submit(list(range(1500))), 0.3)  # >= min_rows
        await buffer.close()

    asyncio.run(run())
    light, heavy = written[:-1], written[-1]
    assert sum(n for n, _ in light) == 360
    first_rows, first_at = light[0]
    assert 0.55 <= first_at < 0.9 and first_rows >= 200  # ~max_wait of rows, in one insert
    assert len(light) <= 3
    assert light[-1][1] - marks["last_light"] < 0.4  # the pause flushed the rest
    assert heavy[0] == 1500 and heavy[1] - marks["heavy"] < 0.25


def test_a_batch_of_two_languages_keeps_its_input_order_for_the_scored_topic() -> None:
    """Each route is scored in its own call; the rows (and so the scored topic, which
    carries a thread's turns in order) come back in the batch's order."""
    from pipeline.language import LanguagePolicy
    from pipeline.traffic.threads import thread_turns, written_threads

    threads = {t.id: t for t in written_threads()}
    turns = []
    for thread_id in ("zh-billing-escalates", "billing-dispute-escalates"):
        turns += thread_turns(threads[thread_id], datetime(2026, 11, 3, 10, tzinfo=UTC),
                              brand="B", customer_id="C", thread_id=thread_id)  # fmt: skip
    turns.sort(key=lambda t: t.created_at)  # Chinese and English turns interleaved
    english, multilingual, sink = RecordingInference(), RecordingInference(), RecordingSink()
    policy = LanguagePolicy(detect="off", detector=None, multilingual=True, assume="en")

    async def send(batch) -> None:
        pass

    stages = ScoringStages("ticket", RecordValidator(256 * 1024, 10_000), english,
                           RowWriter(sink, send), multilingual=multilingual,
                           languages=policy)  # fmt: skip
    result = asyncio.run(stages.process(_raw([t.record for t in turns], "tickets")))
    assert result.scored == len(turns)
    assert len(english.calls) == 1 and len(multilingual.calls) == 1  # one call per route
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in sink.batches[0]]
    assert [r["event_id"] for r in rows] == [t.record.event_id for t in turns]
    assert [r["source_offset"] for r in rows] == list(range(len(turns)))
