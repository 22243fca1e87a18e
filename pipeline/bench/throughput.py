"""`moodpipe bench`: the pipeline against the bare model, in one run on this machine.

1. model-only, in-process: the same ONNX model and tokenizer through onnxruntime,
   the same texts, the same batch size, one batch after another;
2. model-only, through Triton: the same batches sent straight to the `emotion`
   ensemble over gRPC;
3. pipeline: a burst of N posts produced to Kafka while a worker runs; throughput is
   N / (last row inserted - first record produced);
4. latency: posts produced at half the measured pipeline rate, p50/p99 of
   (row inserted in ClickHouse - Kafka record timestamp);
5. the same burst through a worker with alerting off (no scored topic, no alert
   agents): the ratio is what alerting costs the scoring path.
The figures that matter are the ratios, which hold across machines better than
absolute rates.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pipeline.connections.topics import ensure_topics
from pipeline.inference.onnx_local import LocalEmotionModel
from pipeline.inference.triton_client import TritonEmotionClient
from pipeline.local.runtime import LocalRuntime
from pipeline.local.worker import start_worker, stop_worker
from pipeline.settings import Settings
from pipeline.sink.clickhouse import ClickHouseSink, connect
from pipeline.traffic import SampleRecord, produce, sample_posts


def _model_only_local(texts: list[str], batch_size: int) -> float:
    model = LocalEmotionModel()
    model.score(texts[:batch_size])  # warm-up: session init, allocator
    started = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        model.score(texts[i : i + batch_size])
    return len(texts) / (time.perf_counter() - started)


async def _model_only_triton(settings: Settings, texts: list[str], batch_size: int) -> float:
    client = TritonEmotionClient(
        settings.triton_url, settings.model_name, tls=settings.triton_tls_options
    )
    try:
        await client.score(texts[:batch_size])
        started = time.perf_counter()
        for i in range(0, len(texts), batch_size):
            await client.score(texts[i : i + batch_size])
        return len(texts) / (time.perf_counter() - started)
    finally:
        await client.close()


async def _paced_produce(settings: Settings, records: list[SampleRecord], rate: float) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**settings.kafka.client_options(), acks="all")
    await producer.start()
    try:
        started = time.perf_counter()
        for i, record in enumerate(records):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(settings.posts_topic, value=record.value, key=record.key)
        await producer.flush()
    finally:
        await producer.stop()


def _wait_rows(settings: Settings, prefix: str, expected: int, progress: Progress,
               label: str, timeout: float = 1800) -> None:  # fmt: skip
    client = connect(settings, settings.clickhouse_database)
    task = progress.add_task(label, total=expected)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # On the events table, not the dedup view (52 ms against 13 ms on a bench
        # database of 500,000 rows), once a second: this poll shares the CPU with the
        # pipeline it measures, and the figures come from the rows' own timestamps.
        n = int(client.command(  # type: ignore[arg-type]
            "SELECT uniqExact(event_id) FROM scored_events WHERE startsWith(event_id, {p:String})",
            parameters={"p": prefix},
        ))  # fmt: skip
        progress.update(task, completed=n)
        if n >= expected:
            return
        time.sleep(1.0)
    raise TimeoutError(f"{label}: only part of {expected} rows landed in {timeout:.0f}s")


def _paced_latency(
    settings: Settings, tag: str, rate: float, console: Console
) -> tuple[float, float]:
    """p50 and p99 produce -> row (ms) of 20 s of posts produced at `rate` per second."""
    paced = sample_posts(max(50, int(rate * 20)), run_id=f"{tag}-paced", seed=102)
    with Progress(console=console) as progress:
        asyncio.run(_paced_produce(settings, paced, rate))
        _wait_rows(settings, f"{tag}-paced", len(paced), progress, f"paced at {rate:.0f}/s")
    client = connect(settings, settings.clickhouse_database)
    try:
        p50, p99 = client.query(
            "SELECT quantile(0.5)(d), quantile(0.99)(d) FROM (SELECT "
            "dateDiff('millisecond', produced_at, inserted_at) AS d FROM scored_events_dedup "
            "WHERE startsWith(event_id, {p:String}))",
            parameters={"p": f"{tag}-paced"},
        ).result_rows[0]
    finally:
        client.close()
    return float(p50), float(p99)


def _burst_rate(
    settings: Settings,
    topic: str,
    tag: str,
    events: int,
    console: Console,
    before_burst: Any = None,
) -> float:
    """Warm the running worker(s) up, then time a burst: events / (last row - first
    produce). `before_burst()` runs between the two (e.g. to sample CPU times)."""
    with Progress(console=console) as progress:
        warm = sample_posts(settings.batch_size * 4, run_id=f"{tag}-warm", seed=100)
        asyncio.run(produce(settings.kafka, topic, warm))
        _wait_rows(settings, f"{tag}-warm", len(warm), progress, f"warm-up ({tag})")
        if before_burst is not None:
            before_burst()
        burst = sample_posts(events, run_id=f"{tag}-burst", seed=101)
        asyncio.run(produce(settings.kafka, topic, burst))
        _wait_rows(settings, f"{tag}-burst", len(burst), progress, f"burst ({tag})")
    client = connect(settings, settings.clickhouse_database)
    try:
        first, last = client.query(
            "SELECT min(produced_at), max(inserted_at) FROM scored_events_dedup "
            "WHERE startsWith(event_id, {p:String})",
            parameters={"p": f"{tag}-burst"},
        ).result_rows[0]
    finally:
        client.close()
    return events / max((last - first).total_seconds(), 1e-3)


def _bench_settings(base: Settings, tag: str, batch: int, **extra: Any) -> tuple[Settings, dict]:
    overrides = {
        "posts_topic": f"{tag}-posts",
        "tickets_topic": f"{tag}-tickets",
        "dead_letter_topic": f"{tag}-dead-letters",
        "scored_topic": f"{tag}-scored",
        "alerts_topic": f"{tag}-alerts",
        "app_id": f"moodpipe-{tag}",
        "clickhouse_database": "moodpipe_bench",
        "batch_size": batch,
        **extra,
    }
    env = {f"MOODPIPE_{k.upper()}": str(v) for k, v in overrides.items()}
    return base.model_copy(update=overrides), env


def run_bench(
    base: Settings, events: int, batch_size: int | None, json_out: str | None, console: Console
) -> dict[str, Any]:
    tag = f"bench{int(time.time())}"
    batch = batch_size or base.batch_size
    settings, env = _bench_settings(base, tag, batch)
    runtime = LocalRuntime(settings)
    console.rule(f"[bold]moodpipe bench: {events} events, batch {batch}")
    runtime.up()
    asyncio.run(ensure_topics(settings))
    ClickHouseSink(settings).migrate()

    burst = sample_posts(events, run_id=f"{tag}-burst", seed=101)
    texts = [json.loads(r.value)["text"] for r in burst]
    console.print("model only, in-process onnxruntime ...")
    local_rate = _model_only_local(texts, batch)
    console.print("model only, through Triton (gRPC) ...")
    triton_rate = asyncio.run(_model_only_triton(settings, texts, batch))

    worker = start_worker(runtime.log_path(f"worker-{tag}"), env)
    try:
        pipeline_rate = _burst_rate(settings, settings.posts_topic, tag, events, console)
        rate = pipeline_rate / 2
        p50, p99 = _paced_latency(settings, tag, rate, console)
    finally:
        stop_worker(worker)

    # The same burst through a worker without the alert agents and scored topic:
    # what alerting costs the scoring path.
    plain_tag = f"{tag}-plain"
    plain_env = {**env, "MOODPIPE_ALERTS_ENABLED": "false", "MOODPIPE_APP_ID": plain_tag,
                 "MOODPIPE_POSTS_TOPIC": f"{plain_tag}-posts"}  # fmt: skip
    plain = settings.model_copy(update={"posts_topic": f"{plain_tag}-posts"})
    asyncio.run(ensure_topics(plain, [plain.posts_topic]))
    worker = start_worker(runtime.log_path(f"worker-{plain_tag}"), plain_env)
    try:
        plain_rate = _burst_rate(settings, plain.posts_topic, plain_tag, events, console)
    finally:
        stop_worker(worker)

    result = {
        "events": events,
        "batch_size": batch,
        "model_only_inprocess_per_s": round(local_rate, 1),
        "model_only_triton_per_s": round(triton_rate, 1),
        "pipeline_per_s": round(pipeline_rate, 1),
        "ratio_pipeline_vs_inprocess": round(pipeline_rate / local_rate, 3),
        "ratio_pipeline_vs_triton": round(pipeline_rate / triton_rate, 3),
        "pipeline_without_alerts_per_s": round(plain_rate, 1),
        "ratio_with_vs_without_alerts": round(pipeline_rate / plain_rate, 3),
        "latency_rate_per_s": round(rate, 1),
        "latency_p50_ms": float(p50),
        "latency_p99_ms": float(p99),
    }
    return _report(result, "moodpipe bench (same run, same machine)", json_out, console)


def _report(result: dict[str, Any], title: str, json_out: str | None, console: Console) -> dict:
    table = Table("measure", "value", title=title)
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n")
    return result


# --- the pipeline's own ceiling, with a near-free model ------------------------------

PROCESSES = ("worker", "kafka", "triton", "clickhouse")


def _cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds of each named group of processes and their children."""
    import psutil

    out: dict[str, float] = {}
    for name, group in pids.items():
        total = 0.0
        for pid in group:
            try:
                proc = psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    times = p.cpu_times()
                    total += times.user + times.system
            except psutil.Error:
                continue
        out[name] = total
    return out


