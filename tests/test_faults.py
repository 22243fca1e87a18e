"""Faults at scale on the real services: crashes, kills, outages and poison from Triton.

Each test ends with the same proof: every event is in `scored_events` exactly once
(FINAL) or on the dead-letter topic, and the group's committed offsets are at the end
of every partition. Figures (produced / stored / duplicated / dead-lettered, time to
recover) are printed; `pytest -s tests/test_faults.py` shows them.
"""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from pipeline.local.runtime import LocalRuntime
from pipeline.local.worker import kill_worker, stop_worker
from pipeline.traffic import produce, sample_posts
from pipeline.traffic.generate import SampleRecord
from tests.conftest import spawn_worker
from tests.helpers import Namespace, wait_until

pytestmark = pytest.mark.services


def _assert_all_once(ns: Namespace, expected: set[str]) -> dict[str, int]:
    rows = ns.query("SELECT event_id FROM scored_events_dedup")
    ids = [r[0] for r in rows]
    raw = int(ns.scalar("SELECT count() FROM scored_events"))
    figures = {
        "produced": len(expected),
        "stored": len(set(ids)),
        "duplicated_in_final": len(ids) - len(set(ids)),
        "rows_before_merges": raw,
    }
    print(figures)
    assert figures["duplicated_in_final"] == 0, "duplicate events in FINAL results"
    assert set(ids) == expected, f"missing {len(expected - set(ids))}"
    return figures


def test_an_agent_that_crashes_after_storing_loses_nothing_and_commits_nothing_past_it(
    namespace: Namespace,
) -> None:
    """Before the fix an exception leaving the agent let Faust ack unseen records."""
    s = namespace.settings
    posts = sample_posts(600, run_id="crash", seed=51)
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts))
    namespace.env["MOODPIPE_AGENT_CONCURRENCY"] = "2"
    worker = namespace.start_worker(crash_after_storing=4)
    wait_until(lambda: namespace.landed() >= len(posts), 240, "every post stored")
    namespace.wait_caught_up(120)
    assert worker.poll() is None, "the worker must survive its agents' failures"
    log = (namespace.log_dir / "worker-0.log").read_text()
    assert log.count("nothing of it is acked, re-reading it") == 4
    stop_worker(worker)
    _assert_all_once(namespace, {p.event_id for p in posts})
    assert namespace.dead_letters() == []


def test_five_kill_9_during_20000_events_lose_and_duplicate_nothing(namespace: Namespace) -> None:
    s = namespace.settings
    posts = sample_posts(20_000, run_id="kills", seed=61)
    namespace.env["MOODPIPE_AGENT_CONCURRENCY"] = "2"  # batches finish out of order (#606)
    namespace.env["MOODPIPE_ALERTS_ENABLED"] = "false"  # scoring only: CI minutes
    namespace.env["MOODPIPE_BATCH_SIZE"] = "64"
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts))
    started = time.monotonic()
    worker = spawn_worker(namespace, "w")
    recoveries = []
    for kill_at in (2_000, 5_000, 8_000, 11_000, 14_000):
        wait_until(lambda n=kill_at: namespace.landed() >= n, 400, f"{kill_at} events stored")
        kill_worker(worker)
        at_kill = namespace.landed()
        restarted = time.monotonic()
        worker = spawn_worker(namespace, "w")
        wait_until(lambda n=at_kill: namespace.landed() > n + 64, 180, "progress after restart")
        recoveries.append(round(time.monotonic() - restarted, 1))
    wait_until(lambda: namespace.landed() >= len(posts), 600, "all 20,000 events")
    namespace.wait_caught_up(180)
    assert worker.poll() is None
    stop_worker(worker)
    figures = _assert_all_once(namespace, {p.event_id for p in posts})
    print({"kills": 5, "seconds_to_progress_after_each_restart": recoveries,
           "total_seconds": round(time.monotonic() - started)})  # fmt: skip
    assert figures["rows_before_merges"] >= len(posts)
    assert namespace.dead_letters() == []


