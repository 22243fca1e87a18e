"""Running `moodpipe worker` as a child process (demo, bench and tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

WORKER_COMMAND = ("-m", "pipeline.cli", "worker")


def start_worker(
    log_path: Path, env: dict[str, str] | None = None, command: tuple[str, ...] = WORKER_COMMAND
) -> subprocess.Popen[bytes]:
    """`moodpipe worker` (or `command`, arguments to the interpreter) with its output in
    `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """Graceful stop (SIGTERM lets Faust commit acked offsets), SIGKILL if stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def kill_worker(proc: subprocess.Popen[bytes]) -> None:
    """kill -9, as a crash: nothing gets a chance to commit or flush."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
