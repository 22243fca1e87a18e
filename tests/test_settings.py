"""Unit tests: the one settings object, from MOODPIPE_* variables."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from pipeline.settings import Settings


def test_defaults_are_local_and_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for key in list(os.environ):
        if key.startswith("MOODPIPE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.triton_url == "127.0.0.1:8001"
    assert s.resolved_clickhouse_url == f"chdb://{tmp_path / '.moodpipe' / 'clickhouse'}"
    assert s.bind_host == "127.0.0.1"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODPIPE_KAFKA_URL", "kafka://k1:9000;k2:9001")
    monkeypatch.setenv("MOODPIPE_BATCH_SIZE", "128")
    monkeypatch.setenv("MOODPIPE_BATCH_TIMEOUT", "0.5")
    monkeypatch.setenv("MOODPIPE_CLICKHOUSE_URL", "https://ch.example:8443")
    monkeypatch.setenv("MOODPIPE_POSTS_TOPIC", "brand-posts")
    s = Settings()
    assert s.kafka_bootstrap == "k1:9000,k2:9001"
    assert s.kafka_port == 9000
    assert (s.batch_size, s.batch_timeout) == (128, 0.5)
    assert s.resolved_clickhouse_url == "https://ch.example:8443"
    assert s.input_topics == ("brand-posts", "support-tickets")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MOODPIPE_KAFKA_URL", "127.0.0.1:9092"),
        ("MOODPIPE_CLICKHOUSE_URL", "postgres://x"),
        ("MOODPIPE_BATCH_SIZE", "0"),
        ("MOODPIPE_BATCH_TIMEOUT", "-1"),
        ("MOODPIPE_RETRY_MAX_BACKOFF", "0.01"),
    ],
)
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        Settings()


def test_password_never_shows_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODPIPE_CLICKHOUSE_PASSWORD", "hunter2")
    s = Settings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())
    assert s.clickhouse_password.get_secret_value() == "hunter2"
