"""`create_app(settings)`: the Faust worker app, built from settings, with nothing done
at import.

    records -> scoring agents -> inference client -> sink (ClickHouse, scored topic)
                                                        -> alert agents -> alerts

Both kinds of agents register the same way, `install(worker)`, on one shared
`WorkerContext`; the Faust patches are installed first, before any topic, table or
agent exists (`pipeline.worker.faust_patches`).
"""

from __future__ import annotations

from typing import Any

import faust

from pipeline.connections.kafka import KafkaConnection
from pipeline.logs import summarise_repeats
from pipeline.settings import Settings
from pipeline.sink.writer import ScoredPublisher
from pipeline.worker import alert_agents, lag, scoring_agents
from pipeline.worker.context import WorkerContext, WorkerHooks, raw_topic
from pipeline.worker.dead_letters import DeadLetterProducer
from pipeline.worker.faust_patches import install as install_patches


def faust_credentials(kafka: KafkaConnection) -> Any:
    """`broker_credentials` for faust.App (None for PLAINTEXT): the same SASL and TLS as
    every other client of the pipeline."""
    if kafka.uses_sasl:
        return faust.SASLCredentials(
            username=kafka.username,
            password=kafka.password.get_secret_value(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=kafka.ssl_context(),
        )
    if kafka.uses_tls:
        return faust.SSLCredentials(kafka.ssl_context())
    return None


def faust_app(settings: Settings) -> faust.App:
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    return faust.App(
        settings.app_id,
        broker=settings.kafka_url,
        broker_credentials=faust_credentials(settings.kafka),
        store="memory://",
        # Faust makes a folder for its table stores; by default "<app id>-data" in the
        # working directory (one per test namespace in a checkout), under data_dir here.
        datadir=str(datadir / settings.app_id),
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_bind=settings.bind_host,
        web_host=settings.bind_host,
        producer_max_request_size=settings.producer_max_request_size,
        # Commit on Faust's timer only (every 2.8 s). By default Faust also commits
        # every 10,000 acks from inside its fetch loop, where the commit (a producer
        # flush, then the offset commit) stops fetching meanwhile: with alerting on that
        # put ~1 s on the p50 produce -> row latency at 1,100 events/s (null model).
        broker_commit_every=1_000_000_000,
    )


def create_app(settings: Settings, hooks: WorkerHooks | None = None) -> faust.App:
    """The worker app: scoring agents for posts and tickets, alert agents when alerting
    is on, the consumer-lag sampler; a bad rules file raises `RulesError` here."""
    app = faust_app(settings)
    patches = install_patches(app, settings)
    dead_letters = DeadLetterProducer(raw_topic(app, settings, settings.dead_letter_topic),
                                      settings)  # fmt: skip
    worker = WorkerContext(app, settings, patches, dead_letters, hooks or WorkerHooks())

    @app.task
    async def quiet_repeated_warnings() -> None:
        # After the worker has set up its log handlers.
        summarise_repeats()

    publish_scored: ScoredPublisher | None = (
        alert_agents.install(worker) if settings.alerts_enabled else None
    )
    scoring_agents.install(worker, publish_scored)
    lag.install(worker)
    return app
