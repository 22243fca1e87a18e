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
from pipeline.traffic.threads import WrittenThread, thread_turns, written_threads

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


# --- Support threads (issue #18) ----------------------------------------------------

HELPDESK = "Helpdesk Air"
THREAD_RULES = """\
version: 1
angry_customer:
  cooldown: 30m
thread:
  turns: 3
  drop: 0.5
  negative_below: -0.3
  cooldown: 30m
  critical_drop: 0.2
  recover_above: 0.0
  grace: 5m
brand_spike:
  warmup_windows: 1000   # threads only: no brand spikes in this scenario
"""

# A thread written for the scenario: it worsens, keeps falling (critical), our agent
# answers in words that sound angry (which must not raise angry_customer), and the
# customer comes back calm (recovered).
ROLLERCOASTER = (
    ("customer", "Hello, my booking confirmation never arrived. Could you resend it, please?"),
    ("agent", "We cannot find any booking under your name."),
    (
        "customer",
        "What? I paid yesterday and the money is gone. I'm disappointed and a bit worried.",
    ),
    ("agent", "There is nothing I can see."),
    (
        "customer",
        "This is disgusting. You took my money and lost my booking. I hate this "
        "awful service, I am furious!",
    ),
    (
        "agent",
        "I am so angry this happened to you, it is outrageous and unacceptable on our "
        "side. I found the booking: it was stuck, and it is confirmed now.",
    ),
    ("customer", "Thank you so much, I have the confirmation now. Great help, really appreciated!"),
)


def thread_scenario(start: datetime | None = None) -> Scenario:
    """Support threads on one brand, with exactly the alerts they must raise.

    - billing dispute (written thread): worsens at its third turn, already angry;
    - refund answered badly: the customer turns angry right after the reply (also an
      angry customer);
    - the rollercoaster above: warning, critical, recovered; its angry-sounding agent
      reply raises nothing;
    - lost baggage resolved, a polite question: nothing;
    - a ticket without thread_id (today's contract), angry: angry_customer only;
    - a thread whose agent reply arrives after the customer's next turn (out of order,
      within the grace): placed by created_at; the worsening alert is the one (same
      id) that the thread raises in order.
    """
    t0 = start or datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    by_id = {t.id: t for t in written_threads()}
    records: list[ScenarioRecord] = []

    def add(thread_id: str, customer: str, minute: float, thread: WrittenThread
            ) -> list[ScenarioRecord]:  # fmt: skip
        turns = thread_turns(thread, t0 + timedelta(minutes=minute), brand=HELPDESK,
                             customer_id=customer, thread_id=thread_id,
                             gap=timedelta(minutes=2))  # fmt: skip
        return [ScenarioRecord("tickets", t.created_at, t.record) for t in turns]

    coaster = WrittenThread("rollercoaster", "en", "bookings", "standard", "worsening",
                            ROLLERCOASTER)  # fmt: skip
    records += add("TH-BILLING", "C-10", 0, by_id["billing-dispute-escalates"])
    records += add("TH-REFUND", "C-20", 1, by_id["refund-angry-after-reply"])
    records += add("TH-COASTER", "C-30", 2, coaster)
    records += add("TH-BAGGAGE", "C-40", 3, by_id["lost-baggage-resolved"])
    records += add("TH-POLITE", "C-50", 4, by_id["polite-question-stays-calm"])
    records.sort(key=lambda r: r.created_at)
    # Out of order: the agent's reply (turn 2) arrives after the customer's turn 3.
    late = add("TH-LATE", "C-60", 20, by_id["double-booking-angry-after-reply"])
    records += [late[0], late[2], late[1]]
    one = {"id": "T-ONE", "customer_id": "C-70", "customer_tier": "standard",
           "brand": HELPDESK, "product": "cards", "channel": "email", "subject": "",
           "body": ANGRY_TICKETS[0], "priority": "normal",
           "created_at": (t0 + timedelta(minutes=30)).isoformat()}  # fmt: skip
    records.append(ScenarioRecord("tickets", t0 + timedelta(minutes=30), _record(HELPDESK, one)))

    def at(minutes: float) -> datetime:
        return t0 + timedelta(minutes=minutes)

    expected = [
        # The third turn ("getting really annoying") already scores -0.9 and angry.
        ExpectedAlert("thread_worsening", "TH-BILLING", "warning", at(4)),
        ExpectedAlert("angry_customer", "C-10", "warning", at(4)),
        ExpectedAlert("thread_worsening", "TH-REFUND", "warning", at(5)),
        ExpectedAlert("angry_customer", "C-20", "warning", at(5)),
        ExpectedAlert("thread_worsening", "TH-COASTER", "warning", at(6)),
        ExpectedAlert("thread_worsening", "TH-COASTER", "critical", at(10)),
        ExpectedAlert("angry_customer", "C-30", "warning", at(10)),
        ExpectedAlert("thread_recovered", "TH-COASTER", "info", at(14)),
        ExpectedAlert("thread_worsening", "TH-LATE", "warning", at(24)),
        ExpectedAlert("angry_customer", "C-60", "warning", at(24)),
        ExpectedAlert("angry_customer", "C-70", "warning", at(30)),
    ]
    return Scenario(records, expected, THREAD_RULES, t0)
