"""The worker app's shape: built from settings by `create_app`, nothing at import, every
Faust patch installed by one `install` and pinned to the upstream source it was
reviewed against. No services: the app is built, never started."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from pipeline.settings import Settings
from pipeline.worker.app import create_app
from pipeline.worker.faust_patches import install, upstream


def test_importing_the_worker_changes_nothing_and_connects_nowhere() -> None:
    # In a fresh interpreter: this process may have built an app already.
    script = """
import faust.transport.consumer as c
before = c.Consumer._drain_messages, c.Consumer._new_offset
import pipeline.worker.app, pipeline.worker.run, pipeline.cli
assert (c.Consumer._drain_messages, c.Consumer._new_offset) == before, "patched at import"
import faust
assert not [o for o in __import__("gc").get_objects() if isinstance(o, faust.App)], "app at import"
print("clean")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={"MOODPIPE_KAFKA_URL": "kafka://127.0.0.1:1",
                                            "PATH": ""})  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "clean", done.stderr


def test_every_patched_upstream_function_is_the_reviewed_source() -> None:
    changed = [f"{p.name} (patch {p.patch})" for p in upstream.changed()]
    assert changed == [], f"review these patches against the new upstream source: {changed}"
    modules = {p.patch for p in upstream.PINS}
    assert modules == {"flow_control", "stall_guard", "batches", "commit_guard", "delivery",
                       "fetch_wait", "producer_buffer"}  # fmt: skip


def test_a_changed_upstream_source_is_reported_when_the_patches_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pin = upstream.PINS[0]
    stale = upstream.Pin(pin.name, pin.patch, "0" * 64, pin.original)
    assert not stale.matches()
    monkeypatch.setattr(upstream, "PINS", (stale, *upstream.PINS[1:]))
    with caplog.at_level(logging.ERROR, logger="moodpipe.faust_fixes"):
        install(create_app(Settings(alerts_enabled=False)), Settings())
    assert any(pin.name in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_create_app_registers_scoring_and_alert_agents_the_same_way() -> None:
    with_alerts = create_app(Settings())
    assert {"score_posts", "score_tickets", "detect_alerts", "store_alerts"} <= set(
        with_alerts.agents
    )
    without = create_app(Settings(alerts_enabled=False))
    assert set(without.agents) == {"score_posts", "score_tickets"}
    # Settings shape the app: topics and the group come from them, nothing is global.
    custom = create_app(Settings(posts_topic="posts-x", tickets_topic="tickets-x", app_id="g-x"))
    topics = {t for agent in custom.agents.values() for t in agent.channel.topics}
    assert {"posts-x", "tickets-x"} <= topics and custom.conf.id == "g-x"


def test_installing_twice_does_not_stack_the_fetch_wrapper() -> None:
    create_app(Settings(fetch_max_wait=0.2))
    create_app(Settings(fetch_max_wait=0.3))
    wrapper = AIOKafkaConsumerThread._create_worker_consumer
    original = upstream.pin(
        "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer"
    ).original
    # The wrapper calls upstream's method directly, not the previous wrapper.
    assert original in [c.cell_contents for c in wrapper.__closure__ or ()]
    assert Consumer._new_offset.__qualname__.startswith("guarded_new_offset")
