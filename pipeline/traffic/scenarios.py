"""Scripted alert scenarios: posts and tickets with known anger bursts and brand spikes.

`alert_scenario()` returns the records, the rules they are meant for and exactly the
alerts they must raise (kind, subject, severity, event time). The texts are ones the
shipped model scores unambiguously (strongly angry, plainly sad, plainly happy), so
the scenario tests the alerting, not the model's borderline calls.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.traffic.generate import SampleRecord

HAPPY = [
    "Loving the new lounge at {b}, thank you so much!",
    "Great service from {b} today, really happy with it.",
    "{b} crew were wonderful, thanks for a lovely trip!",
    "Thank you {b}, the upgrade was amazing!",
    "Really impressed with {b}, great job everyone.",
    "Just booked my next trip with {b}, excited!",
]
ANGRY = [
    "{b} is a disgrace, I am furious about this.",
    "Absolutely disgusting service from {b}, I hate this.",
    "I am so angry at {b}, this is outrageous.",
    "{b} lost my bag again, I'm livid and fed up.",
    "Worst experience ever with {b}. Awful, terrible, angry.",
    "Shame on {b}, this is pathetic and infuriating.",
]
ANGRY_TICKETS = [
    "This is outrageous. I am furious that you charged me twice and nobody answers. "
    "Disgusting service.",
    "I am so angry. Third time my card is blocked for no reason, this is unacceptable "
    "and infuriating!",
    "Absolutely livid. You lost my money and your support is a disgrace. I hate dealing with you.",
]
SAD_TICKETS = [
    "I'm disappointed that my order still hasn't arrived, it is sad.",
    "Sadly the refund has not come through yet, I am disappointed.",
    "I feel let down, the package is still missing and I'm sad about it.",
]
CALM_TICKETS = [
    "Thanks for the quick help with my password reset, all good now!",
    "Thank you, the issue is resolved and I appreciate the help.",
]

SCENARIO_RULES = """\
version: 1
angry_customer:
  cooldown: 30m
  escalate_after: 3
  escalation_window: 2h
  repeat_contacts: 3
  repeat_window: 2h
brand_spike:
  window: 1m
  grace: 10s
  warmup_windows: 5
  min_volume: 8
  min_spike_volume: 20
overrides:
  - match: {tier: free}
    angry_customer: {min_priority: high}
"""


@dataclass(frozen=True)
class ScenarioRecord:
    role: str  # "posts" or "tickets"
    created_at: datetime
    record: SampleRecord


@dataclass(frozen=True)
class ExpectedAlert:
    kind: str
    subject: str
    severity: str
    event_time: datetime


@dataclass(frozen=True)
class Scenario:
    records: list[ScenarioRecord]  # in event-time order
    expected: list[ExpectedAlert]
    rules_yaml: str
    start: datetime

    def split(self, at: datetime) -> tuple[list[ScenarioRecord], list[ScenarioRecord]]:
        return (
            [r for r in self.records if r.created_at < at],
            [r for r in self.records if r.created_at >= at],
        )


SPIKY = "Spiky Air"
CALM = "Calm Co"


def alert_scenario(start: datetime | None = None, seed: int = 7) -> Scenario:
    """16 one-minute windows of two brands' posts, plus six customers' tickets.

    Spiky Air: a negative burst in minute 8 (spike, then recovered in minute 9) and
    four times its usual volume in minute 11. Calm Co: steady all along (no alerts).
    """
    t0 = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    rng = random.Random(seed)
    records: list[ScenarioRecord] = []
    n = 0

    def post(brand: str, at: datetime, angry: bool) -> None:
        nonlocal n
        n += 1
        text = rng.choice(ANGRY if angry else HAPPY).format(b=brand)
        body = {"id": f"p{n:04d}", "brands": [brand], "platform": "x", "author": f"u{n}",
                "text": text, "created_at": at.isoformat()}  # fmt: skip
        records.append(ScenarioRecord("posts", at, _record(brand, body)))

    for minute in range(16):
        for brand in (SPIKY, CALM):
            volume = 40 if (brand == SPIKY and minute == 11) else 10
            negative = 8 if (brand == SPIKY and minute == 8) else volume // 10
            angry_at = set(rng.sample(range(volume), negative))
            for i in range(volume):
                at = t0 + timedelta(minutes=minute, seconds=i * 60 / volume + 1)
                post(brand, at, i in angry_at)
    for brand in (SPIKY, CALM):  # moves event time past minute 15's end + grace
        post(brand, t0 + timedelta(minutes=16, seconds=15), angry=False)

    def ticket(customer: str, tier: str, priority: str, minute: float, texts: list[str]) -> None:
        nonlocal n
        n += 1
        at = t0 + timedelta(minutes=minute)
        body = {"id": f"t{n:04d}", "customer_id": customer, "customer_tier": tier,
                "brand": SPIKY, "product": "cards", "channel": "email", "subject": "",
                "body": rng.choice(texts), "priority": priority,
                "created_at": at.isoformat()}  # fmt: skip
        records.append(ScenarioRecord("tickets", at, _record(customer, body)))

    ticket("C-100", "standard", "normal", 1, ANGRY_TICKETS)  # alert
    ticket("C-100", "standard", "normal", 3, ANGRY_TICKETS)  # cooldown: held back
    ticket("C-100", "standard", "normal", 5, ANGRY_TICKETS)  # third trigger: escalated
    ticket("C-100", "standard", "normal", 10, CALM_TICKETS)
    ticket("C-200", "enterprise", "normal", 2, ANGRY_TICKETS)  # alert
    ticket("C-300", "free", "normal", 2.5, ANGRY_TICKETS)  # free tier, normal: none
    ticket("C-301", "free", "urgent", 4, ANGRY_TICKETS)  # free tier, urgent: alert
    ticket("C-400", "premium", "normal", 6, SAD_TICKETS)
    ticket("C-400", "premium", "normal", 7, SAD_TICKETS)
    ticket("C-400", "premium", "normal", 8, SAD_TICKETS)  # third negative contact: alert
    ticket("C-500", "standard", "low", 2, CALM_TICKETS)
    ticket("C-500", "standard", "low", 9, CALM_TICKETS)
    records.sort(key=lambda r: r.created_at)

    def at_minute(minutes: float) -> datetime:
        return t0 + timedelta(minutes=minutes)

    expected = [
        ExpectedAlert("angry_customer", "C-100", "warning", at_minute(1)),
        ExpectedAlert("angry_customer", "C-200", "warning", at_minute(2)),
        ExpectedAlert("angry_customer", "C-301", "warning", at_minute(4)),
        ExpectedAlert("angry_customer", "C-100", "critical", at_minute(5)),
        ExpectedAlert("angry_customer", "C-400", "warning", at_minute(8)),
        ExpectedAlert("brand_mood_spike", SPIKY, "critical", at_minute(9)),
        ExpectedAlert("brand_mood_recovered", SPIKY, "info", at_minute(10)),
        ExpectedAlert("brand_volume_spike", SPIKY, "warning", at_minute(12)),
    ]
    return Scenario(records, expected, SCENARIO_RULES, t0)


def _record(key: str, body: Mapping[str, object]) -> SampleRecord:
    return SampleRecord(
        key=key.encode(), value=json.dumps(body).encode(), expect="scored", event_id=str(body["id"])
    )
