"""A pipeline of one's own on a shared local runtime, and replaying recordings through it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from pipeline.connections.topics import ensure_topics, read_topic_json
from pipeline.local.worker import WORKER_COMMAND, kill_worker, start_worker, stop_worker
from pipeline.recording import RecordingReader
from pipeline.recording.replay import ReplaySummary, replay_recording
from pipeline.settings import Settings
from pipeline.sink.clickhouse import ClickHouseSink, connect
from pipeline.sink.dead_letters import read_dead_letters


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class ReplayResult:
    """What a replay left behind: scored events and alerts (deduplicated), dead letters."""

    events: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    replay: ReplaySummary
    topic_roles: dict[str, str]  # namespace topic -> "posts" | "tickets"
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def event(self, source: str, event_id: str) -> dict[str, Any]:
        for e in self.events:
            if e["source"] == source and e["event_id"] == event_id:
                return e
        raise KeyError(f"no scored {source} {event_id!r}")


@dataclass
class PipelineNamespace:
    """Topics, consumer group and ClickHouse database of one test, on a running runtime.

    Environment variables the worker reads are set for the namespace's lifetime
    (`env`), so a worker started here sees only this test's topics and database.
    """

    settings: Settings
    env: dict[str, str]
    log_dir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    @contextmanager
    def create(
        cls, log_dir: Path, partitions: int = 4, **overrides: str
    ) -> Iterator[PipelineNamespace]:
        tag = uuid.uuid4().hex[:8]
        env = {
            "MOODPIPE_APP_ID": f"moodpipe-test-{tag}",
            "MOODPIPE_POSTS_TOPIC": f"posts-{tag}",
            "MOODPIPE_TICKETS_TOPIC": f"tickets-{tag}",
            "MOODPIPE_DEAD_LETTER_TOPIC": f"dead-letters-{tag}",
            "MOODPIPE_SCORED_TOPIC": f"scored-{tag}",
            "MOODPIPE_ALERTS_TOPIC": f"alerts-{tag}",
            "MOODPIPE_CLICKHOUSE_DATABASE": f"moodpipe_test_{tag}",
            "MOODPIPE_TOPIC_PARTITIONS": str(partitions),
            "MOODPIPE_BATCH_SIZE": "32",
            # One batch in flight per agent: the scored topic keeps each partition's
            # input order, so order-sensitive alerts (cooldowns) replay identically.
            "MOODPIPE_AGENT_CONCURRENCY": "1",
            "MOODPIPE_RETRY_MAX_BACKOFF": "2",
            **{f"MOODPIPE_{k.upper()}": v for k, v in overrides.items()},
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            settings = Settings()
            asyncio.run(ensure_topics(settings))
            ClickHouseSink(settings).migrate()
            ns = cls(settings=settings, env=dict(os.environ), log_dir=log_dir)
            try:
                yield ns
            finally:
                for proc in ns.workers:
                    if proc.poll() is None:
                        kill_worker(proc)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # --- workers ---------------------------------------------------------------

    def start_worker(
        self, name: str = "worker", *, crash_after_storing: int = 0
    ) -> subprocess.Popen[bytes]:
        """A worker on this namespace; `crash_after_storing` N: its scoring agents fail N
        times after storing a batch, before acking it (`pipeline.testing.faults`)."""
        command: tuple[str, ...] = WORKER_COMMAND
        if crash_after_storing:
            command = ("-m", "pipeline.testing.faults",
                       "--crash-after-storing", str(crash_after_storing))  # fmt: skip
        proc = start_worker(self.log_dir / f"{name}-{len(self.workers)}.log", self.env, command)
        self.workers.append(proc)
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            stop_worker(proc)

    # --- ClickHouse and Kafka views -----------------------------------------------

    def query(self, sql: str, **params: Any) -> list[tuple]:
        client = connect(self.settings, self.settings.clickhouse_database)
        try:
            return [tuple(r) for r in client.query(sql, parameters=params).result_rows]
        finally:
            client.close()

    def query_dicts(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        client = connect(self.settings, self.settings.clickhouse_database)
        try:
            result = client.query(sql, parameters=params)
            return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
        finally:
            client.close()

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.query(sql, **params)[0][0]

    def landed(self) -> int:
        return int(self.scalar("SELECT count() FROM scored_events_dedup"))

    def dead_letters(self) -> list[dict[str, Any]]:
        return asyncio.run(read_dead_letters(self.settings.kafka, self.settings.dead_letter_topic))

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts in ClickHouse (one per alert_id), evidence, explanation and reply parsed,
        by event time."""
        rows = self.query_dicts(
            "SELECT * EXCEPT stored_at FROM alerts_dedup ORDER BY event_time, kind, subject"
        )
        for row in rows:
            row["evidence"] = json.loads(row["evidence"])
            for name in ("explanation", "reply"):  # JSON, '' when the alert has none
                row[name] = json.loads(row[name]) if row.get(name) else None
            for name in ("event_time", "window_start", "window_end", "raised_at"):
                if row[name].tzinfo is None:  # DateTime64(3, 'UTC') may arrive naive
                    row[name] = row[name].replace(tzinfo=UTC)
        return rows

    def alert_messages(self) -> list[dict[str, Any]]:
        """Every message on the alerts topic, duplicates included, in offset order."""
        return asyncio.run(read_topic_json(self.settings.kafka, self.settings.alerts_topic))

    def dead_values(self) -> list[bytes]:
        return [base64.b64decode(d["value_b64"]) for d in self.dead_letters()]

    def caught_up(self) -> bool:
        """True when the worker group has committed every record of every topic it reads.

        The worker commits an offset only after the records before it are in
        ClickHouse or on the dead-letter topic (and, with alerts on, on the scored
        topic; a scored event only after its alerts are on the alerts topic), so this
        means "all processed". Committed offsets are read before end offsets: a topic
        fed by an earlier one is then measured after everything it was fed.
        """
        return self.lag() == {}

    def lag(self) -> dict[str, int | str]:
        """Uncommitted records per "topic[partition]" (empty when caught up)."""
        return asyncio.run(self._lag())

    async def _lag(self) -> dict[str, int | str]:
        from aiokafka import AIOKafkaConsumer

        from pipeline.connections.topics import partitions_of

        s = self.settings
        tps = [
            TopicPartition(topic, p)
            for topic in s.consumed_topics
            for p in await partitions_of(s.kafka, topic)
        ]
        consumer = AIOKafkaConsumer(**s.kafka.client_options())
        admin = AIOKafkaAdminClient(**s.kafka.client_options())
        await consumer.start()
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(s.app_id)
            ends = await consumer.end_offsets(tps)
        except KafkaError as exc:
            return {"group": f"offsets not readable yet: {exc}"}  # e.g. no coordinator yet
        finally:
            await admin.close()
            await consumer.stop()
        lag: dict[str, int | str] = {}
        for tp, end in ends.items():
            done = committed[tp].offset if tp in committed else 0
            if end > 0 and done < end:
                lag[f"{tp.topic}[{tp.partition}]"] = end - max(done, 0)
        return lag

    def wait_caught_up(self, timeout: float = 300) -> None:
        """Wait until every topic is processed; on timeout, say what is left."""
        try:
            wait_until(self.caught_up, timeout, "the pipeline to process every record")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; uncommitted: {self.lag()}") from None

    # --- replay ------------------------------------------------------------------

    def replay(
        self,
        recording: Path,
        roles: dict[str, str] | None = None,
        timeout: float = 300,
        speed: float = 0.0,
    ) -> ReplayResult:
        """Replay a recording into this namespace's input topics and wait for the pipeline.

        `roles` maps each recorded topic to "posts" or "tickets"; by default a topic
        whose name contains "post" or "ticket" gets that role.
        """
        with RecordingReader(recording) as reader:
            recorded = reader.header["source"]["topics"]
        roles = roles or {t: _guess_role(t) for t in recorded}
        target = {"posts": self.settings.posts_topic, "tickets": self.settings.tickets_topic}
        topic_map = {t: target[role] for t, role in roles.items()}
        if not any(p.poll() is None for p in self.workers):
            self.start_worker()
        summary = asyncio.run(
            replay_recording(
                recording,
                self.settings.kafka,
                topic_map=topic_map,
                speed=speed,
                partitioning="key",
            )
        )
        if summary.error is not None:
            raise summary.error
        self.wait_caught_up(timeout)
        return self.results(topic_roles={v: roles[k] for k, v in topic_map.items()}, replay=summary)

    def results(
        self, topic_roles: dict[str, str] | None = None, replay: ReplaySummary | None = None
    ) -> ReplayResult:
        events = self.query_dicts("SELECT * FROM scored_events_dedup ORDER BY source, event_id")
        return ReplayResult(
            events=events,
            dead_letters=self.dead_letters(),
            replay=replay or ReplaySummary(),
            topic_roles=topic_roles or {},
            alerts=self.alerts() if self.settings.alerts_enabled else [],
        )


def _guess_role(topic: str) -> str:
    lowered = topic.lower()
    if "ticket" in lowered:
        return "tickets"
    if "post" in lowered:
        return "posts"
    raise ValueError(f"cannot tell whether {topic!r} holds posts or tickets: pass roles=")