def _service_pids(runtime: LocalRuntime) -> dict[str, list[int]]:
    return {s.name: [s.pid] for s in runtime.status() if s.pid is not None}


def _ceiling(
    runtime: LocalRuntime,
    settings: Settings,
    env: dict[str, str],
    tag: str,
    events: int,
    console: Console,
    workers: int = 1,
) -> tuple[float, dict[str, float], list[Any]]:
    """Burst rate through `workers` workers, and CPU seconds per 1,000 events of each
    process (worker(s), broker, tritonserver with its model stubs, ClickHouse front)."""
    asyncio.run(ensure_topics(settings))
    procs = [start_worker(runtime.log_path(f"worker-{tag}-{i}"), env) for i in range(workers)]
    pids: dict[str, list[int]] = {}
    before: dict[str, float] = {}

    def sample() -> None:
        pids.update({**_service_pids(runtime), "worker": [p.pid for p in procs]})
        before.update(_cpu_seconds(pids))

    try:
        rate = _burst_rate(settings, settings.posts_topic, tag, events, console, sample)
        after = _cpu_seconds(pids)
        cpu = {name: round((after[name] - before[name]) * 1000 / events, 3) for name in after}
        return rate, cpu, procs
    except BaseException:
        for proc in procs:
            stop_worker(proc)
        raise


