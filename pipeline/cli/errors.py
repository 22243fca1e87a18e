"""Command-line errors like a Unix tool's: one line on stderr, a non-zero exit, no
traceback (`moodpipe -v` adds it), and for a service: which one, where, and why.

Commands raise `CommandError` for what the user must change, and run the code that
talks to a service inside `service(name, endpoint)`, which turns that service's
exceptions into one `CommandError` line. `MoodpipeGroup` prints them.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from pipeline.resilience.failures import describe

EXIT_ERROR = 1
EXIT_SETUP = 2  # a setup the command cannot run with (bad file, refused credentials)


class CommandError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ClickHouse server messages: "Code: 516. DB::Exception: default: Authentication
# failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)
# (version 26.9.1.1)" and, from clickhouse-connect, a preamble naming the URL.
_CH_CODE = re.compile(r"Code: (\d+)\. DB::Exception: (.*)", re.S)
_CH_NAME = re.compile(r"\(([A-Z][A-Z_]+)\)")
# What clickhouse-connect and the server add around the message.
_CH_NOISE = re.compile(r"\s*\((?:for url|version) (?:[^()]|\([^()]*\))*\)|\s*Stack trace:.*", re.S)
_CH_HINTS = {
    "AUTHENTICATION_FAILED": "check MOODPIPE_CLICKHOUSE_USER and MOODPIPE_CLICKHOUSE_PASSWORD",
    "REQUIRED_PASSWORD": "check MOODPIPE_CLICKHOUSE_USER and MOODPIPE_CLICKHOUSE_PASSWORD",
    "UNKNOWN_DATABASE": "check MOODPIPE_CLICKHOUSE_DATABASE, or create it with `moodpipe migrate`",
    "UNKNOWN_TABLE": "run `moodpipe migrate` to create the schema",
}
_REFUSED = (
    "Connection refused", "Failed to establish a new connection", "Errno 111",
    "Cannot connect", "Connect call failed", "UNAVAILABLE", "failed to connect",
)  # fmt: skip


def reason(exc: BaseException) -> str:
    """Why a service call failed, in one line: the server's own words, without its
    stack trace, version or our client's preamble."""
    text = str(exc)
    found = _CH_CODE.search(_CH_NOISE.sub("", text))
    if found:
        code, message = found.groups()
        names = _CH_NAME.findall(message)
        name = names[-1] if names else ""
        message = re.sub(r"\s+", " ", _CH_NAME.sub("", message)).strip().rstrip(".")
        hint = _CH_HINTS.get(name)
        return f"{message} (code {code}{', ' + name if name else ''})" + (
            f"; {hint}" if hint else ""
        )
    if any(marker in text for marker in _REFUSED) or isinstance(exc, ConnectionRefusedError):
        return "does not answer (connection refused); is it running?"
    return describe(exc, 300).replace("\n", " ")


@contextmanager
def service(name: str, endpoint: str, hint: str = "") -> Iterator[None]:
    """Run a service call; its failure becomes 'NAME at ENDPOINT: why'."""
    try:
        yield
    except (CommandError, click.exceptions.Exit, click.ClickException, KeyboardInterrupt):
        raise
    except Exception as exc:
        why = reason(exc)
        if hint and why.endswith("is it running?"):
            why += f" ({hint})"
        raise CommandError(f"{name} at {endpoint}: {why}") from exc


def clickhouse_endpoint(settings: Any) -> str:
    """Where the ClickHouse client goes, never with a password in it."""
    from urllib.parse import urlsplit

    url = settings.resolved_clickhouse_url
    parts = urlsplit(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@")
    return url


@contextmanager
def clickhouse(settings: Any) -> Iterator[None]:
    with service("ClickHouse", clickhouse_endpoint(settings), "moodpipe local up clickhouse"):
        yield


@contextmanager
def triton(settings: Any) -> Iterator[None]:
    with service("Triton", settings.triton_url, "moodpipe local up triton"):
        yield


class MoodpipeGroup(click.Group):
    """Prints what a command raised as one line on stderr and exits non-zero; the
    traceback only with -v."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommandError as exc:
            _report(ctx, exc, str(exc))
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("moodpipe: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - a command's unforeseen failure, one line
            _report(ctx, exc, f"{type(exc).__name__}: {describe(exc, 300)}")
            sys.exit(EXIT_ERROR)


def _report(ctx: click.Context, exc: BaseException, message: str) -> None:
    verbose = bool(ctx.params.get("verbose"))
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    prefix = f"moodpipe {ctx.invoked_subcommand}" if ctx.invoked_subcommand else "moodpipe"
    hint = "" if verbose or isinstance(exc, CommandError) else " (moodpipe -v shows the traceback)"
    click.echo(f"{prefix}: error: {message}{hint}", err=True)


def require_kafka(settings: Any) -> None:
    """Raise a `CommandError` when the broker refuses our credentials or TLS (exit 2) or
    does not answer (exit 1)."""
    import asyncio

    from pipeline.connections.kafka import KafkaSetupError, check_connection

    try:
        reachable = asyncio.run(check_connection(settings.kafka))
    except KafkaSetupError as exc:
        raise CommandError(str(exc), EXIT_SETUP) from exc
    if not reachable:
        raise CommandError(
            f"Kafka at {settings.kafka.describe()} does not answer; is it running? "
            "(moodpipe local up kafka starts a local broker)"
        )


@contextmanager
def kafka(settings: Any) -> Iterator[None]:
    with service("Kafka", settings.kafka.describe(), "moodpipe local up kafka"):
        yield
