"""Alerting end to end: real broker, real tritonserver, real ClickHouse engine.

The scenario (pipeline/traffic/scenarios.py) has known anger bursts and brand
spikes; it must raise exactly its expected alerts at their event times, across
restarts and crashes, and reach the webhook and Grafana when those are configured.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline.local.runtime import LocalRuntime
from pipeline.local.worker import kill_worker, stop_worker
from pipeline.resources import schemas_dir
from pipeline.traffic import SampleRecord, produce
from pipeline.traffic.scenarios import Scenario, ScenarioRecord, alert_scenario
from tests.helpers import Namespace, free_port, wait_until

pytestmark = pytest.mark.services

SECRET_TOKEN = "glsa_sekrit_token_value_123"  # a test token; it must never be logged


@pytest.fixture
def scenario(runtime: LocalRuntime) -> Scenario:
    """The scenario, with the session's local runtime (broker, Triton, ClickHouse) up."""
    return alert_scenario()


@contextmanager
def alert_namespace(tmp_path: Path, scenario: Scenario, **overrides: str) -> Iterator[Namespace]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(scenario.rules_yaml)
    # The namespace runs one batch in flight per agent, which keeps each brand's
    # events in order on the scored topic: the expected alerts do not depend on grace.
    with Namespace.create(tmp_path, alert_rules=str(rules), **overrides) as ns:
        yield ns


def send(ns: Namespace, records: list[ScenarioRecord]) -> None:
    s = ns.settings
    for role, topic in (("posts", s.posts_topic), ("tickets", s.tickets_topic)):
        batch = [r.record for r in records if r.role == role]
        if batch:
            asyncio.run(produce(s.kafka_bootstrap, topic, batch))


