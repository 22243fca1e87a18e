"""Support threads end to end: real broker, real tritonserver, real ClickHouse engine.

The thread scenario (pipeline/traffic/scenarios.py `thread_scenario`) must raise
exactly its alerts, each text alert explained and advised, across a restart and a
kill -9; agent turns never raise angry_customer; the `threads` view and the saved
queries read the stored turns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline.local.runtime import LocalRuntime
from pipeline.local.worker import kill_worker, stop_worker
from pipeline.resources import schemas_dir
from pipeline.traffic.scenarios import Scenario, thread_scenario
from tests.helpers import wait_until
from tests.test_alerts_e2e import alert_namespace, expected, observed, send

pytestmark = pytest.mark.services


@pytest.fixture
def scenario(runtime: LocalRuntime) -> Scenario:
    return thread_scenario()


def _by(alerts: list[dict[str, Any]], kind: str, subject: str, severity: str = "") -> dict:
    return next(a for a in alerts if a["kind"] == kind and a["subject"] == subject
                and (not severity or a["severity"] == severity))  # fmt: skip


def test_thread_scenario_raises_its_alerts_explained_and_advised(
    tmp_path: Path, scenario: Scenario
) -> None:
    with alert_namespace(tmp_path, scenario) as ns:
        send(ns, scenario.records)
        ns.start_worker()
        ns.wait_caught_up(240)
        stored = ns.alerts()
        assert observed(stored) == expected(scenario)
        messages = ns.alert_messages()
        assert observed(messages) == expected(scenario)
        schema = json.loads((schemas_dir() / "alert.schema.json").read_text())
        for message in messages:
            jsonschema.validate({k: v for k, v in message.items() if k[0] != "_"}, schema)

        # Agent turns are scored and stored but never an angry customer: the coaster's
        # agent reply reads furious ("I am so angry this happened to you ...").
        agent = ns.query_dicts(
            "SELECT anger + annoyance + disgust AS anger, author_role "
            "FROM scored_events_dedup WHERE event_id = 'TH-COASTER-6'"
        )
        assert agent[0]["author_role"] == "agent" and agent[0]["anger"] >= 0.5
        angry_tickets = {
            a["evidence"]["ticket_id"] for a in stored if a["kind"] == "angry_customer"
        }
        assert "TH-COASTER-6" not in angry_tickets

        # Every alert about a text carries its words, computed by the model that scored it.
        for alert in stored:
            if alert["kind"] in ("angry_customer", "thread_worsening"):
                texts = alert["explanation"]["texts"]
                assert len(texts) == 1 and texts[0]["top"], alert["alert_id"]
                assert texts[0]["model"] == "emotion" and texts[0]["lang"] == "en"
                assert texts[0]["top"][0]["delta"] > 0
                assert alert["reply"]["draft"] and alert["reply"]["tone"]
            else:
                assert alert["explanation"] is None
        coaster = _by(stored, "angry_customer", "C-30")
        words = [w["word"] for w in coaster["explanation"]["texts"][0]["top"]]
        assert {"furious", "disgusting", "hate", "awful", "Disgusting"} & set(words[:3]), words
        assert coaster["reply"]["entry"].startswith("anger-")
        assert "TH-COASTER-5" in coaster["reply"]["draft"]
        critical = _by(stored, "thread_worsening", "TH-COASTER", "critical")
        assert critical["evidence"]["reasons"][0] == "still_falling"
        assert critical["evidence"]["last_reply"]["event_id"] == "TH-COASTER-4"
        late = _by(stored, "thread_worsening", "TH-LATE")
        assert late["evidence"]["moods"][0] > late["evidence"]["moods"][-1]
        assert _by(stored, "thread_recovered", "TH-COASTER")["reply"] is None

        # One-message thread (no thread_id): stored as a thread of its own id.
        one = ns.query_dicts("SELECT thread_id, author_role FROM scored_events_dedup "
                             "WHERE event_id = 'T-ONE'")  # fmt: skip
        assert one == [{"thread_id": "T-ONE", "author_role": "customer"}]

        threads = {r["thread_id"]: r for r in ns.query_dicts("SELECT * FROM threads")}
        assert set(threads) == {"TH-BILLING", "TH-REFUND", "TH-COASTER", "TH-BAGGAGE",
                                "TH-POLITE", "TH-LATE", "T-ONE"}  # fmt: skip
        coaster_row = threads["TH-COASTER"]
        assert (coaster_row["turns"], coaster_row["customer_turns"]) == (7, 4)
        assert coaster_row["worsened"] == 1 and coaster_row["recovered"] == 1
        assert coaster_row["worst_mood"] < -0.5 < 0.5 < coaster_row["current_mood"]
        assert coaster_row["duration_s"] == 12 * 60
        assert threads["TH-POLITE"]["worsened"] == 0
        assert threads["TH-BILLING"]["seconds_to_first_angry"] == 4 * 60

        from pipeline.analytics.queries import prepare_query

        sql, bound = prepare_query("threads_getting_worse", {"hours": "100000"})
        worse = {row[1] for row in ns.query(sql, **bound)}
        assert worse == {"TH-BILLING", "TH-REFUND", "TH-LATE"}  # the coaster recovered
        sql, bound = prepare_query("reply_effect", {"hours": "100000"})
        effect = {row[0]: row for row in ns.query(sql, **bound)}
        assert effect["baggage"][1] == 2 and effect["baggage"][2] == 2  # both replies calmed


def test_thread_state_survives_a_restart(tmp_path: Path, scenario: Scenario) -> None:
    # Split after the coaster's warning (minute 6) and before its critical turn.
    first, second = scenario.split(scenario.start.replace(minute=7))
    with alert_namespace(tmp_path, scenario) as ns:
        send(ns, first)
        worker = ns.start_worker()
        ns.wait_caught_up(240)
        assert ("thread_worsening", "TH-COASTER", "warning") in {
            (a["kind"], a["subject"], a["severity"]) for a in ns.alerts()}  # fmt: skip
        stop_worker(worker)
        ns.start_worker("restarted")
        send(ns, second)
        ns.wait_caught_up(240)
        assert observed(ns.alerts()) == expected(scenario)
        assert observed(ns.alert_messages()) == expected(scenario), "duplicated or lost"


def test_kill_9_loses_and_duplicates_no_thread_alert(tmp_path: Path, scenario: Scenario) -> None:
    first, second = scenario.split(scenario.start.replace(minute=7))
    with alert_namespace(tmp_path, scenario) as ns:
        send(ns, first)
        worker = ns.start_worker()
        wait_until(lambda: len(ns.alerts()) >= 3, 240, "the first alerts")
        kill_worker(worker)
        ns.start_worker("restarted")
        send(ns, second)
        ns.wait_caught_up(240)
        assert observed(ns.alerts()) == expected(scenario)
        unique = {m["alert_id"]: m for m in ns.alert_messages()}
        assert observed(list(unique.values())) == expected(scenario)