def test_clickhouse_down_45_s_is_waited_out_and_the_worker_never_becomes_the_database(
    namespace: Namespace, runtime: LocalRuntime
) -> None:
    s = namespace.settings
    posts = sample_posts(1_500, run_id="chdown", seed=71)
    namespace.env["MOODPIPE_ALERTS_ENABLED"] = "false"
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts[:500]))
    worker = spawn_worker(namespace)
    wait_until(lambda: namespace.landed() >= 200, 180, "the first events to land")
    runtime.stop("clickhouse")
    stopped = time.monotonic()
    try:
        # No queries from here during the outage: a test client would fall back to
        # the embedded engine. The rest of the stream arrives meanwhile.
        asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts[500:]))
        time.sleep(max(0.0, 45 - (time.monotonic() - stopped)))
        assert worker.poll() is None, "worker died while ClickHouse was down"
    finally:
        runtime.start("clickhouse")  # fails if anyone else had opened the data directory
    back = time.monotonic()
    wait_until(lambda: namespace.landed() >= len(posts), 300, "every event after the outage")
    recovered = time.monotonic() - back
    namespace.wait_caught_up(120)
    assert worker.poll() is None
    stop_worker(worker)
    log = (namespace.log_dir / "worker-0.log").read_text()
    assert "local ClickHouse front" in log and "outage" in log
    _assert_all_once(namespace, {p.event_id for p in posts})
    print({"clickhouse_down_s": 45, "seconds_to_all_stored_after_restart": round(recovered, 1)})
    assert namespace.dead_letters() == [], "an outage must never dead-letter records"


def test_kafka_broker_restart_mid_stream_recovers_without_flooding_the_log(
    namespace: Namespace, runtime: LocalRuntime
) -> None:
    s = namespace.settings
    posts = sample_posts(1_200, run_id="kafkadown", seed=81)
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts[:600]))
    worker = spawn_worker(namespace)
    wait_until(lambda: namespace.landed() >= 200, 180, "the first events to land")
    log_path = namespace.log_dir / "worker-0.log"
    lines_before = len(log_path.read_text(errors="replace").splitlines())
    runtime.stop("kafka")
    down = 30.0
    time.sleep(down)
    lines_during = len(log_path.read_text(errors="replace").splitlines()) - lines_before
    runtime.start("kafka")
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts[600:]))
    back = time.monotonic()
    wait_until(lambda: namespace.landed() >= len(posts), 300, "every event after the restart")
    recovered = time.monotonic() - back
    namespace.wait_caught_up(180)
    assert worker.poll() is None
    stop_worker(worker)
    _assert_all_once(namespace, {p.event_id for p in posts})
    rate = lines_during / down
    print({"kafka_down_s": down, "worker_log_lines_per_s_while_down": round(rate, 2),
           "seconds_to_all_stored_after_restart": round(recovered, 1)})  # fmt: skip
    assert rate < 3, f"{lines_during} log lines in {down:.0f}s of broker outage"


def test_triton_failing_for_one_input_forever_dead_letters_it_and_scores_the_rest(
    namespace: Namespace,
) -> None:
    s = namespace.settings
    posts = sample_posts(300, run_id="tpoison", seed=91)
    poisoned = {7, 100, 101, 250}
    records = []
    for i, post in enumerate(posts):
        if i in poisoned:
            value = post.value.replace(b'"text": "', b'"text": "TRITON-REJECTS-THIS ', 1)
            post = SampleRecord(post.key, value, "poison_inference", post.event_id)
        records.append(post)
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, records))
    namespace.env["MOODPIPE_MODEL_NAME"] = "emotion_faulty"
    worker = spawn_worker(namespace)
    good = {p.event_id for i, p in enumerate(posts) if i not in poisoned}
    wait_until(lambda: namespace.landed() >= len(good), 240, "every other post scored")
    wait_until(lambda: len(namespace.dead_letters()) >= len(poisoned), 120, "the poison letters")
    namespace.wait_caught_up(120)
    assert worker.poll() is None
    stop_worker(worker)
    _assert_all_once(namespace, good)
    letters = namespace.dead_letters()
    assert sorted(d["error"] for d in letters) == ["poison_inference"] * len(poisoned)
    assert all("this input is rejected" in d["reason"] for d in letters)
    assert {d["value_b64"] for d in letters} == {
        base64.b64encode(records[i].value).decode() for i in poisoned
    }
