"""Replay tests: the shipped sample recording through the real pipeline, against golden files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.testing import PipelineNamespace, assert_matches_golden, golden_view
from pipeline.traffic.scenarios import alert_scenario, thread_scenario

pytestmark = pytest.mark.services

SAMPLE = Path(__file__).parent / "recordings" / "sample.mprec"
GOLDEN = Path(__file__).parent / "golden" / "sample.json"
ALERT_SCENARIO = Path(__file__).parent / "recordings" / "alert-scenario.mprec"
ALERT_GOLDEN = Path(__file__).parent / "golden" / "alert-scenario.json"
THREAD_SCENARIO = Path(__file__).parent / "recordings" / "thread-scenario.mprec"
THREAD_GOLDEN = Path(__file__).parent / "golden" / "thread-scenario.json"


def test_sample_recording_matches_its_golden_file(namespace: PipelineNamespace) -> None:
    result = namespace.replay(SAMPLE)
    assert len(result.events) == 65 and len(result.dead_letters) == 20
    assert_matches_golden(result, GOLDEN)


@pytest.mark.parametrize(
    ("make_scenario", "recording", "golden"),
    [
        (alert_scenario, ALERT_SCENARIO, ALERT_GOLDEN),
        (thread_scenario, THREAD_SCENARIO, THREAD_GOLDEN),
    ],
    ids=["alert-scenario", "thread-scenario"],
)
def test_recorded_scenario_replays_to_the_same_alerts(
    runtime, tmp_path: Path, make_scenario, recording: Path, golden: Path
) -> None:
    scenario = make_scenario()
    rules = tmp_path / "rules.yaml"
    rules.write_text(scenario.rules_yaml)
    with PipelineNamespace.create(tmp_path, alert_rules=str(rules)) as ns:
        result = ns.replay(recording)
    assert len(result.events) == len(scenario.records)
    raised = sorted((a["kind"], a["subject"], a["severity"], a["event_time"])
                    for a in result.alerts)  # fmt: skip
    wanted = sorted((e.kind, e.subject, e.severity, e.event_time) for e in scenario.expected)
    assert raised == wanted
    assert_matches_golden(result, golden)


def test_a_changed_threshold_fails_the_golden_test_readably(runtime, tmp_path: Path) -> None:
    with PipelineNamespace.create(tmp_path, label_threshold="0.6") as ns:
        result = ns.replay(SAMPLE)
    with pytest.raises(AssertionError) as failure:
        assert_matches_golden(result, GOLDEN)
    message = str(failure.value)
    assert "replay differs from sample.json" in message
    assert "labels is [" in message and ", golden [" in message
    assert "post:sample-post-" in message or "ticket:sample-ticket-" in message
    assert "MOODPIPE_UPDATE_GOLDEN=1" in message


def _analytics(ns: PipelineNamespace) -> list[tuple]:
    return ns.query(
        "SELECT source, brand, count(), round(avg(sentiment_score), 4), "
        "groupArray(10)(top_emotion), sum(length(labels)) "
        "FROM (SELECT * FROM scored_events_dedup ORDER BY event_id) GROUP BY source, brand "
        "ORDER BY source, brand"
    )


def test_replaying_twice_gives_identical_query_results(runtime, tmp_path: Path) -> None:
    with PipelineNamespace.create(tmp_path / "a") as ns:
        first = ns.replay(SAMPLE)
        first_analytics = _analytics(ns)
        first_scored = ns.scalar("SELECT min(scored_at) FROM scored_events_dedup")
        again = ns.replay(SAMPLE)  # over the existing data
        again_analytics = _analytics(ns)
        # Really scored again: every row that queries see now is from the second pass.
        assert again.replay.replayed == 85
        assert ns.scalar("SELECT min(scored_at) FROM scored_events_dedup") > first_scored
    with PipelineNamespace.create(tmp_path / "b") as clean:
        fresh = clean.replay(SAMPLE)  # into a clean database
        fresh_analytics = _analytics(clean)
    assert (
        golden_view(first)["events"] == golden_view(again)["events"] == golden_view(fresh)["events"]
    )
    assert first_analytics == again_analytics == fresh_analytics
    assert golden_view(first)["dead_letters"] == golden_view(fresh)["dead_letters"]
