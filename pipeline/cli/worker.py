"""`moodpipe worker`."""

from __future__ import annotations

import click

from pipeline.alerts.yaml_file import SettingsFileError
from pipeline.cli.errors import EXIT_SETUP, CommandError
from pipeline.settings import load_settings


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("faust_args", nargs=-1, type=click.UNPROCESSED)
def worker(faust_args: tuple[str, ...]) -> None:
    """Run a Faust worker (extra arguments go to `faust worker`)."""
    from pipeline.worker.run import WorkerSetupError, run_worker

    try:
        run_worker(load_settings(), faust_args)
    except (SettingsFileError, WorkerSetupError) as exc:  # the file and line, not a traceback
        raise CommandError(str(exc), EXIT_SETUP) from exc


COMMANDS = [worker]
