"""`moodpipe bench` and `bench-model`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from pipeline.cli.output import console, progress_console
from pipeline.settings import load_settings


def _show(report: object, json_out: str | None) -> None:
    """A bench's figures on the console, and as JSON in `json_out` when given."""
    console.print_json(json.dumps(report))
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=1) + "\n")


@click.command("bench-model")
@click.option("--seconds", default=6.0, show_default=True, help="measuring time per cell")
@click.option("--json-out", type=click.Path(dir_okay=False))
@click.option(
    "--vad-overhead", is_flag=True,
    help="only the VAD head's cost: the English graph with and without it, in-process",
)  # fmt: skip
@click.option(
    "--explain-cost", is_flag=True,
    help="only what an alert explanation costs against scoring the text once",
)  # fmt: skip
@click.option(
    "--triton/--local", "use_triton", default=False,
    help="with --explain-cost: through the running Triton, or in-process",
)  # fmt: skip
def bench_model(
    seconds: float, json_out: str | None, vad_overhead: bool, explain_cost: bool,
    use_triton: bool,
) -> None:  # fmt: skip
    """Model throughput: batch 1/8/64, in-process vs Triton HTTP/gRPC, fp32 vs int8."""
    if explain_cost:
        from pipeline.bench.explain import run_explain_cost

        with progress_console.status("explaining the written threads' customer turns"):
            report = run_explain_cost(load_settings(), use_triton)
        _show(report, json_out)
        return
    if vad_overhead:
        from pipeline.bench.vad import run_vad_overhead
        from pipeline.traffic.generate import sample_texts

        with progress_console.status("scoring 2,000 texts with and without the VAD head"):
            report = run_vad_overhead(list(sample_texts()[:2000]))
        _show(report, json_out)
        return
    from pipeline.bench.model import run_model_bench

    rows = run_model_bench(load_settings(), seconds)
    table = Table("variant", "path", "batch", "texts/s", title="emotion model throughput")
    for r in rows:
        table.add_row(r["variant"], r["path"], str(r["batch"]), f"{r['texts_per_s']:.1f}")
    console.print(table)
    if json_out:
        Path(json_out).write_text(json.dumps(rows, indent=1) + "\n")


@click.command()
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
@click.option(
    "--detector",
    is_flag=True,
    help="alert detection only: µs per ticket, support-thread turns vs one-message tickets",
)
def bench(
    events: int,
    batch_size: int | None,
    json_out: str | None,
    null_model: bool,
    redaction: bool,
    detector: bool,
) -> None:
    """Pipeline vs model-only throughput, and produce-to-visible latency."""
    if detector:
        from pipeline.bench.detector import run_detector_bench

        report = run_detector_bench()
        _show(report, json_out)
        return
    if redaction:
        from pipeline.bench.redaction import run_redaction_bench

        run_redaction_bench(json_out, console)
        return
    from pipeline.bench.throughput import run_bench, run_null_bench

    run = run_null_bench if null_model else run_bench
    run(load_settings(), events, batch_size, json_out, console)


COMMANDS = [bench, bench_model]
