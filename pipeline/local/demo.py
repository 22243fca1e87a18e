"""`moodpipe demo`: the whole pipeline on the local runtime with sample traffic."""

from __future__ import annotations

import asyncio
import base64
import random
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.connections.topics import ensure_topics
from pipeline.local.runtime import LocalRuntime
from pipeline.local.worker import start_worker, stop_worker
from pipeline.settings import Settings
from pipeline.sink.clickhouse import ClickHouseSink, connect
from pipeline.sink.dead_letters import read_dead_letters
from pipeline.traffic import (
    SampleRecord,
    bad_records,
    produce,
    sample_multilingual_posts,
    sample_posts,
)
from pipeline.traffic.threads import sample_threads


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    )  # fmt: skip


def run_demo(
    settings: Settings, n_posts: int, n_tickets: int, with_bad: bool, keep_running: bool,
    console: Console,
) -> bool:  # fmt: skip
    runtime = LocalRuntime(settings)
    console.rule("[bold]moodpipe demo")
    console.print("starting Kafka, tritonserver and ClickHouse on 127.0.0.1 ...")
    runtime.up()
    worker = None
    try:
        asyncio.run(ensure_topics(settings))
        ClickHouseSink(settings).migrate()
        run_started = datetime.now(UTC)
        run_id = "demo-" + run_started.strftime("%Y%m%dT%H%M%S")
        # One post in ten is in another language, half of those without `lang`.
        n_foreign = n_posts // 10
        posts = sample_posts(n_posts - n_foreign, run_id=run_id)
        posts += sample_multilingual_posts(n_foreign, run_id=run_id)
        posts = [posts[i] for i in random.Random(5).sample(range(len(posts)), len(posts))]
        # Tickets are support threads: hand-written customer, agent and bot turns.
        tickets = sample_threads(max(4, n_tickets // 4), run_id=run_id)
        bad_posts = bad_records("post", run_id=run_id) if with_bad else []
        bad_tickets = bad_records("ticket", run_id=run_id) if with_bad else []
        bad = bad_posts + bad_tickets
        worker = start_worker(runtime.log_path("worker"))
        console.print(f"worker started (pid {worker.pid}, log {runtime.log_path('worker')})")
        started = time.time()
        with _progress(console) as progress:
            task = progress.add_task(
                "producing to Kafka", total=len(posts) + len(tickets) + len(bad)
            )

            async def produce_all() -> None:
                advance = lambda n: progress.advance(task, n)  # noqa: E731
                await produce(settings.kafka, settings.posts_topic,
                              _interleave(posts, bad_posts), advance)  # fmt: skip
                await produce(settings.kafka, settings.tickets_topic,
                              _interleave(tickets, bad_tickets), advance)  # fmt: skip

            asyncio.run(produce_all())
            landed = _wait_for_results(settings, run_id, len(posts) + len(tickets), bad,
                                       progress, worker)  # fmt: skip
        elapsed = time.time() - started
        ok = landed
        _report(settings, run_id, bad, elapsed, console, run_started)
        _picture(settings, console)
        if not ok:
            console.print(f"[red]not everything landed; see {runtime.log_path('worker')}[/]")
        return ok
    finally:
        if worker is not None:
            stop_worker(worker)
        if keep_running:
            console.print("the local runtime is still running: `moodpipe local down` stops it")
        else:
            runtime.down()


def _interleave(good: list[SampleRecord], bad: list[SampleRecord]) -> list[SampleRecord]:
    """Bad records spread through the stream, as they arrive in real life."""
    if not bad:
        return good
    out = list(good)
    step = max(1, len(good) // (len(bad) + 1))
    for i, record in enumerate(bad):
        out.insert(min(len(out), (i + 1) * step + i), record)
    return out


def _wait_for_results(
    settings: Settings, run_id: str, expected_scored: int, bad: list[SampleRecord],
    progress: Progress, worker: subprocess.Popen[bytes], timeout: float = 900.0,
) -> bool:  # fmt: skip
    client = connect(settings, settings.clickhouse_database)
    scored_task = progress.add_task("scored into ClickHouse", total=expected_scored)
    dead_task = progress.add_task("dead-lettered", total=len(bad))
    bad_values = {r.value for r in bad}
    deadline = time.monotonic() + timeout
    scored = dead = 0
    while time.monotonic() < deadline:
        scored = int(client.command(  # type: ignore[arg-type]
            "SELECT count() FROM scored_events FINAL WHERE startsWith(event_id, {p:String})",
            parameters={"p": run_id},
        ))  # fmt: skip
        letters = asyncio.run(read_dead_letters(settings.kafka, settings.dead_letter_topic))
        dead = sum(1 for d in letters if base64.b64decode(d["value_b64"]) in bad_values)
        progress.update(scored_task, completed=scored)
        progress.update(dead_task, completed=dead)
        if scored >= expected_scored and dead >= len(bad):
            return True
        if worker.poll() is not None:  # the worker died: report what landed
            return False
        time.sleep(1.0)
    return False


def _picture(settings: Settings, console: Console) -> None:
    """The main panels as a PNG (`moodpipe report`), for a look without Grafana."""
    from pipeline.analytics.report import load_report, render_png

    client = connect(settings, settings.clickhouse_database)
    try:
        path = render_png(load_report(client, hours=1.5), settings.data_dir / "report.png")
    except ValueError as exc:
        console.print(f"no picture: {exc}")
        return
    finally:
        client.close()
    console.print(f"[bold]picture of this run:[/] {path.resolve()}")


def _report_alerts(client: Any, started_at: datetime, console: Console) -> None:
    """Alerts this run raised; they trail the scored rows by a moment, so wait for them."""
    query = "SELECT count() FROM alerts_dedup WHERE raised_at >= {t:DateTime64(3)}"
    counts: list[int] = []
    for _ in range(30):  # until the count holds still for 3 s (at most 30 s)
        counts.append(int(client.command(query, parameters={"t": started_at})))
        if len(counts) >= 4 and len(set(counts[-4:])) == 1:
            break
        time.sleep(1.0)
    table = Table(title="Alerts raised (alerts table; also on the alerts topic)")
    for col in ("event time", "kind", "severity", "brand", "subject", "message"):
        table.add_column(col)
    rows = client.query(
        "SELECT event_time, kind, severity, brand, subject, message FROM alerts_dedup "
        "WHERE raised_at >= {t:DateTime64(3)} ORDER BY event_time LIMIT 12",
        parameters={"t": started_at},
    ).result_rows
    for when, *rest in rows:
        message = rest[-1] if len(rest[-1]) <= 80 else rest[-1][:77] + "..."
        table.add_row(when.strftime("%H:%M:%S"), *rest[:-1], message)
    console.print(table)
    if counts and counts[-1] > len(rows):
        console.print(f"... {counts[-1] - len(rows)} more: `moodpipe alerts list`")


def _report_threads(client: Any, where: str, params: dict[str, Any], console: Console) -> None:
    table = Table(title="Support threads, the most worsened first (threads view; mood -1..1 "
                        "of the customer's turns)")  # fmt: skip
    for col in ("thread", "brand", "product", "turns", "first", "current", "worst",
                "last reply", "worsened", "recovered"):  # fmt: skip
        table.add_column(col)
    rows = client.query(
        f"""SELECT thread_id, brand, product, turns, first_mood, current_mood, worst_mood,
               last_reply_mood, worsened, recovered
            FROM threads WHERE {where.replace("event_id", "thread_id")} AND turns > 1
            ORDER BY current_mood - first_mood LIMIT 8""",
        parameters=params,
    ).result_rows
    for thread, brand, product, turns, first, current, worst, reply, worse, back in rows:
        table.add_row(thread.rsplit("-", 1)[-1], brand, product, str(turns), f"{first:+.2f}",
                      f"{current:+.2f}", f"{worst:+.2f}",
                      "" if reply is None else f"{reply:+.2f}", "yes" if worse else "",
                      "yes" if back else "")  # fmt: skip
    console.print(table)


def _report_explained(client: Any, started_at: datetime, console: Console) -> None:
    """One alert about a text: the words behind it, and the reply the playbook suggests."""
    import json

    rows = client.query(
        "SELECT kind, subject, message, explanation, reply FROM alerts_dedup "
        "WHERE raised_at >= {t:DateTime64(3)} AND explanation != '' AND reply != '' "
        "ORDER BY kind = 'thread_worsening' DESC, event_time LIMIT 1",
        parameters={"t": started_at},
    ).result_rows
    if not rows:
        return
    kind, subject, message, explanation, reply = rows[0]
    text = json.loads(explanation)["texts"][0]
    advice = json.loads(reply)
    console.rule(f"[bold]Why flagged: {kind} {subject}")
    console.print(message, highlight=False)
    words = Table(title=f"Words behind the {text['target']} score {text['score']:.2f} "
                        f"({text['model']}, leave-one-word-out)")  # fmt: skip
    words.add_column("word")
    words.add_column("score without it", justify="right")
    for w in text.get("top", []):
        words.add_row(w["word"], f"-{w['delta']:.3f}")
    console.print(words)
    console.print(f"[bold]Suggested reply[/] (playbook {advice['playbook']} v"
                  f"{advice['playbook_version']}, entry {advice['entry']}): tone: "
                  f"{advice['tone']}; next step: {advice['next_step']}")  # fmt: skip
    console.print(f"  \u201c{advice['draft']}\u201d", highlight=False)


def _report_languages(client: Any, where: str, params: dict[str, Any], console: Console) -> None:
    table = Table(title="Languages (declared, or detected when the record had none)")
    for col in ("lang", "coverage", "model", "events", "detected", "mood index", "top Ekman"):
        table.add_column(col, justify="right" if col in ("events", "detected", "mood index")
                         else "left")  # fmt: skip
    rows = client.query(
        f"""SELECT lang, model_coverage, model_name, count() AS n,
               countIf(lang_declared = ''), round(avg(sentiment_score), 3),
               topK(1)(ekman)[1]
            FROM scored_events FINAL WHERE {where}
            GROUP BY lang, model_coverage, model_name ORDER BY n DESC""",
        parameters=params,
    ).result_rows
    for lang, coverage, model_name, n, detected, mood, ekman in rows:
        table.add_row(lang, coverage, model_name, str(n), str(detected), f"{mood:+.3f}", ekman)
    console.print(table)


def _report(settings: Settings, run_id: str, bad: list[SampleRecord], elapsed: float,
            console: Console, started_at: datetime) -> None:  # fmt: skip
    client = connect(settings, settings.clickhouse_database)
    where = "startsWith(event_id, {p:String})"
    params = {"p": run_id}

    table = Table(title="What landed in ClickHouse (scored_events, deduplicated)")
    for col in ("source", "brand", "events", "mood index", "valence", "arousal", "joy", "anger",
                "sadness", "fear", "surprise", "disgust", "neutral"):  # fmt: skip
        table.add_column(col, justify="right" if col not in ("source", "brand") else "left")
    rows = client.query(
        f"""SELECT source, brand, count() AS n, round(avg(sentiment_score), 3),
               ifNull(avg(valence), 0), ifNull(avg(arousal), 0),
               countIf(ekman='joy')/n, countIf(ekman='anger')/n, countIf(ekman='sadness')/n,
               countIf(ekman='fear')/n, countIf(ekman='surprise')/n,
               countIf(ekman='disgust')/n, countIf(ekman='neutral')/n
            FROM scored_events FINAL WHERE {where}
            GROUP BY source, brand ORDER BY source, brand""",
        parameters=params,
    ).result_rows
    for source, brand, n, mood, valence, arousal, *shares in rows:
        table.add_row(source, brand, str(n), f"{mood:+.3f}", f"{valence:.2f}", f"{arousal:.2f}",
                      *[f"{s:.0%}" for s in shares])  # fmt: skip
    console.print(table)

    _report_languages(client, where, params, console)

    angry = Table(title="Angriest tickets (anger + annoyance + disgust; intensity 0-1 from "
                        "the emotion, arousal and valence)")  # fmt: skip
    for col in ("ticket", "customer", "tier", "product", "priority", "anger", "arousal",
                "intensity", "text"):  # fmt: skip
        angry.add_column(col)
    for row in client.query(
        f"""SELECT event_id, customer_id, customer_tier, product, priority,
               anger + annoyance + disgust AS a, ifNull(arousal, 0), ifNull(intensity, 0), text
            FROM scored_events FINAL WHERE source = 'ticket' AND {where}
            ORDER BY a DESC LIMIT 5""",
        parameters=params,
    ).result_rows:
        text = row[8] if len(row[8]) <= 60 else row[8][:57] + "..."
        angry.add_row(*row[:5], f"{row[5]:.2f}", f"{row[6]:.2f}", f"{row[7]:.2f}", text)
    console.print(angry)

    _report_threads(client, where, params, console)
    if settings.alerts_enabled:
        _report_alerts(client, started_at, console)
        _report_explained(client, started_at, console)

    letters = asyncio.run(read_dead_letters(settings.kafka, settings.dead_letter_topic))
    bad_values = {r.value for r in bad}
    # At-least-once: a record re-read after a stall may be dead-lettered twice (same
    # source offset); show each once.
    unique = {(d["source_topic"], d["source_partition"], d["source_offset"]): d for d in letters}
    mine = [d for d in unique.values() if base64.b64decode(d["value_b64"]) in bad_values]
    dl = Table(title=f"Dead letters ({settings.dead_letter_topic})")
    for col in ("error", "from", "reason"):
        dl.add_column(col)
    for d in sorted(mine, key=lambda d: (d["source_topic"], d["source_offset"])):
        reason = d["reason"] if len(d["reason"]) <= 90 else d["reason"][:87] + "..."
        dl.add_row(d["error"], f"{d['source_topic']}[{d['source_partition']}]@{d['source_offset']}",
                   reason)  # fmt: skip
    console.print(dl)

    (n, first, last, p50, p99) = client.query(
        f"""SELECT count(), min(produced_at), max(inserted_at),
               quantile(0.5)(dateDiff('millisecond', produced_at, inserted_at)),
               quantile(0.99)(dateDiff('millisecond', produced_at, inserted_at))
            FROM scored_events FINAL WHERE {where}""",
        parameters=params,
    ).result_rows[0]
    span = max((last - first).total_seconds(), 1e-3) if n else 0
    console.print(
        f"[bold]{n}[/] events scored, [bold]{len(mine)}[/] dead-lettered in {elapsed:.1f}s; "
        f"throughput {n / span if span else 0:.0f} events/s from first produce to last row; "
        f"produce-to-row latency p50 {p50 / 1000:.2f}s, p99 {p99 / 1000:.2f}s "
        "(includes queueing behind the burst)"
    )
