"""Crashes and outages: nothing lost, nothing duplicated in query results."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.local.runtime import LocalRuntime
from pipeline.local.worker import kill_worker, stop_worker
from pipeline.traffic import produce, sample_posts
from tests.conftest import spawn_worker
from tests.helpers import Namespace, wait_until

pytestmark = pytest.mark.services


def _committed(ns: Namespace) -> int:
    async def read() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=ns.settings.kafka_bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(ns.settings.app_id)
        finally:
            await admin.close()
        return sum(
            meta.offset for tp, meta in offsets.items()
            if tp.topic == ns.settings.posts_topic and meta.offset > 0
        )  # fmt: skip

    return asyncio.run(read())


def _assert_exactly_once(ns: Namespace, expected_ids: set[str]) -> None:
    rows = ns.query("SELECT event_id FROM scored_events_dedup")
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate events in query results"
    assert set(ids) == expected_ids, f"missing: {len(expected_ids - set(ids))}"


def test_kill_9_mid_stream_loses_and_duplicates_nothing(namespace: Namespace) -> None:
    s = namespace.settings
    posts = sample_posts(500, run_id="crash", seed=21)
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts))
    worker = spawn_worker(namespace)
    wait_until(lambda: namespace.landed() >= 60, 180, "the first events to land")
    kill_worker(worker)  # SIGKILL: no commit, no flush
    landed_at_crash = namespace.landed()
    assert landed_at_crash < len(posts), "crash came too late to test anything"

    restarted = spawn_worker(namespace, "restarted")
    wait_until(lambda: namespace.landed() >= len(posts), 300, "all events after restart")
    assert restarted.poll() is None
    stop_worker(restarted)
    _assert_exactly_once(namespace, {p.event_id for p in posts})
    # Re-delivered events were written again; FINAL must hide the extra rows.
    raw = int(namespace.scalar("SELECT count() FROM scored_events"))
    assert raw >= len(posts)


def test_triton_outage_retries_without_committing_then_catches_up(
    namespace: Namespace, runtime: LocalRuntime
) -> None:
    s = namespace.settings
    posts = sample_posts(400, run_id="outage", seed=31)
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts))
    worker = spawn_worker(namespace)
    wait_until(lambda: namespace.landed() >= 40, 180, "the first events to land")
    runtime.stop("triton")
    try:
        time.sleep(3)  # let in-flight batches finish
        landed_during = namespace.landed()
        time.sleep(8)
        assert namespace.landed() == landed_during, "events landed with Triton down"
        assert worker.poll() is None, "worker crashed while Triton was down"
        # Offsets committed so far cover only events that are in ClickHouse.
        assert _committed(namespace) <= landed_during
    finally:
        runtime.start("triton")
    wait_until(lambda: namespace.landed() >= len(posts), 300, "all events after Triton is back")
    assert worker.poll() is None
    log = (namespace.log_dir / "worker-0.log").read_text()
    assert "Triton inference" in log and "retrying in" in log
    stop_worker(worker)
    _assert_exactly_once(namespace, {p.event_id for p in posts})


def test_two_workers_share_partitions_and_one_takes_over_when_the_other_dies(
    namespace: Namespace,
) -> None:
    s = namespace.settings
    first = spawn_worker(namespace, "a")
    second = spawn_worker(namespace, "b")
    posts = sample_posts(600, run_id="scale", seed=41)

    def assigned(proc_index: int) -> bool:
        log = (namespace.log_dir / f"{'ab'[proc_index]}-{proc_index}.log").read_text()
        return f"| {s.posts_topic}" in log

    # Both workers get a share of the posts topic's partitions.
    wait_until(lambda: assigned(0) and assigned(1), 120, "both workers to get partitions")
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts))
    wait_until(lambda: namespace.landed() >= 100, 180, "the first events to land")
    kill_worker(second)
    wait_until(lambda: namespace.landed() >= len(posts), 300, "the survivor to finish")
    assert first.poll() is None
    stop_worker(first)
    _assert_exactly_once(namespace, {p.event_id for p in posts})
    partitions = {
        r[0] for r in namespace.query("SELECT DISTINCT source_partition FROM scored_events")
    }
    assert partitions == set(range(s.topic_partitions))
