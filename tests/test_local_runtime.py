"""The local runtime reports what failed and why, and stops only its own processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from pipeline.local.runtime import LocalRuntime, LocalRuntimeError, _require_java
from pipeline.settings import Settings
from pipeline.sink.clickhouse import connect, endpoint_file, local_endpoint
from tests.helpers import free_port


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path, clickhouse_url="", **kw)


def test_port_taken_is_reported_with_the_variable_to_change(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        rt = LocalRuntime(_settings(tmp_path, clickhouse_local_port=port))
        with pytest.raises(LocalRuntimeError) as err:
            rt.start("clickhouse")
    assert f"127.0.0.1:{port} is taken" in str(err.value)
    assert "MOODPIPE_CLICKHOUSE_LOCAL_PORT" in str(err.value)


def test_missing_java_is_reported_with_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalRuntimeError, match="Java 17"):
        _require_java()


def test_old_java_is_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\"' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalRuntimeError, match="needs Java 17 or newer"):
        _require_java()


def test_a_service_that_dies_at_start_shows_its_log(tmp_path: Path) -> None:
    (tmp_path / "clickhouse").write_text("a file where the data directory should be")
    rt = LocalRuntime(_settings(tmp_path, clickhouse_local_port=free_port()))
    with pytest.raises(LocalRuntimeError) as err:
        rt.start("clickhouse", timeout=60)
    assert "clickhouse exited during start-up" in str(err.value)
    assert "Traceback" in str(err.value) or "Error" in str(err.value)


def test_clickhouse_up_status_down_and_other_processes_use_its_endpoint(tmp_path: Path) -> None:
    settings = _settings(tmp_path, clickhouse_local_port=free_port())
    rt = LocalRuntime(settings)
    rt.up(["clickhouse"])
    try:
        status = {s.name: s for s in rt.status()}
        assert status["clickhouse"].state == "running" and status["clickhouse"].healthy
        assert status["kafka"].state == "stopped"
        # A second process may not open the chDB directory itself; it goes through HTTP.
        assert local_endpoint(settings.resolved_clickhouse_url) is not None
        client = connect(settings)
        assert client.command("SELECT 40 + 2") == 42
        client.close()
    finally:
        assert rt.down(["clickhouse"]) == ["clickhouse"]
    path = Path(settings.resolved_clickhouse_url.removeprefix("chdb://"))
    assert not endpoint_file(path).exists()
    assert {s.name: s for s in rt.status()}["clickhouse"].state == "stopped"


def test_down_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        rt = LocalRuntime(_settings(tmp_path))
        pid_file = tmp_path / "run" / "kafka.pid"
        pid_file.parent.mkdir(parents=True)
        # A stale PID file whose PID now belongs to an unrelated process.
        pid_file.write_text(json.dumps({"name": "kafka", "pid": other.pid,
                                        "marker": "kafka.Kafka /nowhere"}))  # fmt: skip
        assert rt.down(["kafka"]) == []
        assert other.poll() is None
        os.kill(other.pid, 0)
    finally:
        other.kill()
        other.wait()
