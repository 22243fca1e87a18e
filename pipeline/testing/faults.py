"""Faults injected into a worker for tests, through the worker's hooks; production
workers never load this module.

`python -m pipeline.testing.faults --crash-after-storing N` runs a worker (settings
from the environment, like `moodpipe worker`) whose scoring agents fail N times right
after a batch is stored and before it is acked: the worst place to fail.
"""

from __future__ import annotations

import argparse
import logging

from pipeline.scoring import BatchResult
from pipeline.settings import load_settings
from pipeline.worker.context import WorkerHooks
from pipeline.worker.run import run_worker


class InjectedCrashError(RuntimeError):
    """Raised on purpose to test crash recovery."""


class CrashAfterStoring:
    def __init__(self, times: int) -> None:
        self.left = times

    def __call__(self, result: BatchResult) -> None:
        if self.left > 0 and result.scored:
            self.left -= 1
            raise InjectedCrashError(f"injected crash after storing {result.scored} events")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.testing.faults")
    parser.add_argument("--crash-after-storing", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    for noisy in ("aiokafka", "kafka", "clickhouse_connect"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    crashes = CrashAfterStoring(args.crash_after_storing)
    run_worker(load_settings(), hooks=WorkerHooks(after_stored=crashes))


if __name__ == "__main__":
    main()
