"""The `moodpipe` command."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from pipeline.settings import load_settings

if TYPE_CHECKING:
    from pipeline.local.runtime import LocalRuntime

# Piped output (CI logs, `| tee`) gets a readable width instead of rich's 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=150)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
def main(verbose: bool) -> None:
    """moodpipe: real-time emotion analytics (Kafka -> Faust -> Triton -> ClickHouse)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Client libraries' chatter (metadata refreshes, subscriptions) hides our progress.
    for noisy in ("aiokafka", "kafka", "clickhouse_connect"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("faust_args", nargs=-1, type=click.UNPROCESSED)
def worker(faust_args: tuple[str, ...]) -> None:
    """Run a Faust worker (extra arguments go to `faust worker`)."""
    from pipeline.app import app, settings

    # A worker's log keeps the Kafka client's group and partition-assignment lines.
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.NOTSET)

    # Faust's worker command line overrides the app's web_enabled (it defaults to
    # --with-web), so the choice is passed here: several workers on one host must
    # not all try to bind port 6066.
    web = (
        ["--with-web", "--web-port", str(settings.web_port), "--web-bind", settings.bind_host]
        if settings.web_port
        else ["--without-web"]
    )
    sys.argv = ["moodpipe", "worker", "--loglevel", "info", *web, *faust_args]
    app.main()


@main.group()
def local() -> None:
    """The local runtime: Kafka, tritonserver and embedded ClickHouse on 127.0.0.1."""


def _runtime() -> LocalRuntime:
    # Imported here: `moodpipe worker` should not load the runtime's modules.
    from pipeline.local.runtime import LocalRuntime

    return LocalRuntime(load_settings())


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise SystemExit(1)


@local.command("up")
@click.argument("services", nargs=-1)
def local_up(services: tuple[str, ...]) -> None:
    """Start the services (all by default) and wait until each is healthy."""
    from pipeline.local.runtime import LocalRuntimeError

    try:
        _runtime().up(services or None)
    except LocalRuntimeError as exc:
        _fail(exc)
    _print_status()


@local.command("down")
@click.argument("services", nargs=-1)
def local_down(services: tuple[str, ...]) -> None:
    """Stop the services this runtime started (by PID)."""
    stopped = _runtime().down(services or None)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@local.command("status")
def local_status() -> None:
    """Show what is running."""
    if not _print_status():
        raise SystemExit(3)


def _print_status() -> bool:
    table = Table("service", "state", "pid", "healthy", "endpoint")
    statuses = _runtime().status()
    for s in statuses:
        table.add_row(s.name, s.state, str(s.pid or ""), "yes" if s.healthy else "no", s.endpoint)
    console.print(table)
    return all(s.healthy for s in statuses if s.state != "not used")


@main.command()
def migrate() -> None:
    """Create or upgrade the ClickHouse schema (idempotent)."""
    from pipeline.sink.clickhouse import ClickHouseSink

    applied = ClickHouseSink(load_settings()).migrate()
    console.print(f"applied: {', '.join(applied) or 'nothing (schema is current)'}")


@main.command("topics")
def topics() -> None:
    """Create the input and dead-letter topics if missing."""
    from pipeline.topics import ensure_topics

    created = asyncio.run(ensure_topics(load_settings()))
    console.print(f"created: {', '.join(created) or 'nothing (all exist)'}")


@main.command()
@click.option("--posts", default=3000, show_default=True, help="posts to produce")
@click.option("--tickets", default=1500, show_default=True, help="tickets to produce")
@click.option("--bad/--no-bad", default=True, show_default=True, help="include bad records")
@click.option("--keep-running", is_flag=True, help="leave the local runtime up afterwards")
def demo(posts: int, tickets: int, bad: bool, keep_running: bool) -> None:
    """Start everything, stream sample traffic through the pipeline, show what landed."""
    from pipeline.demo import run_demo
    from pipeline.local.runtime import LocalRuntimeError

    try:
        ok = run_demo(load_settings(), posts, tickets, bad, keep_running, console)
    except LocalRuntimeError as exc:
        _fail(exc)
    raise SystemExit(0 if ok else 1)


