"""Turns a scored event into alerts and state changes, against a key-value store.

The store is the worker's Faust table (changelog-backed); in unit tests a dict. The
detector never writes: it returns the writes, and the agent applies them only after
the alerts are on the alerts topic, so a crash can re-raise an alert (same id,
deduplicated downstream) but never lose one.

Exactly-once effect on state under at-least-once delivery:
- every state remembers the offset of the last scored-topic message applied to it,
  so a message replayed after a crash is not applied twice;
- a ticket re-scored after a scoring-worker crash arrives again with a new offset;
  customer state recognises its event id, brand windows use `seen` entries kept for
  as long as a window can still be open (older duplicates fall in closed windows and
  are dropped as late anyway).

`seen` entries cost one changelog message per partition per batch, not one per event:
a batch's new event ids go into one key (`["seen", partition, first offset]`), and the
detector keeps an index of the ids under every `seen` key of the store, brought up to
date at the start of each batch from the keys that appeared or went away (a batch
that failed wrote nothing, so its ids are not in the index either).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.alerts.brands import observe_event
from pipeline.alerts.customers import observe_ticket
from pipeline.alerts.models import Alert, ExplainTarget, ScoredEvent, TextToExplain, score_text
from pipeline.alerts.rules import AlertRules
from pipeline.alerts.threads import observe_turn

SWEEP_EVERY = 1000  # events per partition between sweeps of expired `seen` entries


def brand_key(source: str, brand: str) -> str:
    return json.dumps(["brand", source, brand])


def customer_key(brand: str, customer_id: str) -> str:
    return json.dumps(["customer", brand, customer_id])


THREAD_PREFIX = '["thread"'


def thread_key(brand: str, thread_id: str) -> str:
    return json.dumps(["thread", brand, thread_id])


SEEN_PREFIX = '["seen"'


def seen_key(partition: int, first_offset: int) -> str:
    return json.dumps(["seen", partition, first_offset])


@dataclass
class Detection:
    alerts: list[Alert] = field(default_factory=list)
    writes: list[tuple[str, Any]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    duplicate: bool = False
    # alert_id -> the texts behind it, for the explainer
    texts: dict[str, list[TextToExplain]] = field(default_factory=dict)
    # (source, event_id, created_at, offset) to remember as seen, once the batch is written
    seen: tuple[str, str, float, int] | None = None


class SeenIndex:
    """(source, event_id) -> the `seen` key holding it, for every `seen` key of a store."""

    def __init__(self) -> None:
        self._by_id: dict[tuple[str, str], str] = {}
        self._ids: dict[str, list[tuple[str, str]]] = {}

    def refresh(self, store: Mapping[str, Any]) -> None:
        keys = {k for k in store if k.startswith(SEEN_PREFIX)}
        for key in [k for k in self._ids if k not in keys]:
            for item in self._ids.pop(key):
                if self._by_id.get(item) == key:
                    del self._by_id[item]
        for key in keys - self._ids.keys():
            items = [(source, event_id) for source, event_id in store[key][2]]
            self._ids[key] = items
            for item in items:
                self._by_id[item] = key

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self._by_id


class AlertDetector:
    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules
        # How long a brand window can stay open; `seen` entries are kept twice that.
        self.seen_horizon = 2 * rules.largest_window
        self._partition_time: dict[int, float] = {}
        self._since_sweep: dict[int, int] = {}
        self._seen = SeenIndex()
        self._indexed: object = None  # the batch (StagedState) the index was refreshed for

    def process(
        self, store: Mapping[str, Any], event: ScoredEvent, offset: int, partition: int
    ) -> Detection:
        """`store` is the batch's StagedState (or any mapping, refreshed per call)."""
        if store is not self._indexed or not isinstance(store, StagedState):
            self._seen.refresh(store)
            self._indexed = store
        detection = Detection()
        if event.model_coverage == "none":
            # No model covers its language: its emotions must not raise alerts (nor
            # count towards a brand's window), as they stay out of the mood rollups.
            return detection
        item = (event.source, event.event_id)
        if item in self._seen or (isinstance(store, StagedState) and item in store.seen_now):
            detection.duplicate = True
            return detection

        # Agent and bot turns are our own replies: scored and stored, part of their
        # thread, but neither the customer's mood (brand windows) nor an angry customer.
        if event.from_customer:
            key = brand_key(event.source, event.brand)
            held = store.get(key)
            if held is None or held["offset"] < offset:
                spike_rule = self.rules.brand_spike(event.source, event.brand)
                state, alerts = observe_event(held["state"] if held else None, event, spike_rule)
                self._found(detection, alerts, event)
                detection.writes.append((key, {"offset": offset, "state": state}))

        if event.source == "ticket" and event.customer_id and event.from_customer:
            key = customer_key(event.brand, event.customer_id)
            held = store.get(key)
            if held is None or held["offset"] < offset:
                rule = self.rules.angry_customer(event.brand, event.customer_tier)
                state, alerts = observe_ticket(held["state"] if held else None, event, rule)
                self._found(detection, alerts, event)
                detection.writes.append((key, {"offset": offset, "state": state}))

        if event.source == "ticket" and event.thread_id:
            key = thread_key(event.brand, event.thread_id)
            held = store.get(key)
            if held is None or held["offset"] < offset:
                anger = self.rules.angry_customer(event.brand, event.customer_tier)
                thread_rule = self.rules.thread(event.brand, event.customer_tier)
                state, alerts = observe_turn(held["state"] if held else None, event,
                                             thread_rule, anger)  # fmt: skip
                self._found(detection, alerts, event)
                detection.writes.append((key, {"offset": offset, "partition": partition,
                                               "state": state}))  # fmt: skip

        detection.seen = (event.source, event.event_id, event.created_at, offset)
        detection.deletes = self._expired_seen(store, event.created_at, partition)
        return detection

    @staticmethod
    def _found(detection: Detection, alerts: list[Alert], event: ScoredEvent) -> None:
        """Add alerts, with the texts behind each for the explainer."""
        for alert in alerts:
            detection.alerts.append(alert)
            texts = texts_behind(alert, event)
            if texts:
                detection.texts[alert.alert_id] = texts

    def _expired_seen(self, store: Mapping[str, Any], t: float, partition: int) -> list[str]:
        latest = max(self._partition_time.get(partition, t), t)
        self._partition_time[partition] = latest
        count = self._since_sweep.get(partition, 0) + 1
        if count < SWEEP_EVERY:
            self._since_sweep[partition] = count
            return []
        self._since_sweep[partition] = 0
        cutoff = latest - self.seen_horizon
        idle = latest - self.rules.file.thread.idle_after
        # Only this partition's entries: a delete goes to the current event's partition.
        expired = []
        for k, v in list(store.items()):
            if k.startswith(SEEN_PREFIX):
                done = v[1] == partition and v[0] < cutoff
            else:
                done = (
                    k.startswith(THREAD_PREFIX)
                    and v.get("partition") == partition
                    and (_last_turn(v["state"]) < idle)
                )
            if done:
                expired.append(k)
        return expired


