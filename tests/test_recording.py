"""Recordings: the file format on its own, and record -> replay on the real broker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.recording import (
    RecordedMessage,
    RecordingCorruptError,
    RecordingError,
    RecordingReader,
    RecordingTruncatedError,
    RecordingWriter,
)
from pipeline.recording.record import record_topics
from pipeline.recording.replay import replay_recording
from pipeline.recording.times import parse_offsets, parse_time_ms


def _messages(n: int) -> list[RecordedMessage]:
    out = []
    for i in range(n):
        out.append(
            RecordedMessage(
                topic="a" if i % 3 else "b",
                partition=i % 4,
                offset=i,
                timestamp_ms=1_700_000_000_000 + i,
                timestamp_type=0,
                key=None if i % 7 == 0 else f"k{i}".encode(),
                value=None if i % 11 == 0 else bytes([i % 256]) * (i % 50),
                headers=(("h", b"v"), ("empty", b""), ("null", None)) if i % 2 else (),
            )
        )
    return out


def _write(path: Path, messages: list[RecordedMessage]) -> dict:
    source = {"topics": {"a": {"partitions": 4}, "b": {"partitions": 4}}}
    with RecordingWriter(path, source, "test") as writer:
        for m in messages:
            writer.write(m)
        return writer.close()


def test_file_round_trip_is_exact_across_blocks(tmp_path: Path) -> None:
    messages = _messages(2500)  # three blocks
    trailer = _write(tmp_path / "r.mprec", messages)
    assert trailer["records"] == 2500 and trailer["blocks"] == 3
    with RecordingReader(tmp_path / "r.mprec") as reader:
        assert list(reader) == messages
        assert reader.header["version"] == 1 and reader.header["tool"] == "test"
        assert reader.trailer["partitions"]["a:1"]["count"] > 0


def _read_all(path: Path) -> tuple[list[RecordedMessage], RecordingError | None]:
    got: list[RecordedMessage] = []
    try:
        with RecordingReader(path) as reader:
            got.extend(reader)
    except RecordingError as exc:
        return got, exc
    return got, None


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, 0.999])
def test_truncated_file_yields_the_intact_blocks_then_says_so(tmp_path: Path, keep: float) -> None:
    messages = _messages(2500)
    path = tmp_path / "r.mprec"
    _write(path, messages)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    got, error = _read_all(path)
    assert isinstance(error, RecordingTruncatedError), error
    assert "truncated" in str(error) and f"the {len(got)} records before it are intact" in str(
        error
    )
    assert got == messages[: len(got)]
    assert len(got) % 1000 == 0 or len(got) == len(messages)  # whole blocks only


def test_corrupt_block_stops_with_a_clear_error_after_the_good_ones(tmp_path: Path) -> None:
    messages = _messages(2500)
    path = tmp_path / "r.mprec"
    _write(path, messages)
    data = bytearray(path.read_bytes())
    data[int(len(data) * 0.6)] ^= 0xFF  # inside the second block's payload
    path.write_bytes(bytes(data))
    got, error = _read_all(path)
    assert isinstance(error, RecordingCorruptError)
    assert "CRC mismatch" in str(error) and "block 1" in str(error)
    assert got == messages[:1000]


def test_not_a_recording_and_future_versions_are_named(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"hello world, not a recording")
    with pytest.raises(RecordingCorruptError, match="not a moodpipe recording"):
        RecordingReader(tmp_path / "x")
    path = tmp_path / "r.mprec"
    _write(path, _messages(3))
    data = bytearray(path.read_bytes())
    data[13] = 9  # version field
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match="format version 9"):
        RecordingReader(path)


def test_argument_parsing() -> None:
    assert parse_time_ms("1700000000000") == 1_700_000_000_000
    assert parse_time_ms("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert parse_offsets("0:5-10,t2:1:0-3", ["t1", "t2"]) == {
        ("t1", 0): (5, 10),
        ("t2", 0): (5, 10),
        ("t2", 1): (0, 3),
    }
    with pytest.raises(ValueError, match="empty"):
        parse_offsets("0:5-5", ["t"])
    with pytest.raises(ValueError, match="not recorded"):
        parse_offsets("zz:0:1-2", ["t"])


# --- on the real broker -------------------------------------------------------


async def _create(bootstrap: str, *topics: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    finally:
        await admin.close()


async def _consume_all(bootstrap: str, topic: str, partitions: int) -> dict[int, list]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: dict[int, list] = {p: [] for p in range(partitions)}

        async def behind() -> bool:
            return any([await consumer.position(tp) < end[tp] for tp in tps])

        while await behind():
            for tp, messages in (await consumer.getmany(timeout_ms=2000)).items():
                for m in messages:
                    out[tp.partition].append((m.key, m.value, tuple(m.headers), m.timestamp))
        return out
    finally:
        await consumer.stop()


async def _produce_fixture(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(300):
            await producer.send_and_wait(
                topic,
                key=None if i % 10 == 0 else f"key-{i % 17}".encode(),
                value=b"\xff\x00binary" + bytes([i % 256]) if i % 5 == 0 else f"v{i}".encode(),
                partition=i % 3 if i % 10 == 0 else None,
                timestamp_ms=1_700_000_000_000 + i * 1000,
                headers=[("trace", f"t{i}".encode()), ("empty", b"")] if i % 2 else None,
            )
    finally:
        await producer.stop()


@pytest.mark.services
def test_record_then_replay_is_byte_identical_per_partition(runtime, tmp_path: Path) -> None:
    bootstrap = runtime.settings.kafka_bootstrap
    tag = uuid.uuid4().hex[:8]
    source, target = f"rec-src-{tag}", f"rec-dst-{tag}"
    asyncio.run(_create(bootstrap, source, target))
    asyncio.run(_produce_fixture(bootstrap, source))
    path = tmp_path / "topic.mprec"
    trailer = asyncio.run(record_topics(bootstrap, [source], path))
    assert trailer["records"] == 300
    summary = asyncio.run(replay_recording(path, bootstrap, topic_map={source: target}))
    assert summary.replayed == 300 and summary.error is None
    original = asyncio.run(_consume_all(bootstrap, source, 3))
    replayed = asyncio.run(_consume_all(bootstrap, target, 3))
    assert replayed == original  # keys, values, headers, timestamps, partition and order

    # Time filters, and timestamps shifted to now.
    part = tmp_path / "part.mprec"
    asyncio.run(record_topics(bootstrap, [source], part, from_time_ms=1_700_000_100_000,
                              until_time_ms=1_700_000_199_000))  # fmt: skip
    with RecordingReader(part) as reader:
        times = sorted(m.timestamp_ms for m in reader)
    assert times == [1_700_000_000_000 + i * 1000 for i in range(100, 200)]
    shifted = f"rec-now-{tag}"
    asyncio.run(_create(bootstrap, shifted))
    summary = asyncio.run(
        replay_recording(
            part,
            bootstrap,
            topic_map={source: shifted},
            timestamps="now",
            until_ms=1_700_000_149_000,
        )
    )
    assert (summary.replayed, summary.filtered_out) == (50, 50)
    now_ms = asyncio.run(_consume_all(bootstrap, shifted, 3))
    stamps = sorted(ts for msgs in now_ms.values() for *_, ts in msgs)
    assert stamps[-1] - stamps[0] == 49_000
    import time

    assert abs(stamps[0] - time.time() * 1000) < 120_000


@pytest.mark.services
def test_replaying_a_truncated_recording_sends_the_intact_part_and_reports(
    runtime, tmp_path: Path
) -> None:
    bootstrap = runtime.settings.kafka_bootstrap
    tag = uuid.uuid4().hex[:8]
    target = f"rec-trunc-{tag}"
    asyncio.run(_create(bootstrap, target, partitions=4))
    path = tmp_path / "r.mprec"
    _write(path, _messages(2500))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.7)])
    intact, _ = _read_all(path)
    assert 0 < len(intact) < 2500
    summary = asyncio.run(replay_recording(path, bootstrap, topic_map={"a": target, "b": target}))
    assert isinstance(summary.error, RecordingTruncatedError)
    assert summary.replayed == len(intact)
    got = asyncio.run(_consume_all(bootstrap, target, 4))
    assert sum(len(v) for v in got.values()) == len(intact)
