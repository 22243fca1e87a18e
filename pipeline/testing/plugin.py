"""pytest plugin: `moodpipe_runtime` (session) and `moodpipe_namespace` fixtures.

Add `pytest_plugins = ["pipeline.testing.plugin"]` to a conftest.py. The runtime
(real Kafka broker, tritonserver and ClickHouse engine) starts once per session on
free ports in a temporary folder, or in MOODPIPE_TEST_DATA_DIR if set.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.local.runtime import LocalRuntime
from pipeline.settings import Settings
from pipeline.testing.harness import PipelineNamespace

# The session runtime's SASL user (a test credential on a loopback-only broker).
TEST_KAFKA_USER = "moodpipe-test"
TEST_KAFKA_PASSWORD = "kafka-test-pw-5f2c9e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moodpipe_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    data_dir = os.environ.get("MOODPIPE_TEST_DATA_DIR") or str(tmp_path_factory.mktemp("moodpipe"))
    env = {
        "MOODPIPE_DATA_DIR": data_dir,
        "MOODPIPE_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}",
        "MOODPIPE_KAFKA_CONTROLLER_PORT": str(free_port()),
        "MOODPIPE_TRITON_URL": f"127.0.0.1:{free_port()}",
        "MOODPIPE_TRITON_HTTP_PORT": str(free_port()),
        "MOODPIPE_TRITON_METRICS_PORT": str(free_port()),
        "MOODPIPE_CLICKHOUSE_LOCAL_PORT": str(free_port()),
        "MOODPIPE_CLICKHOUSE_URL": "",
        # A SCRAM listener next to the PLAINTEXT one, for tests of authenticated Kafka.
        "MOODPIPE_LOCAL_KAFKA_SASL_PORT": str(free_port()),
        "MOODPIPE_LOCAL_KAFKA_SASL_USERS": f"{TEST_KAFKA_USER}:{TEST_KAFKA_PASSWORD}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    runtime = LocalRuntime(Settings())
    try:
        runtime.up(timeout=180)
        yield runtime
    finally:
        runtime.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def moodpipe_namespace(
    moodpipe_runtime: LocalRuntime, tmp_path: Path
) -> Iterator[PipelineNamespace]:
    with PipelineNamespace.create(tmp_path) as ns:
        yield ns
