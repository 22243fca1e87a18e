"""`moodpipe local up|down|status` and `moodpipe demo`: the local runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.table import Table

from pipeline.cli.errors import CommandError
from pipeline.cli.output import console
from pipeline.settings import load_settings

if TYPE_CHECKING:
    from pipeline.local.runtime import LocalRuntime


def _runtime() -> LocalRuntime:
    # Imported here: `moodpipe worker` should not load the runtime's modules.
    from pipeline.local.runtime import LocalRuntime

    return LocalRuntime(load_settings())


@click.group()
def local() -> None:
    """The local runtime: Kafka, tritonserver and embedded ClickHouse on 127.0.0.1."""


@local.command("up")
@click.argument("services", nargs=-1)
def local_up(services: tuple[str, ...]) -> None:
    """Start the services (all by default) and wait until each is healthy."""
    from pipeline.local.runtime import LocalRuntimeError

    try:
        _runtime().up(services or None)
    except LocalRuntimeError as exc:
        raise CommandError(str(exc)) from exc
    _print_status()


@local.command("down")
@click.argument("services", nargs=-1)
def local_down(services: tuple[str, ...]) -> None:
    """Stop the services this runtime started (by PID)."""
    stopped = _runtime().down(services or None)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@local.command("status")
def local_status() -> None:
    """Show what is running (exit 3 when something is not healthy)."""
    if not _print_status():
        raise SystemExit(3)


def _print_status() -> bool:
    table = Table("service", "state", "pid", "healthy", "endpoint")
    statuses = _runtime().status()
    for s in statuses:
        table.add_row(s.name, s.state, str(s.pid or ""), "yes" if s.healthy else "no", s.endpoint)
    console.print(table)
    return all(s.healthy for s in statuses if s.state != "not used")


@click.command()
@click.option("--posts", default=3000, show_default=True, help="posts to produce")
@click.option(
    "--tickets",
    default=1500,
    show_default=True,
    help="ticket turns, as support threads of ~4 turns",
)
@click.option("--bad/--no-bad", default=True, show_default=True, help="include bad records")
@click.option("--keep-running", is_flag=True, help="leave the local runtime up afterwards")
def demo(posts: int, tickets: int, bad: bool, keep_running: bool) -> None:
    """Start everything, stream sample traffic through the pipeline, show what landed."""
    from pipeline.local.demo import run_demo
    from pipeline.local.runtime import LocalRuntimeError

    try:
        ok = run_demo(load_settings(), posts, tickets, bad, keep_running, console)
    except LocalRuntimeError as exc:
        raise CommandError(str(exc)) from exc
    raise SystemExit(0 if ok else 1)


COMMANDS = [local, demo]
