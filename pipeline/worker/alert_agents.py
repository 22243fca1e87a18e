"""The alerting agents: scored topic -> detector -> alerts topic -> ClickHouse, notifiers.

- `detect_alerts` reads the scored topic (keyed by brand, so one brand's tickets and
  posts meet in one partition, on one worker) and keeps its state in a Faust table
  whose changelog topic survives restarts and moves with rebalanced partitions.
- `store_alerts` writes alerts to ClickHouse (`alerts`, idempotent by alert_id).
- `notify_alerts` sends them to the webhook and Grafana when configured.
The two consumers of the alerts topic are separate agents so a slow webhook delays
only notifications; scoring and the detector never wait on either.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from pipeline.alerts.detector import AlertDetector, StagedState
from pipeline.alerts.models import Alert, ScoredEvent, TextToExplain
from pipeline.alerts.notify import Channel, grafana_sender, webhook_sender
from pipeline.alerts.playbook import Playbook, load_playbook
from pipeline.alerts.rules import load_rules
from pipeline.explain import Explainer, anger_target, negative_target
from pipeline.explain.units import load_segmenter
from pipeline.records import Rejected
from pipeline.records.models import RejectCode
from pipeline.records.raw import KafkaPosition, kafka_time
from pipeline.resilience.failures import describe, is_outage
from pipeline.resilience.isolation import isolate
from pipeline.resilience.retry import retry
from pipeline.scoring.routing import triton_router
from pipeline.settings import Settings
from pipeline.sink.clickhouse import ClickHouseSink
from pipeline.sink.dead_letters import DeadLetterSender
from pipeline.sink.writer import RowWriter, ScoredPublisher
from pipeline.worker.context import WorkerContext
from pipeline.worker.faust_patches import run_batches

log = logging.getLogger("moodpipe.alerts")

ALERT_COLUMNS: tuple[str, ...] = (
    "alert_id", "kind", "severity", "source", "brand", "subject", "event_time",
    "window_start", "window_end", "raised_at", "title", "message", "evidence", "event_ids",
    "explanation", "reply",
)  # fmt: skip
DELIVERY_COLUMNS: tuple[str, ...] = ("alert_id", "channel", "status", "attempts", "error")


def alert_row(alert: Alert) -> list[Any]:
    def at(epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, UTC)

    return [
        alert.alert_id, alert.kind, alert.severity, alert.source, alert.brand, alert.subject,
        at(alert.event_time), at(alert.window_start), at(alert.window_end), at(alert.raised_at),
        alert.title, alert.message, json.dumps(alert.evidence, ensure_ascii=False),
        list(alert.event_ids), _json_or_empty(alert.explanation), _json_or_empty(alert.reply),
    ]  # fmt: skip


def _json_or_empty(value: dict[str, Any] | None) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def install(worker: WorkerContext) -> ScoredPublisher:
    """Declare the alert topics, table and agents; returns the scoring side's publisher."""
    app, settings, raw_topic = worker.app, worker.settings, worker.raw_topic
    send_dead_letter, in_flight = worker.dead_letters.send, worker.patches.in_flight
    rules = load_rules(settings.alert_rules)  # a bad file stops the worker here, clearly
    log.info("alert rules from %s", rules.path)
    playbook = load_playbook(settings.reply_playbook)  # so does a bad playbook
    log.info("reply playbook %s, version %d", playbook.path, playbook.file.version)
    explain = AlertExplainer(settings)
    scored_topic = raw_topic(settings.scored_topic)  # read by detect_alerts
    alerts_topic = raw_topic(settings.alerts_topic)
    state = app.Table(
        "alert-state",
        partitions=settings.topic_partitions,
        key_type=str,  # keys and values are JSON (Faust's default codec for tables)
    )
    detector = AlertDetector(rules)
    letters = ClickHouseSink(settings)  # the dead_letters table's copy of rejects

    async def publish_scored(messages: list[dict[str, Any]]) -> None:
        # Straight to the app's Kafka producer: Faust's Topic.send machinery (futures,
        # codecs, attachments) cost as much per message as validating a record.
        encoded = [(m["brand"].encode(), orjson.dumps(m)) for m in messages]

        async def send_all() -> None:
            pending = [
                await app.producer.send(settings.scored_topic, key, value, None, None, None)
                for key, value in encoded
            ]
            await asyncio.gather(*pending)  # on the broker before the input is acked

        # A message the broker refuses (not an outage) is raised after a few tries;
        # the scoring stage then isolates it.
        await _retry(send_all, "scored-topic produce", settings, settings.poison_attempts)

    async def publish_alert(alert: Alert) -> None:
        async def send() -> None:
            await (await alerts_topic.send(key=alert.subject.encode(), value=alert.to_json()))

        await _retry(send, "alert produce", settings)

    @app.agent(scored_topic, name="detect_alerts")
    async def detect_alerts(stream: faust.StreamT) -> None:
        await run_batches(stream, settings.alert_batch_size, 0.2, _detect_batch,
                          what="alert detection", in_flight=in_flight,
                          consumer=app.consumer)  # fmt: skip

    async def _detect_batch(events: list[Any]) -> None:
        staged = StagedState(state)
        duplicates = 0
        for event in events:
            message = event.message
            try:
                scored = ScoredEvent.from_message(orjson.loads(message.value))
                detection = detector.process(staged, scored, message.offset, message.partition)
            except Exception as exc:  # noqa: BLE001 - whatever it is, not a scored event we can use
                await _reject(send_dead_letter, letters, message,
                              f"not a scored event: {describe(exc)}")  # fmt: skip
                continue
            duplicates += detection.duplicate
            for alert in detection.alerts:
                explanation = await explain(detection.texts.get(alert.alert_id))
                alert = replace(alert, raised_at=time.time(), explanation=explanation)
                alert = replace(alert, reply=_advice(playbook, alert))
                log.info("ALERT %s %s: %s", alert.kind, alert.severity, alert.message)
                await publish_alert(alert)
            staged.stage(detection, message.partition)
        if duplicates:
            log.info("%d re-delivered scored events were already counted", duplicates)
        # State after the alerts (a crash in between re-raises, same id, never
        # loses), each key once per batch, to the partition its events came from.
        # Faust flushes these changelog messages before it commits the offsets.
        for key, partition, value in staged.writes():
            if value is None:
                state.data.pop(key, None)
                state.send_changelog(partition, key, None, value_serializer="raw")
            else:
                state.data[key] = value
                state.send_changelog(partition, key, value)

    alert_sink = ClickHouseSink(settings)

    async def _store_batch(events: list[Any]) -> None:
        alerts = []
        for event in events:
            alert = await _parse_alert(event.message)
            if alert is not None:
                alerts.append((alert_row(alert), event.message))
        rows = [row for row, _ in alerts]
        try:
            await alert_sink.write_to("alerts", ALERT_COLUMNS, rows, settings.poison_attempts)
        except Exception as exc:  # noqa: BLE001 - outages were waited out inside
            log.warning("alerts insert failed: %s; isolating", describe(exc))
            found = await isolate(
                alerts,
                lambda part: alert_sink.write_to("alerts", ALERT_COLUMNS, [r for r, _ in part], 1),
                probe=alert_sink.probe,
                what="alerts storage",
                log=log,
            )
            for (_, message), error in found.poison:
                why = f"alert not storable: {describe(error)}"
                await _reject(send_dead_letter, letters, message, why, "poison_storage")

    @app.agent(alerts_topic, name="store_alerts")
    async def store_alerts(stream: faust.StreamT) -> None:
        await run_batches(stream, 256, 0.5, _store_batch, what="alert storage",
                          in_flight=in_flight, consumer=app.consumer)  # fmt: skip

    async def _parse_alert(message: Any) -> Alert | None:
        try:
            return Alert.from_message(json.loads(message.value))
        except Exception as exc:  # noqa: BLE001 - whatever it is, not an alert we can use
            await _reject(send_dead_letter, letters, message,
                          f"not an alert: {describe(exc)}", "not_an_alert")  # fmt: skip
            return None

    channels = _channels(settings)
    if channels:

        @app.agent(alerts_topic, name="notify_alerts")
        async def notify_alerts(stream: faust.StreamT) -> None:
            sink = ClickHouseSink(settings)
            async for event in stream.events():
                try:
                    alert = Alert.from_message(json.loads(event.message.value))
                except Exception:  # noqa: BLE001 - store_alerts dead-letters it
                    continue
                try:  # an exception must not leave the agent (see faust_patches.batches)
                    await _retry(lambda alert=alert: _notify(sink, channels, alert, settings),
                                 f"notifying alert {alert.alert_id}", settings,
                                 settings.poison_attempts)  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - the alert itself is stored
                    log.error("alert %s not notified: %s", alert.alert_id, describe(exc))

    return publish_scored