def run_null_bench(
    base: Settings, events: int, batch_size: int | None, json_out: str | None, console: Console
) -> dict[str, Any]:
    """The pipeline's own ceiling: the same bench with `emotion_null` (constant scores)."""
    stamp = int(time.time())
    batch = batch_size or base.batch_size
    runtime = LocalRuntime(base)
    console.rule(f"[bold]moodpipe bench --null-model: {events} events, batch {batch}")
    runtime.up()
    result: dict[str, Any] = {"events": events, "batch_size": batch, "model": "emotion_null"}

    settings, env = _bench_settings(base, f"null{stamp}", batch, model_name="emotion_null")
    ClickHouseSink(settings).migrate()
    texts = [json.loads(r.value)["text"] for r in sample_posts(events, run_id="t", seed=101)]
    console.print("null model only, through Triton (gRPC) ...")
    result["null_model_triton_only_per_s"] = round(
        asyncio.run(_model_only_triton(settings, texts, batch)), 1
    )

    rate, cpu, procs = _ceiling(runtime, settings, env, f"null{stamp}", events, console)
    try:
        result["ceiling_alerts_on_per_s"] = round(rate, 1)
        result["cpu_s_per_1000_alerts_on"] = cpu
        paced_rate = rate / 2
        p50, p99 = _paced_latency(settings, f"null{stamp}", paced_rate, console)
        result["latency_rate_per_s"] = round(paced_rate, 1)
        result["latency_p50_ms_alerts_on"] = float(p50)
        result["latency_p99_ms_alerts_on"] = float(p99)
    finally:
        for proc in procs:
            stop_worker(proc)

    off, off_env = _bench_settings(base, f"nulloff{stamp}", batch, model_name="emotion_null",
                                   alerts_enabled=False)  # fmt: skip
    rate, cpu, procs = _ceiling(runtime, off, off_env, f"nulloff{stamp}", events, console)
    for proc in procs:
        stop_worker(proc)
    result["ceiling_alerts_off_per_s"] = round(rate, 1)
    result["cpu_s_per_1000_alerts_off"] = cpu

    two, two_env = _bench_settings(base, f"nulltwo{stamp}", batch, model_name="emotion_null")
    rate, cpu, procs = _ceiling(runtime, two, two_env, f"nulltwo{stamp}", events, console, 2)
    for proc in procs:
        stop_worker(proc)
    result["ceiling_two_workers_alerts_on_per_s"] = round(rate, 1)
    result["cpu_s_per_1000_two_workers_alerts_on"] = cpu

    return _report(result, "moodpipe bench --null-model (same run)", json_out, console)