def observed(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    def when(value: Any) -> str:
        if isinstance(value, str):
            return value.replace("Z", "+00:00").replace(".000", "")
        return value.astimezone(UTC).isoformat()

    return sorted((a["kind"], a["subject"], a["severity"], when(a["event_time"])) for a in alerts)


def expected(scenario: Scenario) -> list[tuple[str, str, str, str]]:
    return sorted(
        (e.kind, e.subject, e.severity, e.event_time.isoformat()) for e in scenario.expected
    )


def wait_all_processed(ns: Namespace, timeout: float = 240) -> None:
    ns.wait_caught_up(timeout)


def test_scenario_raises_exactly_the_expected_alerts(tmp_path: Path, scenario: Scenario) -> None:
    with alert_namespace(tmp_path, scenario) as ns:
        send(ns, scenario.records)
        ns.start_worker()
        wait_all_processed(ns)

        stored = ns.alerts()
        assert observed(stored) == expected(scenario)
        messages = ns.alert_messages()
        assert observed(messages) == expected(scenario)
        assert len({m["alert_id"] for m in messages}) == len(messages), "duplicate alerts"
        assert not [a for a in stored if a["brand"] == "Calm Co"], "a calm brand alerted"

        schema = json.loads((schemas_dir() / "alert.schema.json").read_text())
        for message in messages:
            jsonschema.validate({k: v for k, v in message.items() if k[0] != "_"}, schema)

        spike = next(a for a in stored if a["kind"] == "brand_mood_spike")
        assert spike["evidence"]["volume"] == 10
        assert spike["evidence"]["negative"] == 8
        assert spike["evidence"]["baseline_windows"] >= 5
        assert len(spike["event_ids"]) == 3  # the quoted negative posts
        escalated = next(
            a for a in stored if a["subject"] == "C-100" and a["severity"] == "critical"
        )
        assert escalated["evidence"]["suppressed_since_last_alert"] == 1
        assert escalated["evidence"]["triggers_in_escalation_window"] == 3
        assert escalated["evidence"]["excerpt"]
        repeat = next(a for a in stored if a["subject"] == "C-400")
        assert repeat["evidence"]["reasons"] == ["repeat_contacts"]

        # The scored topic carries every scored event, in the published schema.
        scored = asyncio.run(_read(ns, ns.settings.scored_topic))
        assert len({(m["source"], m["event_id"]) for m in scored}) == len(scenario.records)
        event_schema = json.loads((schemas_dir() / "scored_event.schema.json").read_text())
        for message in scored[:20]:
            jsonschema.validate({k: v for k, v in message.items() if k[0] != "_"}, event_schema)


async def _read(ns: Namespace, topic: str) -> list[dict[str, Any]]:
    from pipeline.connections.topics import read_topic_json

    return await read_topic_json(ns.settings.kafka_bootstrap, topic)


def test_restart_mid_window_recovers_state_from_the_changelog(
    tmp_path: Path, scenario: Scenario
) -> None:
    # Split inside the negative burst's window: its counts must survive the restart.
    first, second = scenario.split(scenario.start.replace(minute=8, second=30))
    with alert_namespace(tmp_path, scenario) as ns:
        send(ns, first)
        worker = ns.start_worker()
        wait_all_processed(ns)
        before = observed(ns.alerts())
        assert ("brand_mood_spike", "Spiky Air", "critical",
                scenario.start.replace(minute=9).isoformat()) not in before  # fmt: skip
        stop_worker(worker)

        ns.start_worker("restarted")
        send(ns, second)
        wait_all_processed(ns)
        assert observed(ns.alerts()) == expected(scenario)
        messages = ns.alert_messages()
        assert observed(messages) == expected(scenario), "an alert was duplicated or lost"


def test_kill_9_mid_scenario_neither_duplicates_nor_loses_alerts(
    tmp_path: Path, scenario: Scenario
) -> None:
    # The worker can score the whole scenario before the test sees its first alerts,
    # so the crash is placed by the data: the later records are produced only after
    # it. What the kill interrupts (offsets not yet committed, changelog writes in
    # flight) is whatever the first part left behind.
    first, second = scenario.split(scenario.start.replace(minute=8, second=30))
    with alert_namespace(tmp_path, scenario) as ns:
        send(ns, first)
        worker = ns.start_worker()
        wait_until(lambda: len(ns.alerts()) >= 2, 240, "the first alerts")
        kill_worker(worker)  # SIGKILL: uncommitted offsets, state writes in flight
        assert len(ns.alerts()) < len(scenario.expected), "crash came too late to test anything"

        ns.start_worker("restarted")
        send(ns, second)
        wait_all_processed(ns)
        assert observed(ns.alerts()) == expected(scenario)
        # The topic may hold an alert twice (raised, then crashed before its state was
        # written); it is the same alert_id, which ClickHouse and notifiers collapse.
        messages = ns.alert_messages()
        unique = {m["alert_id"]: m for m in messages}
        assert observed(list(unique.values())) == expected(scenario)


class Receiver:
    """A real HTTP endpoint recording what it is sent; fails the first `fail_first` posts."""

    def __init__(self, fail_first: int = 0, status: int = 200) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.fail_first = fail_first
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((self.path, dict(self.headers), json.loads(body)))
                failing = len(receiver.requests) <= receiver.fail_first
                code = 503 if failing else receiver.status
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"id": 1, "message": "Annotation added"}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_alerts_reach_webhook_and_grafana_with_retries(tmp_path: Path, scenario: Scenario) -> None:
    webhook = Receiver(fail_first=3)  # a flaky receiver: 503 three times
    grafana = Receiver()  # stands in for Grafana's POST /api/annotations
    tickets = [r for r in scenario.records if r.role == "tickets"]
    ticket_alerts = [e for e in scenario.expected if e.kind == "angry_customer"]
    try:
        with alert_namespace(
            tmp_path, scenario,
            alert_webhook_url=f"{webhook.url}/hooks/T000/B000/{SECRET_TOKEN}",
            grafana_url=grafana.url, grafana_token=SECRET_TOKEN,
            notify_initial_backoff="0.2", notify_max_backoff="1",
        ) as ns:  # fmt: skip
            send(ns, tickets)
            ns.start_worker()
            wait_all_processed(ns)
            stored = ns.alerts()
            assert len(stored) == len(ticket_alerts)

            delivered = [body["alert"]["alert_id"] for _, _, body in webhook.requests[3:]]
            assert sorted(delivered) == sorted(a["alert_id"] for a in stored)  # once each
            first = webhook.requests[-1][2]
            assert first["text"].startswith("[")
            assert first["attachments"][0]["color"]
            assert len(grafana.requests) == len(stored)
            path, headers, body = grafana.requests[0]
            assert path == "/api/annotations"
            assert headers.get("Authorization") == f"Bearer {SECRET_TOKEN}"
            assert "moodpipe" in body["tags"] and "angry_customer" in body["tags"]

            rows = ns.query_dicts("SELECT * FROM alert_deliveries")
            assert {(r["channel"], r["status"]) for r in rows} == {
                ("webhook", "sent"),
                ("grafana", "sent"),
            }
            assert sum(r["attempts"] for r in rows if r["channel"] == "webhook") == len(stored) + 3
            logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
            assert SECRET_TOKEN not in logs, "a secret reached the worker log"
    finally:
        webhook.close()
        grafana.close()


