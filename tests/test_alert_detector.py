"""The detector's logic on its own (no services): a dict stands in for the Faust table.

Scores here are written by hand per text kind, so these tests pin the alert logic;
tests/test_alerts_e2e.py runs the same scenario through the real model and pipeline.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.alerts.detector import SWEEP_EVERY, AlertDetector, StagedState
from pipeline.alerts.models import Alert, ScoredEvent
from pipeline.alerts.rules import DEFAULT_RULES, load_rules, parse_rules
from pipeline.emotions import LABELS
from pipeline.traffic.scenarios import ANGRY, ANGRY_TICKETS, SAD_TICKETS, alert_scenario

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def scores(**given: float) -> dict[str, float]:
    return {label: given.get(label, 0.0) for label in LABELS}


def scored(body: dict[str, Any], source: str) -> ScoredEvent:
    """Hand-made model output: angry texts angry, sad texts sad, the rest happy."""
    text = body.get("text") or body["body"]
    templates = {t.format(b=b) for t in ANGRY for b in ("Spiky Air", "Calm Co")}
    if text in templates or text in ANGRY_TICKETS:
        probs, sentiment, ekman = (
            scores(anger=0.7, annoyance=0.2, disgust=0.05),
            "negative",
            "anger",
        )
    elif text in SAD_TICKETS:
        probs, sentiment, ekman = scores(sadness=0.6, disappointment=0.3), "negative", "sadness"
    else:
        probs, sentiment, ekman = scores(joy=0.8, gratitude=0.4), "positive", "joy"
    return ScoredEvent(
        event_id=body["id"], source=source, brand=(body.get("brands") or [body.get("brand")])[0],
        created_at=datetime.fromisoformat(body["created_at"]).timestamp(), text=text,
        scores=probs, sentiment=sentiment, sentiment_score=0.0, top_emotion=ekman, ekman=ekman,
        customer_id=body.get("customer_id", ""), customer_tier=body.get("customer_tier", ""),
        priority=body.get("priority", ""),
    )  # fmt: skip


def scenario_events() -> list[ScoredEvent]:
    return [
        scored(json.loads(r.record.value), "post" if r.role == "posts" else "ticket")
        for r in alert_scenario(T0).records
    ]


def apply(store: dict[str, Any], writes: list[tuple[str, int, Any]], seen: bool = True) -> None:
    for key, _, value in writes:
        if not seen and key.startswith('["seen"'):
            continue
        if value is None:
            store.pop(key, None)
        else:
            store[key] = value


def run(
    detector: AlertDetector,
    events: Iterable[tuple[int, ScoredEvent]],
    store: dict[str, Any] | None = None,
    batch: int = 25,
) -> list[Alert]:
    """Feed (offset, event) pairs in batches the way the agent does; returns the alerts."""
    store = {} if store is None else store
    raised: list[Alert] = []
    events = list(events)
    for i in range(0, len(events), batch):
        staged = StagedState(store)
        for offset, event in events[i : i + batch]:
            detection = detector.process(staged, event, offset, partition=0)
            raised.extend(detection.alerts)
            staged.stage(detection, partition=0)
        apply(store, staged.writes())
    return raised


def summary(alerts: Iterable[Alert]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (a.kind, a.subject, a.severity, datetime.fromtimestamp(a.event_time, UTC).isoformat())
        for a in alerts
    )


def expected() -> list[tuple[str, str, str, str]]:
    return sorted(
        (e.kind, e.subject, e.severity, e.event_time.isoformat())
        for e in alert_scenario(T0).expected
    )


def scenario_detector() -> AlertDetector:
    return AlertDetector(parse_rules(alert_scenario(T0).rules_yaml))


def test_scenario_raises_exactly_the_expected_alerts() -> None:
    alerts = run(scenario_detector(), enumerate(scenario_events()))
    assert summary(alerts) == expected()
    assert len({a.alert_id for a in alerts}) == len(alerts)


def states(store: dict[str, Any]) -> dict[str, Any]:
    """Brand and customer states without bookkeeping (offsets, `seen` entries)."""
    return {k: v["state"] for k, v in store.items() if not k.startswith('["seen"')}


def test_replayed_offsets_and_rescored_duplicates_change_nothing() -> None:
    events = scenario_events()
    clean: dict[str, Any] = {}
    run(scenario_detector(), enumerate(events), clean)

    # A crash after the state writes but before the `seen` entry, for every 3rd batch:
    # the consumer then gets the same messages (same offsets) again.
    detector = scenario_detector()
    store: dict[str, Any] = {}
    raised: list[Alert] = []
    batches = [list(enumerate(events))[i : i + 20] for i in range(0, len(events), 20)]
    for n, batch in enumerate(batches):
        staged = StagedState(store)
        for offset, event in batch:
            detection = detector.process(staged, event, offset, partition=0)
            raised.extend(detection.alerts)
            staged.stage(detection, partition=0)
        apply(store, staged.writes(), seen=n % 3 != 0)
        if n % 3 == 0:
            raised.extend(run(detector, batch, store))
    assert states(store) == states(clean)
    assert summary({a.alert_id: a for a in raised}.values()) == expected()

    # A scoring worker crash: every 10th event scored and published again later, at a
    # new offset.
    rescored = list(enumerate(events))
    for i in range(0, len(events), 10):
        rescored.insert(min(i + 25, len(rescored)), (len(events) + i, events[i]))
    rescored = [(offset, e) for offset, (_, e) in enumerate(rescored)]
    store = {}
    assert summary(run(scenario_detector(), rescored, store)) == expected()
    assert states(store) == states(clean)


def test_state_restored_from_its_json_changelog_gives_the_same_alerts() -> None:
    events = list(enumerate(scenario_events()))
    half = len(events) // 2 + 7
    store: dict[str, Any] = {}
    first = run(scenario_detector(), events[:half], store)
    restored = json.loads(json.dumps(store))  # what a changelog round trip keeps
    second = run(scenario_detector(), events[half:], restored)
    assert summary(first + second) == expected()


def test_out_of_order_within_grace_same_alerts_late_events_dropped() -> None:
    rules = parse_rules(alert_scenario(T0).rules_yaml.replace("grace: 10s", "grace: 40s"))
    events = scenario_events()
    rng = random.Random(3)
    # Shuffle within blocks of 5 events (posts are 6 s apart: at most ~30 s of disorder).
    shuffled: list[ScoredEvent] = []
    for i in range(0, len(events), 5):
        block = events[i : i + 5]
        rng.shuffle(block)
        shuffled.extend(block)
    assert summary(run(AlertDetector(rules), enumerate(shuffled))) == expected()

    store: dict[str, Any] = {}
    detector = scenario_detector()
    run(detector, enumerate(events), store)
    before = json.dumps(store, sort_keys=True)
    late = [e for e in events if e.source == "post" and e.brand == "Spiky Air"][:5]
    late = [ScoredEvent(**{**_fields(e), "event_id": e.event_id + "-late"}) for e in late]
    assert run(detector, enumerate(late, start=10_000), store) == []
    assert store['["brand", "post", "Spiky Air"]']["state"]["late"] == 5
    assert before != json.dumps(store, sort_keys=True)


def _fields(event: ScoredEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in ScoredEvent.__slots__}


def test_calm_streams_raise_nothing() -> None:
    """Three brands, two hours of 5-minute windows, ordinary noise: no alert."""
    rng = random.Random(11)
    detector = AlertDetector(load_rules(DEFAULT_RULES))
    events = []
    for brand, share in (("Acme", 0.08), ("Globex", 0.15), ("Initech", 0.3)):
        for minute in range(0, 120 * 5, 5):
            for _ in range(rng.randint(45, 60)):
                at = T0 + timedelta(minutes=minute, seconds=rng.uniform(0, 299))
                negative = rng.random() < share
                body = {"id": f"{brand}-{len(events)}", "brands": [brand],
                        "text": ANGRY[0].format(b=brand) if negative else "nice",
                        "created_at": at.isoformat()}  # fmt: skip
                events.append(scored(body, "post"))
    events.sort(key=lambda e: e.created_at)
    assert run(detector, enumerate(events)) == []


def test_seen_entries_expire_so_state_stays_bounded() -> None:
    detector = AlertDetector(load_rules(DEFAULT_RULES))
    store: dict[str, Any] = {}
    events = []
    for i in range(4 * SWEEP_EVERY):  # one event every 2 s: 8,000 s of event time
        at = T0 + timedelta(seconds=2 * i)
        events.append(scored({"id": f"e{i}", "brands": ["Acme"], "text": "nice",
                              "created_at": at.isoformat()}, "post"))  # fmt: skip
    run(detector, enumerate(events), store)
    seen = [v for k, v in store.items() if k.startswith('["seen"')]
    ids = sum(len(v[2]) for v in seen)
    # Kept: about seen_horizon of event time (2 x 6 min = 360 events) + one sweep period
    # (and the batch that straddles the cutoff).
    assert ids <= detector.seen_horizon / 2 + SWEEP_EVERY + 25
    assert ids < len(events) / 2
    assert len(seen) <= ids / 25 + 1  # one key per batch, not one per event


def test_batched_staging_writes_each_key_once_and_changes_nothing() -> None:
    events = scenario_events()
    clean: dict[str, Any] = {}
    run(scenario_detector(), enumerate(events), clean)

    detector = scenario_detector()
    store: dict[str, Any] = {}
    raised: list[Alert] = []
    batches = [list(enumerate(events))[i : i + 37] for i in range(0, len(events), 37)]
    for batch in batches:
        staged = StagedState(store)
        for offset, event in batch:
            detection = detector.process(staged, event, offset, partition=0)
            raised.extend(detection.alerts)
            staged.stage(detection, partition=0)
        writes = staged.writes()
        assert len({key for key, _, _ in writes}) == len(writes)
        # One state write per brand/customer touched, and one `seen` key, not one per event.
        assert sum(1 for k, _, _ in writes if not k.startswith('["seen"')) <= 4 + 6
        assert sum(1 for k, _, _ in writes if k.startswith('["seen"')) <= 1
        apply(store, writes)
    assert summary(raised) == expected()
    assert states(store) == states(clean)


def test_arousal_rules_hold_back_calm_anger_and_escalate_heated_anger() -> None:
    """`min_arousal` / `critical_arousal` on angry_customer (EmoBank's 1-5 scale)."""
    from dataclasses import replace

    rules = parse_rules(
        "version: 1\nangry_customer: {min_arousal: 3.2, critical_arousal: 4.0, cooldown: 0s}\n"
    )
    base = ScoredEvent(
        event_id="t-0", source="ticket", brand="Calm Co", created_at=T0.timestamp(),
        text="This is unacceptable.", scores=scores(anger=0.8), sentiment="negative",
        sentiment_score=-0.8, top_emotion="anger", ekman="anger", customer_id="C-1",
        priority="normal",
    )  # fmt: skip
    calm = replace(base, event_id="t-1", customer_id="C-1", arousal=2.9, valence=2.0)
    warm = replace(base, event_id="t-2", customer_id="C-2", arousal=3.5, valence=1.8)
    heated = replace(base, event_id="t-3", customer_id="C-3", arousal=4.3, valence=1.4)
    unknown = replace(base, event_id="t-4", customer_id="C-4")  # a model without VAD
    alerts = {a.subject: a for a in run(AlertDetector(rules), enumerate([calm, warm, heated,
                                                                         unknown]))}  # fmt: skip
    assert "C-1" not in alerts  # angry but flat: not aroused enough
    assert alerts["C-2"].severity == "warning"
    assert alerts["C-3"].severity == "critical"
    assert alerts["C-3"].evidence["reasons"] == ["anger", "high_arousal"]
    assert alerts["C-3"].evidence["arousal"] == 4.3
    assert alerts["C-4"].severity == "warning"  # missing VAD never holds an alert back
    # Without the settings, arousal changes nothing.
    plain = {a.subject for a in run(AlertDetector(load_rules(DEFAULT_RULES)),
                                    enumerate([calm, warm, heated]))}  # fmt: skip
    assert plain == {"C-1", "C-2", "C-3"}
