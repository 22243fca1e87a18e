"""Historical analysis on the real ClickHouse engine, fed by the real pipeline.

One namespace is seeded once (posts, tickets, bad records, some re-delivered): the
rollups must agree with the same aggregates from raw events, every dashboard panel's
SQL (macros expanded as the plugin does) must run and return its columns and the
right values, every saved query must run through `moodpipe sql`, and the PNG report
must render.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.analytics.queries import saved_queries
from pipeline.dashboards.macros import expand_macros, interpolate
from pipeline.dashboards.panels import ANNOTATION_COLUMNS, ANNOTATION_SQL, DASHBOARDS
from pipeline.emotions import EKMAN_GROUPS, LABELS
from pipeline.local.runtime import LocalRuntime
from pipeline.sink.clickhouse import ClickHouseSink
from pipeline.traffic import (
    bad_records,
    produce,
    sample_multilingual_posts,
    sample_posts,
    sample_tickets,
)
from pipeline.traffic.threads import sample_threads
from tests.helpers import Namespace

pytestmark = pytest.mark.services

NOW = datetime.now(UTC).replace(microsecond=0)
FOREIGN = 40
# Support threads: customer, agent and bot turns as tickets (pipeline/traffic/threads.py).
THREADS = sample_threads(30, run_id="an", seed=34, now=NOW, spread_s=3 * 3600)
THREAD_TURNS = len(THREADS)
CUSTOMER_TURNS = sum(1 for r in THREADS if json.loads(r.value)["author_role"] == "customer")
STORED = 600 + FOREIGN + THREAD_TURNS
# Rollups and mood panels leave out what no model covers (migration 005) and our own
# agents' and bots' replies (007).
COVERED = "model_coverage != 'none' AND author_role NOT IN ('agent', 'bot')"


@pytest.fixture(scope="module")
def seeded(
    moodpipe_runtime: LocalRuntime, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Namespace]:
    log_dir = tmp_path_factory.mktemp("analytics")
    with Namespace.create(log_dir, lag_sample_interval="1") as ns:
        s = ns.settings
        posts = sample_posts(400, run_id="an", seed=31, now=NOW, spread_s=3 * 3600)
        tickets = sample_tickets(200, run_id="an", seed=32, now=NOW, spread_s=3 * 3600)
        bad = bad_records("post", run_id="an")
        # Other languages, declared or not; Swahili and Amharic have coverage 'none'.
        foreign = sample_multilingual_posts(FOREIGN, run_id="an", seed=33, now=NOW,
                                            spread_s=3 * 3600)  # fmt: skip

        async def send() -> None:
            await produce(s.kafka_bootstrap, s.posts_topic, posts + bad + foreign)
            await produce(s.kafka_bootstrap, s.tickets_topic, tickets + THREADS)

        asyncio.run(send())
        ns.start_worker()
        ns.wait_caught_up(300)
        # The same 100 posts again: re-deliveries that raw FINAL and the rollups must
        # both count once.
        asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts[:100]))
        ns.wait_caught_up(300)
        yield ns


def test_duplicates_were_really_written(seeded: Namespace) -> None:
    # pipeline_minute counts every insert (merges may already have collapsed raw rows).
    assert seeded.scalar("SELECT sum(rows) FROM pipeline_minute") == STORED + 100
    assert seeded.scalar("SELECT sum(redelivered) FROM pipeline_minute") == 100
    assert seeded.landed() == STORED


def test_rollups_agree_with_raw_events(seeded: Namespace) -> None:
    emotion_sums = ", ".join(f"sum({label})" for label in LABELS)
    ekman = ", ".join(f"countIf(ekman = '{g}')" for g in EKMAN_GROUPS)
    raw = seeded.query(
        f"""SELECT toStartOfMinute(created_at) AS m, brand, source, count(), {emotion_sums},
               countIf(sentiment = 'positive'), countIf(sentiment = 'negative'),
               round(sum(sentiment_score), 3), {ekman}
            FROM scored_events_dedup WHERE {COVERED}
            GROUP BY m, brand, source ORDER BY m, brand, source"""
    )
    rolled = seeded.query(
        f"""SELECT minute, brand, source, sum(events),
               {", ".join(f"sum({label})" for label in LABELS)},
               sum(positive), sum(negative), round(sum(sentiment_score_sum), 3),
               {", ".join(f"sum(ekman_{g})" for g in EKMAN_GROUPS)}
            FROM mood_minute GROUP BY minute, brand, source ORDER BY minute, brand, source"""
    )
    assert len(raw) == len(rolled) > 50
    for r, g in zip(raw, rolled, strict=True):
        assert r[:4] == g[:4]
        assert r[4 : 4 + len(LABELS)] == pytest.approx(g[4 : 4 + len(LABELS)], abs=1e-3)
        assert r[4 + len(LABELS) :] == pytest.approx(g[4 + len(LABELS) :], abs=2e-3)

    raw_tickets = seeded.query(
        f"""SELECT toStartOfHour(created_at) AS h, brand, product, customer_tier, count(),
                  countIf(anger + annoyance + disgust >= 0.5), countIf(sentiment = 'negative')
           FROM scored_events_dedup WHERE source = 'ticket' AND {COVERED}
           GROUP BY h, brand, product, customer_tier ORDER BY h, brand, product, customer_tier"""
    )
    rolled_tickets = seeded.query(
        """SELECT hour, brand, product, customer_tier, sum(tickets), sum(angry), sum(negative)
           FROM ticket_hour GROUP BY hour, brand, product, customer_tier
           ORDER BY hour, brand, product, customer_tier"""
    )
    assert raw_tickets == rolled_tickets


def _range(ns: Namespace) -> tuple[datetime, datetime]:
    lo, hi = ns.query("SELECT min(created_at), max(inserted_at) FROM scored_events")[0]
    lo = lo.replace(tzinfo=UTC) - timedelta(hours=1)
    return lo, max(hi.replace(tzinfo=UTC), NOW) + timedelta(hours=1)


def _variables(ns: Namespace) -> dict[str, list[str]]:
    brands = [r[0] for r in ns.query("SELECT DISTINCT brand FROM mood_minute WHERE brand != ''")]
    langs = [r[0] for r in ns.query("SELECT DISTINCT lang FROM language_minute WHERE lang != ''")]
    return {"brand": sorted(brands), "source": ["post", "ticket"], "lang": sorted(langs)}


def _run_panel(ns: Namespace, sql: str, variables: dict[str, list[str]]) -> dict[str, Any]:
    start, end = _range(ns)
    expanded = expand_macros(interpolate(sql, variables), start, end, 300)
    assert "$" not in expanded, expanded
    client_rows = ns.query_dicts(expanded)
    columns = list(client_rows[0]) if client_rows else []
    return {"rows": client_rows, "columns": columns, "sql": expanded}


def test_every_panel_query_runs_and_returns_its_columns(seeded: Namespace) -> None:
    variables = _variables(seeded)
    generated = {
        spec.uid: json.loads(
            (Path(__file__).parents[1] / "dashboards" / f"{spec.uid[9:]}.json").read_text()
        )
        for spec in DASHBOARDS
    }
    checked = 0
    for spec in DASHBOARDS:
        board = generated[spec.uid]
        by_title = {p["title"]: p for p in board["panels"]}
        for panel in spec.panels:
            sql = by_title[panel.title]["targets"][0]["rawSql"]
            result = _run_panel(seeded, sql, variables)
            assert result["rows"], f"{spec.uid} / {panel.title}: no rows\n{result['sql']}"
            assert tuple(result["columns"]) == panel.columns, panel.title
            checked += 1
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                rows = seeded.query(variable["query"])
                assert sorted(r[0] for r in rows) == variables[variable["name"]]
    assert checked == sum(len(d.panels) for d in DASHBOARDS)
    annotations = _run_panel(seeded, ANNOTATION_SQL, variables)
    assert annotations["rows"] and tuple(annotations["columns"]) == ANNOTATION_COLUMNS


def _panel_rows(ns: Namespace, uid: str, title: str) -> list[dict[str, Any]]:
    spec = next(d for d in DASHBOARDS if d.uid == uid)
    panel = next(p for p in spec.panels if p.title == title)
    return _run_panel(ns, panel.sql, _variables(ns))["rows"]


def test_panel_values_match_raw_events(seeded: Namespace) -> None:
    raw_share = {
        brand: (neg, n)
        for brand, neg, n in seeded.query(
            "SELECT brand, countIf(sentiment = 'negative'), count() FROM scored_events_dedup "
            f"WHERE {COVERED} GROUP BY brand"
        )
    }
    for row in _panel_rows(seeded, "moodpipe-brand-mood", "Negative share by brand"):
        neg, n = raw_share[row["brand"]]
        assert row["events"] == n
        assert row["negative_share"] == pytest.approx(neg / n, abs=1e-4)

    volume = _panel_rows(seeded, "moodpipe-brand-mood", "Volume")
    covered = seeded.scalar(f"SELECT count() FROM scored_events_dedup WHERE {COVERED}")
    assert sum(r["events"] for r in volume) == covered < seeded.landed()

    mix_rows = _panel_rows(seeded, "moodpipe-brand-mood", "Emotion mix (Ekman groups)")
    mix = {r["emotion"]: r["events"] for r in mix_rows}
    raw_mix = dict(seeded.query(
        f"SELECT ekman, count() FROM scored_events_dedup WHERE {COVERED} GROUP BY ekman"
    ))  # fmt: skip
    assert {k: v for k, v in mix.items() if v} == raw_mix

    worst = _panel_rows(seeded, "moodpipe-brand-mood", "Most negative posts")
    scores = [r["sentiment_score"] for r in worst]
    assert scores == sorted(scores) and len(worst) == 20
    assert scores[0] == pytest.approx(
        seeded.scalar(
            "SELECT min(sentiment_score) FROM scored_events_dedup "
            f"WHERE source='post' AND {COVERED}"
        ),
        abs=1e-3,
    )

    by_product = _panel_rows(seeded, "moodpipe-support", "Anger by product")
    assert sum(r["tickets"] for r in by_product) == 200 + CUSTOMER_TURNS

    worsening = _panel_rows(seeded, "moodpipe-support", "Threads getting worse")
    open_threads = seeded.query(
        "SELECT subject FROM alerts_dedup WHERE kind LIKE 'thread_%' GROUP BY subject "
        "HAVING argMax(kind, event_time) = 'thread_worsening'"
    )
    assert {r["thread_id"] for r in worsening} == {r[0] for r in open_threads} != set()
    moods = _panel_rows(seeded, "moodpipe-support", "Thread mood: first, current and worst")
    assert all(r["worst_mood"] <= min(r["first_mood"], r["current_mood"]) for r in moods)
    replies = _panel_rows(seeded, "moodpipe-support", "Replies followed by a calmer customer")
    agent_turns = sum(1 for r in THREADS if json.loads(r.value)["author_role"] != "customer")
    assert 0 < sum(r["replies"] for r in replies) <= agent_turns

    alerts = _panel_rows(seeded, "moodpipe-alerts", "Alert history")
    assert len(alerts) == seeded.scalar("SELECT count() FROM alerts_dedup") > 0

    letters = _panel_rows(seeded, "moodpipe-pipeline", "Recent dead letters")
    assert len(letters) == len(bad_records("post", run_id="an"))
    throughput = _panel_rows(seeded, "moodpipe-pipeline", "Throughput (rows stored per second)")
    assert sum(r["rows_per_s"] for r in throughput) * 300 == pytest.approx(STORED + 100, rel=1e-6)

    languages = _panel_rows(seeded, "moodpipe-brand-mood", "Languages")
    raw_languages = seeded.query(
        "SELECT lang, model_coverage, model_name, count(), countIf(lang_declared = '') "
        "FROM scored_events_dedup GROUP BY ALL"
    )
    assert sorted(tuple(r.values()) for r in languages) == sorted(raw_languages)
    assert {r["model_coverage"] for r in languages} == {"full", "partial", "none"}


def _moodpipe(ns: Namespace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env={**os.environ, **ns.env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_every_saved_query_runs_through_moodpipe_sql(seeded: Namespace, tmp_path: Path) -> None:
    brand = _variables(seeded)["brand"][0]
    for name, query in saved_queries().items():
        out = tmp_path / f"{name}.json"
        params = ["-p", f"brand={brand}"] if any(p.name == "brand" for p in query.params) else []
        if name in ("threads_getting_worse", "reply_effect"):  # every brand's threads
            params = []
        if name == "alert_history":  # alerts exist for the brands with angry customers only
            params = ["-p", "kind=angry_customer"]
        done = _moodpipe(seeded, "sql", name, *params, "--format", "json", "-o", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        rows = json.loads(out.read_text())
        if name != "week_over_week":  # seeded data is all from this week
            assert rows, f"{name} returned nothing"
        if rows and "brand" in rows[0] and params and name != "alert_history":
            assert {r["brand"] for r in rows} == {brand}, name
    history = json.loads((tmp_path / "alert_history.json").read_text())
    assert {r["kind"] for r in history} == {"angry_customer"}
    worst = json.loads((tmp_path / "top_negative_posts.json").read_text())
    assert [r["sentiment_score"] for r in worst] == sorted(r["sentiment_score"] for r in worst)

    csv_out = _moodpipe(seeded, "sql", "angriest_products", "-p", "min_tickets=1",
                        "--format", "csv")  # fmt: skip
    header, *lines = csv_out.stdout.strip().splitlines()
    assert header.split(",")[:3] == ["brand", "product", "tickets"]
    assert sum(int(line.split(",")[2]) for line in lines) == 200 + CUSTOMER_TURNS

    adhoc_sql = "SELECT count() AS n FROM scored_events_dedup WHERE source = {s:String}"
    adhoc = _moodpipe(seeded, "sql", adhoc_sql, "-p", "s=ticket", "--format", "json")
    assert json.loads(adhoc.stdout) == [{"n": 200 + THREAD_TURNS}]

    listed = _moodpipe(seeded, "alerts", "list", "--kind", "angry_customer", "--hours", "168",
                       "--limit", "100")  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f"{len(history)} row(s)" in listed.stdout

    bad = _moodpipe(seeded, "sql", "top_negative_posts", "-p", "nope=1")
    assert bad.returncode != 0 and "has no parameter nope" in bad.stderr


def test_png_report_renders(seeded: Namespace, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    done = _moodpipe(seeded, "report", "--png", str(png), "--hours", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000  # four drawn panels, not an empty canvas


def test_raw_text_expires_while_rollups_stay(runtime: LocalRuntime, tmp_path: Path) -> None:
    with Namespace.create(tmp_path, raw_text_ttl_days="2") as ns:
        s = ns.settings
        old = sample_posts(30, run_id="old", seed=5, now=NOW - timedelta(days=5), spread_s=600)
        new = sample_posts(30, run_id="new", seed=6, now=NOW, spread_s=600)
        asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, old + new))
        ns.start_worker()
        ns.wait_caught_up(300)
        ns.query(f"OPTIMIZE TABLE {s.clickhouse_database}.scored_events FINAL")
        texts = dict(
            ns.query(
                "SELECT startsWith(event_id, 'old'), countIf(text != '') "
                "FROM scored_events_dedup GROUP BY 1"
            )
        )
        assert texts == {1: 0, 0: 30}, texts  # old text gone, new text kept
        assert ns.scalar("SELECT countIf(top_emotion != '') FROM scored_events_dedup") == 60
        assert ns.scalar("SELECT sum(events) FROM mood_minute") == 60
        # Turning the TTL off again removes it (and keeps what is left).
        ClickHouseSink(s.model_copy(update={"raw_text_ttl_days": 0})).migrate()
        create = ns.scalar(f"SHOW CREATE TABLE {s.clickhouse_database}.scored_events")
        assert "TTL" not in create
