"""The `moodpipe` command: one module per command group, each command a thin shell
over a function of the package that is tested without click.

| group | module | commands |
|---|---|---|
| worker | `worker` | worker |
| local runtime | `local` | local up/down/status, demo |
| data and recordings | `data` | migrate, topics, record, replay, recording-info |
| alerts | `alerts` | alerts check, alerts playbook, alerts list |
| analytics | `analytics` | sql, report, dashboards generate/publish |
| model | `model` | score, explain, train, export, eval, model build |
| bench | `bench` | bench, bench-model |

Errors: one line on stderr and a non-zero exit (`errors.py`); -v adds the traceback.
"""

from __future__ import annotations

import logging

import click

from pipeline.cli import alerts, analytics, bench, data, local, model, worker
from pipeline.cli.errors import MoodpipeGroup


@click.group(cls=MoodpipeGroup)
@click.option("-v", "--verbose", is_flag=True, help="debug logging, and tracebacks of errors")
def main(verbose: bool) -> None:
    """moodpipe: real-time emotion analytics (Kafka -> Faust -> Triton -> ClickHouse)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Client libraries' chatter (metadata refreshes, subscriptions, their own retries)
    # hides our progress, and a refused connection would come out as three warnings
    # before our one error line: what they say is in that line, and -v shows it all.
    # (urllib3.connectionpool: clickhouse-connect sets the level of "urllib3" on import.)
    for noisy in ("aiokafka", "kafka", "clickhouse_connect", "urllib3.connectionpool"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.ERROR)


for group in (worker, local, data, alerts, analytics, model, bench):
    for command in group.COMMANDS:
        main.add_command(command)