class AlertExplainer:
    """Why flagged: the words behind each alerted text, through the model that scored it.

    One batched model call per alerted text (pipeline/explain); the router over
    Triton's models is made on first use, inside the running loop. An outage is waited
    out (the alert waits with it, as its publishing would); a text the model rejects
    gives the alert an `error` instead of an explanation, never a lost alert.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._explainer: Explainer | None = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> Explainer:
        async with self._lock:
            if self._explainer is None:
                router, _ = await triton_router(self.settings, wait=True)
                await asyncio.to_thread(load_segmenter)  # not on the event loop
                self._explainer = Explainer(router, self.settings.explain_max_units)
            return self._explainer

    async def __call__(self, texts: list[TextToExplain] | None) -> dict[str, Any] | None:
        if not texts or not self.settings.explain_alerts:
            return None
        explainer = await self._ready()
        out = []
        for item in texts:
            target = anger_target() if item.target == "anger" else negative_target()
            try:
                explanation = await explainer.explain(item.text, item.lang, target)
            except Exception as exc:  # the alert goes out without it
                if is_outage(exc):
                    raise
                log.warning("no explanation for %s: %s", item.event_id, describe(exc))
                out.append({"event_id": item.event_id, "error": describe(exc, 300)})
                continue
            out.append({"event_id": item.event_id, **explanation.as_dict()})
        return {"texts": out}


def _advice(playbook: Playbook, alert: Alert) -> dict[str, Any] | None:
    """The playbook's reply guidance; an alert goes out without it rather than fail
    its batch (which would re-run it forever: the failure is the data's, not an outage)."""
    try:
        return playbook.advise(alert)
    except Exception as exc:  # noqa: BLE001 - the alert matters more than its advice
        log.warning("no reply advice for alert %s: %s", alert.alert_id, describe(exc))
        return None


def _channels(settings: Settings) -> list[Channel]:
    def channel(name: str, send: Any) -> Channel:
        return Channel(
            name, send, settings.notify_max_attempts,
            settings.notify_initial_backoff, settings.notify_max_backoff,
        )  # fmt: skip

    channels = []
    webhook = settings.alert_webhook_url.get_secret_value()
    if webhook:
        channels.append(channel("webhook", webhook_sender(webhook, settings.notify_timeout)))
    if settings.grafana_url:
        token = settings.grafana_token.get_secret_value()
        channels.append(
            channel("grafana", grafana_sender(settings.grafana_url, token, settings.notify_timeout))
        )
    return channels


async def _notify(
    sink: ClickHouseSink, channels: list[Channel], alert: Alert, settings: Settings
) -> None:
    sent = {
        row[0]
        for row in await asyncio.to_thread(
            sink.query,
            "SELECT DISTINCT channel FROM alert_deliveries "
            "WHERE alert_id = {id:String} AND status = 'sent'",
            id=alert.alert_id,
        )
    }
    todo = [c for c in channels if c.name not in sent]
    outcomes = await asyncio.gather(*(c.deliver(alert) for c in todo))
    rows = [
        [alert.alert_id, c.name, status, attempts, error]
        for c, (status, attempts, error) in zip(todo, outcomes, strict=True)
    ]
    for c, (status, _, error) in zip(todo, outcomes, strict=True):
        if status != "sent":
            log.error("%s gave up on alert %s: %s", c.name, alert.alert_id, error)
    await sink.write_to("alert_deliveries", DELIVERY_COLUMNS, rows)


async def _reject(
    send_dead_letters: DeadLetterSender,
    letters: ClickHouseSink,
    message: Any,
    reason: str,
    code: RejectCode = "not_a_scored_event",
) -> None:
    log.warning("dead-lettering %s[%d]@%d: %s",
                message.topic, message.partition, message.offset, reason[:300])  # fmt: skip
    position = KafkaPosition(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=kafka_time(message.timestamp),
    )
    letter = (Rejected(code, reason), message.key, message.value, position)
    await send_dead_letters([letter])
    await RowWriter.copy_dead_letters(letters, [letter])


async def _retry(
    action: Any, what: str, settings: Settings, data_attempts: int | None = None
) -> None:
    await retry(
        action,
        what=what,
        log=log,
        initial_backoff=settings.retry_initial_backoff,
        max_backoff=settings.retry_max_backoff,
        data_attempts=data_attempts,
    )
