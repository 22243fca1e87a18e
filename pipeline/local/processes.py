"""Start, find and stop the runtime's own processes, by PID file.

A PID file records the PID and a marker from the command line, so `down` never
signals a process that merely reused the PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    pid: int
    marker: str


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def is_running(proc: ManagedProcess) -> bool:
    try:
        os.kill(proc.pid, 0)
    except OSError:
        return False
    state = _proc_state(proc.pid)
    return state not in ("Z", "X") and proc.marker in _cmdline(proc.pid)


def _proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return stat.rsplit(")", 1)[1].split()[0]


def read_pid_file(path: Path) -> ManagedProcess | None:
    try:
        info = json.loads(path.read_text())
        return ManagedProcess(info["name"], int(info["pid"]), info["marker"])
    except (OSError, ValueError, KeyError):
        return None


def spawn(
    name: str,
    cmd: list[str],
    *,
    log_path: Path,
    pid_path: Path,
    marker: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[ManagedProcess, subprocess.Popen[bytes]]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group: stopped as a unit
        )
    proc = ManagedProcess(name, popen.pid, marker)
    pid_path.write_text(json.dumps({"name": name, "pid": popen.pid, "marker": marker}))
    return proc, popen


def stop(proc: ManagedProcess, timeout: float = 20.0, sig: int = signal.SIGTERM) -> bool:
    """Signal the process group, wait, then SIGKILL. True if it was running."""
    if not is_running(proc):
        return False
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(proc):
            _reap(proc.pid)
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    _reap(proc.pid)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
