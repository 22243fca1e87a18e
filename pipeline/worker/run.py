"""Running a worker: checks that fail at start instead of as agent crashes, then Faust."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys

from pipeline.alerts import load_rules
from pipeline.alerts.playbook import load_playbook
from pipeline.connections.kafka import KafkaSetupError, check_connection
from pipeline.connections.topics import seed_committed_offsets
from pipeline.settings import Settings
from pipeline.worker.context import WorkerHooks

log = logging.getLogger("moodpipe.worker")


class WorkerSetupError(RuntimeError):
    """A setup the worker cannot run with; waiting would not help."""


def preflight(settings: Settings) -> None:
    """Raise `WorkerSetupError` (or a `SettingsFileError`) for what no retry can heal:
    refused Kafka credentials or TLS, missing TLS files, a bad rules file or reply
    playbook, a missing spaCy model. A broker that does not answer yet is waited out by Faust."""
    try:  # TLS files: a setup error, reported now rather than retried as an outage
        if settings.triton_tls_options:
            settings.triton_tls_options.client_options()
    except OSError as exc:
        raise WorkerSetupError(str(exc)) from exc
    if settings.alerts_enabled:
        load_rules(settings.alert_rules)  # RulesError names the file and line
        load_playbook(settings.reply_playbook)  # so does PlaybookError
    name = settings.pii_spacy_model
    if name and settings.pii_redaction != "off" and not importlib.util.find_spec(name):
        # Found at start, not when the first agent builds its stages (an agent crash).
        raise WorkerSetupError(f"MOODPIPE_PII_SPACY_MODEL: spaCy model {name!r} is not installed")
    # Refused credentials never heal by waiting: stop now with the reason, instead of
    # Faust reconnecting forever.
    try:
        reachable = asyncio.run(check_connection(settings.kafka))
    except KafkaSetupError as exc:
        raise WorkerSetupError(str(exc)) from exc
    if not reachable:
        log.warning("Kafka at %s does not answer yet; waiting for it", settings.kafka.describe())


def run_worker(
    settings: Settings, faust_args: tuple[str, ...] = (), hooks: WorkerHooks | None = None
) -> None:
    """Check the setup, seed committed offsets, then run Faust's worker until stopped."""
    from pipeline.worker.app import create_app

    preflight(settings)
    # A worker's log keeps the Kafka client's group and partition-assignment lines.
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        seeded = asyncio.run(
            seed_committed_offsets(settings.kafka, settings.app_id, settings.consumed_topics)
        )
    except Exception as exc:  # noqa: BLE001 - a safety margin; Faust reports a dead broker
        log.warning("could not seed committed offsets: %s", exc)
    else:
        if seeded:
            log.info("seeded %d partitions' committed offsets", seeded)
    app = create_app(settings, hooks)
    # Faust's worker command line overrides the app's web_enabled (it defaults to
    # --with-web), so the choice is passed here: several workers on one host must not
    # all try to bind port 6066.
    web = (
        ["--with-web", "--web-port", str(settings.web_port), "--web-bind", settings.bind_host]
        if settings.web_port
        else ["--without-web"]
    )
    sys.argv = ["moodpipe", "worker", "--loglevel", "info", *web, *faust_args]
    app.main()