def _last_turn(state: dict[str, Any]) -> float:
    return state["turns"][-1][0] if state["turns"] else float("-inf")


def texts_behind(alert: Alert, event: ScoredEvent) -> list[TextToExplain]:
    """The texts whose words an alert's explanation shows: the angry ticket, the thread
    turn that worsened, a spike's quoted posts. Recoveries and volume spikes: none."""
    if alert.kind == "angry_customer":
        return [TextToExplain(event.event_id, score_text(event), event.lang, "anger")]
    if alert.kind == "thread_worsening":
        reasons = alert.evidence.get("reasons", [])
        target: ExplainTarget = "anger" if "angry_after_reply" in reasons else "negative"
        if alert.evidence.get("ticket_id") == event.event_id:
            return [TextToExplain(event.event_id, score_text(event), event.lang, target)]
        excerpt = alert.evidence.get("excerpt") or ""  # a turn placed out of order
        return [TextToExplain(alert.evidence["ticket_id"], excerpt, "", target)] if excerpt else []
    if alert.kind == "brand_mood_spike":
        return [
            TextToExplain(x["event_id"], x["excerpt"], x.get("lang", ""), "negative")
            for x in alert.evidence.get("examples", [])
        ]
    return []


_DELETED = object()


class StagedState(Mapping[str, Any]):
    """A batch's view of the state: reads through to `base`, collects writes.

    The agent processes a batch of scored events against this, then writes each
    changed key once (one changelog message per brand per batch instead of one per
    event) before acking the batch.
    """

    def __init__(self, base: Mapping[str, Any]) -> None:
        self.base = base
        self.changes: dict[str, tuple[int, Any]] = {}  # key -> (partition, value | _DELETED)
        self.seen_now: set[tuple[str, str]] = set()
        # partition -> [first offset, latest created_at, [[source, event_id], ...]]
        self._new_seen: dict[int, list[Any]] = {}

    def stage(self, detection: Detection, partition: int) -> None:
        for key, value in detection.writes:
            self.changes[key] = (partition, value)
        for key in detection.deletes:
            self.changes[key] = (partition, _DELETED)
        if detection.seen is not None:
            source, event_id, created_at, offset = detection.seen
            self.seen_now.add((source, event_id))
            entry = self._new_seen.setdefault(partition, [offset, created_at, []])
            entry[0] = min(entry[0], offset)
            entry[1] = max(entry[1], created_at)
            entry[2].append([source, event_id])

    def writes(self) -> list[tuple[str, int, Any]]:
        """(key, partition, value) to write, value None meaning delete; one `seen` key
        per partition with this batch's new event ids."""
        out = [(k, p, None if v is _DELETED else v) for k, (p, v) in self.changes.items()]
        for partition, (first, latest, ids) in self._new_seen.items():
            out.append((seen_key(partition, first), partition, [latest, partition, ids]))
        return out

    def __getitem__(self, key: str) -> Any:
        if key in self.changes:
            value = self.changes[key][1]
            if value is _DELETED:
                raise KeyError(key)
            return value
        return self.base[key]

    def __contains__(self, key: object) -> bool:
        if key in self.changes:
            return self.changes[key][1] is not _DELETED
        return key in self.base

    def __iter__(self) -> Iterator[str]:
        for key in self.base:
            if key not in self.changes:
                yield key
        for key, (_, value) in self.changes.items():
            if value is not _DELETED:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)
