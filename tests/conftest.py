"""Fixtures: one local runtime (real Kafka, tritonserver, ClickHouse engine) per session.

Each test gets its own topics, consumer group and ClickHouse database on it, so tests
do not see each other's data. The runtime's ports are picked free at start-up.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.local.runtime import LocalRuntime
from pipeline.local.worker import kill_worker, start_worker
from pipeline.settings import Settings
from pipeline.sink.clickhouse import ClickHouseSink
from pipeline.topics import ensure_topics
from tests.helpers import Namespace, free_port


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    data_dir = Path(os.environ.get("MOODPIPE_TEST_DATA_DIR") or tmp_path_factory.mktemp("moodpipe"))
    env = {
        "MOODPIPE_DATA_DIR": str(data_dir),
        "MOODPIPE_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}",
        "MOODPIPE_KAFKA_CONTROLLER_PORT": str(free_port()),
        "MOODPIPE_TRITON_URL": f"127.0.0.1:{free_port()}",
        "MOODPIPE_TRITON_HTTP_PORT": str(free_port()),
        "MOODPIPE_TRITON_METRICS_PORT": str(free_port()),
        "MOODPIPE_CLICKHOUSE_LOCAL_PORT": str(free_port()),
        "MOODPIPE_CLICKHOUSE_URL": "",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    rt = LocalRuntime(Settings())
    try:
        rt.up(timeout=180)
        yield rt
    finally:
        rt.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def namespace(runtime: LocalRuntime, tmp_path: Path) -> Iterator[Namespace]:
    tag = uuid.uuid4().hex[:8]
    env = {
        "MOODPIPE_APP_ID": f"moodpipe-test-{tag}",
        "MOODPIPE_POSTS_TOPIC": f"posts-{tag}",
        "MOODPIPE_TICKETS_TOPIC": f"tickets-{tag}",
        "MOODPIPE_DEAD_LETTER_TOPIC": f"dead-letters-{tag}",
        "MOODPIPE_CLICKHOUSE_DATABASE": f"moodpipe_test_{tag}",
        "MOODPIPE_BATCH_SIZE": "32",
        "MOODPIPE_RETRY_MAX_BACKOFF": "2",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = Settings()
    asyncio.run(ensure_topics(settings))
    ClickHouseSink(settings).migrate()
    ns = Namespace(settings=settings, env=dict(os.environ), log_dir=tmp_path)
    try:
        yield ns
    finally:
        for proc in ns.workers:
            if proc.poll() is None:
                kill_worker(proc)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def spawn_worker(ns: Namespace, name: str = "worker"):
    proc = start_worker(ns.log_dir / f"{name}-{len(ns.workers)}.log", ns.env)
    ns.workers.append(proc)
    return proc