@main.command()
@click.argument("topics", nargs=-1, required=True)
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="file to write"
)
@click.option("--from-time", help="first record time: ISO 8601 or epoch ms")
@click.option("--until-time", help="last record time: ISO 8601 or epoch ms")
@click.option("--offsets", help="PARTITION:START-END or TOPIC:PARTITION:START-END, comma-separated")
def record(
    topics: tuple[str, ...],
    output: str,
    from_time: str | None,
    until_time: str | None,
    offsets: str | None,
) -> None:
    """Record topics (all partitions, up to their current end) into a file."""
    from pathlib import Path

    from rich.progress import Progress

    from pipeline.recording.record import record_topics
    from pipeline.recording.times import parse_offsets, parse_time_ms

    settings = load_settings()
    try:
        ranges = parse_offsets(offsets, list(topics)) if offsets else None
        start = parse_time_ms(from_time) if from_time else None
        until = parse_time_ms(until_time) if until_time else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    with Progress(console=console) as progress:
        task = progress.add_task(f"recording {', '.join(topics)}", total=None)
        try:
            trailer = asyncio.run(
                record_topics(
                    settings.kafka_bootstrap, list(topics), Path(output),
                    from_time_ms=start, until_time_ms=until, offsets=ranges,
                    on_start=lambda n: progress.update(task, total=n),
                    on_progress=lambda n: progress.advance(task, n),
                )
            )  # fmt: skip
        except ValueError as exc:
            _fail(exc)
    console.print(
        f"recorded {trailer['records']} records in {trailer['blocks']} blocks to {output}"
    )


@main.command()
@click.argument("recording", type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "mapping", multiple=True, help="SOURCE=TARGET topic renaming (repeatable)")
@click.option(
    "--speed",
    default=0.0,
    show_default=True,
    help="1 = original pace, 10 = ten times faster, 0 = as fast as possible",
)
@click.option(
    "--timestamps",
    type=click.Choice(["original", "now"]),
    default="original",
    show_default=True,
    help="keep record times, or shift them so the first is now",
)
@click.option("--from", "from_time", help="skip records before this time (ISO 8601 or epoch ms)")
@click.option("--until", "until_time", help="skip records after this time")
@click.option(
    "--partitioning",
    type=click.Choice(["original", "key"]),
    default="original",
    show_default=True,
    help="original: same partition numbers; key: the producer's key partitioner",
)
def replay(
    recording: str,
    mapping: tuple[str, ...],
    speed: float,
    timestamps: str,
    from_time: str | None,
    until_time: str | None,
    partitioning: str,
) -> None:
    """Replay a recording into Kafka, keeping keys, headers, partitions and order."""
    from pathlib import Path

    from rich.progress import Progress

    from pipeline.recording.format import RecordingError, RecordingReader
    from pipeline.recording.replay import replay_recording
    from pipeline.recording.times import parse_time_ms

    settings = load_settings()
    try:
        topic_map = dict(m.split("=", 1) for m in mapping)
        start = parse_time_ms(from_time) if from_time else None
        until = parse_time_ms(until_time) if until_time else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        with RecordingReader(Path(recording)) as reader:
            # The header's offset ranges bound the count (the trailer is at the far end).
            ranges = reader.header["source"].get("offsets", {}).values()
            total = sum(end - start for start, end in ranges) or None
        with Progress(console=console) as progress:
            task = progress.add_task(f"replaying {recording}", total=total)
            summary = asyncio.run(
                replay_recording(
                    Path(recording), settings.kafka_bootstrap, topic_map=topic_map, speed=speed,
                    timestamps=timestamps, from_ms=start, until_ms=until,  # type: ignore[arg-type]
                    partitioning=partitioning,  # type: ignore[arg-type]
                    on_progress=lambda n: progress.advance(task, n),
                )
            )  # fmt: skip
    except (RecordingError, ValueError) as exc:
        _fail(exc)
    console.print(
        f"replayed {summary.replayed} records"
        + (f", {summary.filtered_out} outside --from/--until" if summary.filtered_out else "")
    )
    if summary.null_records_sent_empty:
        console.print(
            f"[yellow]warning:[/] {summary.null_records_sent_empty} records had neither key nor "
            "value; the Kafka client cannot send that, so they were sent with an empty value"
        )
    if summary.error is not None:
        console.print(f"[bold red]error:[/] {summary.error}; nothing after that point was sent")
        raise SystemExit(2)


@main.command("recording-info")
@click.argument("recording", type=click.Path(exists=True, dir_okay=False))
def recording_info(recording: str) -> None:
    """Describe a recording and check every block of it."""
    import json
    from pathlib import Path

    from pipeline.recording.format import RecordingError, RecordingReader

    try:
        with RecordingReader(Path(recording)) as reader:
            console.print_json(json.dumps(reader.header))
            count = sum(1 for _ in reader)
            console.print_json(json.dumps(reader.trailer))
    except RecordingError as exc:
        _fail(exc)
    console.print(f"{count} records, all blocks intact")


@main.command()
@click.option("--events", default=4000, show_default=True, help="events to push through")
@click.option("--batch-size", default=None, type=int, help="default: MOODPIPE_BATCH_SIZE")
@click.option("--json-out", type=click.Path(), help="also write the figures as JSON")
def bench(events: int, batch_size: int | None, json_out: str | None) -> None:
    """Pipeline vs model-only throughput, and produce-to-visible latency."""
    from pipeline.bench import run_bench

    run_bench(load_settings(), events, batch_size, json_out, console)


if __name__ == "__main__":
    main()