def test_dead_webhook_blocks_nothing_and_loses_no_alert(tmp_path: Path, scenario: Scenario) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with alert_namespace(
        tmp_path, scenario, alert_webhook_url=dead,
        notify_max_attempts="3", notify_initial_backoff="0.1", notify_max_backoff="0.2",
    ) as ns:  # fmt: skip
        send(ns, scenario.records)
        ns.start_worker()
        wait_all_processed(ns)
        assert ns.landed() == len(scenario.records)
        assert observed(ns.alerts()) == expected(scenario)
        assert observed(ns.alert_messages()) == expected(scenario)
        rows = ns.query_dicts("SELECT * FROM alert_deliveries")
        assert len(rows) == len(scenario.expected)
        assert {r["status"] for r in rows} == {"failed"}
        assert all(r["error"] for r in rows)
        # After the first alert used every attempt, the channel is degraded: one try each.
        assert sorted(r["attempts"] for r in rows)[-1] == 3
        assert sorted(r["attempts"] for r in rows)[0] == 1


def test_foreign_messages_on_the_scored_and_alerts_topics_are_dead_lettered(
    tmp_path: Path, scenario: Scenario
) -> None:
    with alert_namespace(tmp_path, scenario) as ns:
        s = ns.settings
        junk = [SampleRecord(b"x", b'{"not": "a scored event"}', "dead"),
                SampleRecord(b"y", b"\xff\xfe not json", "dead")]  # fmt: skip
        asyncio.run(produce(s.kafka_bootstrap, s.scored_topic, junk))
        asyncio.run(produce(s.kafka_bootstrap, s.alerts_topic, junk[:1]))
        tickets = [r for r in scenario.records if r.role == "tickets"]
        send(ns, tickets)
        ns.start_worker()
        wait_all_processed(ns)
        letters = ns.dead_letters()
        by_code = sorted((d["error"], d["source_topic"]) for d in letters)
        assert by_code == [
            ("not_a_scored_event", s.scored_topic),
            ("not_a_scored_event", s.scored_topic),
            ("not_an_alert", s.alerts_topic),
        ]
        assert all(d["reason"] for d in letters)
        copies = ns.query("SELECT error, source_topic FROM dead_letters FINAL ORDER BY 1, 2")
        assert sorted(copies) == by_code
        assert ns.landed() == len(tickets)  # the worker kept going
        assert len(ns.alerts()) == len([e for e in scenario.expected
                                        if e.kind == "angry_customer"])  # fmt: skip
