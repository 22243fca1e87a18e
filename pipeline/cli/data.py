"""Schema, topics and recordings: `migrate`, `topics`, `record`, `replay`,
`recording-info`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from rich.progress import Progress

from pipeline.cli.errors import CommandError, clickhouse, kafka, require_kafka
from pipeline.cli.output import console, progress_console
from pipeline.settings import load_settings


@click.command()
@click.option(
    "--cluster", default="",
    help="a ClickHouse cluster name: Replicated tables ON CLUSTER with Distributed ones in "
    "front (docs/scaling.md)",
)  # fmt: skip
@click.option("--print", "print_only", is_flag=True, help="with --cluster: print, apply nothing")
def migrate(cluster: str, print_only: bool) -> None:
    """Create or upgrade the ClickHouse schema (idempotent)."""
    settings = load_settings()
    if cluster:
        from pipeline.sink.cluster import apply_cluster_migrations, cluster_statements

        try:
            statements = cluster_statements(settings.clickhouse_database, cluster)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if print_only:
            click.echo(";\n\n".join(statements) + ";")
            return
        from pipeline.sink.clickhouse import connect

        with clickhouse(settings):
            client = connect(settings, None)
            try:
                applied = apply_cluster_migrations(client, settings.clickhouse_database, cluster)
            finally:
                client.close()
        console.print(
            f"applied on {cluster}: {', '.join(applied) or 'nothing (schema is current)'}"
        )
        return
    from pipeline.sink.clickhouse import ClickHouseSink

    with clickhouse(settings):
        applied = ClickHouseSink(settings, embedded_fallback=True).migrate()
    console.print(f"applied: {', '.join(applied) or 'nothing (schema is current)'}")


@click.command("topics")
def topics() -> None:
    """Create the input and dead-letter topics if missing."""
    from pipeline.connections.topics import ensure_topics

    settings = load_settings()
    require_kafka(settings)
    with kafka(settings):
        created = asyncio.run(ensure_topics(settings))
    console.print(f"created: {', '.join(created) or 'nothing (all exist)'}")


@click.command()
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
    from pipeline.recording.record import record_topics
    from pipeline.recording.times import parse_offsets, parse_time_ms

    settings = load_settings()
    try:
        ranges = parse_offsets(offsets, list(topics)) if offsets else None
        start = parse_time_ms(from_time) if from_time else None
        until = parse_time_ms(until_time) if until_time else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    require_kafka(settings)
    with Progress(console=progress_console) as progress, kafka(settings):
        task = progress.add_task(f"recording {', '.join(topics)}", total=None)
        try:
            trailer = asyncio.run(
                record_topics(
                    settings.kafka,
                    list(topics),
                    Path(output),
                    from_time_ms=start,
                    until_time_ms=until,
                    offsets=ranges,
                    on_start=lambda n: progress.update(task, total=n),
                    on_progress=lambda n: progress.advance(task, n),
                )
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
    console.print(
        f"recorded {trailer['records']} records in {trailer['blocks']} blocks to {output}"
    )


@click.command()
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
    from pipeline.recording.format import RecordingError
    from pipeline.recording.replay import recorded_count, replay_recording
    from pipeline.recording.times import parse_time_ms

    settings = load_settings()
    try:
        topic_map = dict(m.split("=", 1) for m in mapping)
        start = parse_time_ms(from_time) if from_time else None
        until = parse_time_ms(until_time) if until_time else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    require_kafka(settings)
    with Progress(console=progress_console) as progress, kafka(settings):
        # A damaged or mismatched recording is the file's fault, not Kafka's: caught
        # here, inside the Kafka wrapper, so it is not reported as a broker error.
        try:
            total = recorded_count(Path(recording))
            task = progress.add_task(f"replaying {recording}", total=total)
            summary = asyncio.run(
                replay_recording(
                    Path(recording),
                    settings.kafka,
                    topic_map=topic_map,
                    speed=speed,
                    timestamps="now" if timestamps == "now" else "original",
                    from_ms=start,
                    until_ms=until,
                    partitioning="key" if partitioning == "key" else "original",
                    on_progress=lambda n: progress.advance(task, n),
                )
            )
        except (RecordingError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
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
        raise CommandError(f"{summary.error}; nothing after that point was sent", 2)


@click.command("recording-info")
@click.argument("recording", type=click.Path(exists=True, dir_okay=False))
def recording_info(recording: str) -> None:
    """Describe a recording and check every block of it."""
    from pipeline.recording.format import RecordingError, RecordingReader

    try:
        with RecordingReader(Path(recording)) as reader:
            console.print_json(json.dumps(reader.header))
            count = sum(1 for _ in reader)
            console.print_json(json.dumps(reader.trailer))
    except RecordingError as exc:
        raise CommandError(str(exc)) from exc
    console.print(f"{count} records, all blocks intact")


COMMANDS = [migrate, topics, record, replay, recording_info]
