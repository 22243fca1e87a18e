"""The panels of moodpipe's four dashboards, as data: title, kind, SQL, expected columns.

SQL is written for the grafana-clickhouse-datasource plugin: its macros
($__timeFilter, $__timeFilter_ms, $__timeInterval) and Grafana template variables
(${brand:singlequote}, ${source:singlequote}, ${lang:singlequote}). Aggregates read
the rollup tables (003_rollups.sql, 005_languages.sql); only the "latest N" tables
read raw rows, filtered by time range.
`tests/test_dashboards.py` runs every query here against ClickHouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.emotions import EKMAN_GROUPS, LABELS

BRANDS = "brand IN (${brand:singlequote})"
SOURCES = "source IN (${source:singlequote})"
LANGS = "lang IN (${lang:singlequote})"


@dataclass(frozen=True)
class PanelSpec:
    title: str
    kind: str  # timeseries | table | barchart | piechart | xychart
    sql: str
    columns: tuple[str, ...]  # what the query returns, in order
    description: str = ""
    unit: str = ""
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    panels: tuple[PanelSpec, ...]
    variables: tuple[str, ...] = ("brand", "source")
    tags: tuple[str, ...] = field(default=("moodpipe",))


def _pairs(items: list[tuple[str, str]]) -> str:
    return ", ".join(f"('{name}', {expr})" for name, expr in items)


_EKMAN_MIX = _pairs([(g, f"sum(ekman_{g})") for g in EKMAN_GROUPS])
_EMOTION_MEANS = _pairs([(label, f"sum({label}) / sum(events)") for label in LABELS])

BRAND_MOOD = DashboardSpec(
    uid="moodpipe-brand-mood",
    title="moodpipe / Brand mood",
    description="Mood index, emotion mix and negative share per brand, from the rollups.",
    variables=("brand", "source", "lang"),
    panels=(
        PanelSpec(
            "Mood index (positive - negative)", "timeseries",
            f"""SELECT $__timeInterval(minute) AS time, brand,
       round(sum(sentiment_score_sum) / sum(events), 4) AS mood_index
FROM mood_minute
WHERE $__timeFilter(minute) AND {BRANDS} AND {SOURCES} AND {LANGS}
GROUP BY time, brand
ORDER BY time, brand""",
            ("time", "brand", "mood_index"),
            "Mean of (strongest positive - strongest negative emotion) per event.",
            width=16,
        ),
        PanelSpec(
            "Negative share by brand", "barchart",
            f"""SELECT brand, sum(events) AS events,
       round(sum(negative) / events, 4) AS negative_share
FROM mood_minute
WHERE $__timeFilter(minute) AND {BRANDS} AND {SOURCES} AND {LANGS}
GROUP BY brand
ORDER BY negative_share DESC""",
            ("brand", "events", "negative_share"), unit="percentunit", width=8,
        ),
        PanelSpec(
            "Volume", "timeseries",
            f"""SELECT $__timeInterval(minute) AS time, brand, sum(events) AS events
FROM mood_minute
WHERE $__timeFilter(minute) AND {BRANDS} AND {SOURCES} AND {LANGS}
GROUP BY time, brand
ORDER BY time, brand""",
            ("time", "brand", "events"), width=12,
        ),
        PanelSpec(
            "Emotion mix (Ekman groups)", "piechart",
            f"""SELECT mix.1 AS emotion, mix.2 AS events
FROM (
    SELECT arrayJoin([{_EKMAN_MIX}]) AS mix
    FROM mood_minute
    WHERE $__timeFilter(minute) AND {BRANDS} AND {SOURCES} AND {LANGS}
)
ORDER BY events DESC""",
            ("emotion", "events"), width=12,
        ),
        PanelSpec(
            "Strongest emotions (mean probability)", "barchart",
            f"""SELECT e.1 AS emotion, round(e.2, 4) AS mean_probability
FROM (
    SELECT arrayJoin([{_EMOTION_MEANS}]) AS e
    FROM mood_minute
    WHERE $__timeFilter(minute) AND {BRANDS} AND {SOURCES} AND {LANGS}
    HAVING sum(events) > 0
)
WHERE e.1 != 'neutral'
ORDER BY mean_probability DESC
LIMIT 10""",
            ("emotion", "mean_probability"), width=12,
        ),
        PanelSpec(
            "Valence and arousal", "timeseries",
            f"""SELECT $__timeInterval(minute) AS time, brand,
       round(sum(valence_sum) / sum(vad_events), 3) AS valence,
       round(sum(arousal_sum) / sum(vad_events), 3) AS arousal
FROM mood_minute
WHERE $__timeFilter(minute) AND {BRANDS} AND {SOURCES} AND {LANGS}
GROUP BY time, brand
HAVING sum(vad_events) > 0
ORDER BY time, brand""",
            ("time", "brand", "valence", "arousal"),
            "Mean valence (1 unpleasant - 5 pleasant) and arousal (1 calm - 5 excited) per "
            "event, EmoBank's scale, 3 neutral. Events whose model has no VAD head are "
            "left out (vad_events).",
            width=12,
        ),
        PanelSpec(
            "Brands on the valence x arousal plane", "xychart",
            f"""SELECT brand, round(sum(valence_sum) / sum(vad_events), 3) AS valence,
       round(sum(arousal_sum) / sum(vad_events), 3) AS arousal,
       sum(vad_events) AS events
FROM mood_minute
WHERE $__timeFilter(minute) AND {BRANDS} AND {SOURCES} AND {LANGS}
GROUP BY brand
HAVING events > 0
ORDER BY events DESC""",
            ("brand", "valence", "arousal", "events"),
            "Each brand at its mean valence (x) and arousal (y) over the range: top left "
            "(unpleasant, aroused) is anger and alarm, bottom left sadness and boredom.",
            width=12,
        ),
        PanelSpec(
            "Most negative posts", "table",
            f"""SELECT created_at, brand, platform, author,
       round(sentiment_score, 3) AS sentiment_score, top_emotion,
       round(intensity, 2) AS intensity, text
FROM scored_events_dedup
WHERE source = 'post' AND $__timeFilter_ms(created_at) AND {BRANDS} AND {LANGS}
  AND model_coverage != 'none'
ORDER BY sentiment_score ASC, created_at DESC
LIMIT 20""",
            ("created_at", "brand", "platform", "author", "sentiment_score", "top_emotion",
             "intensity", "text"),
            width=24, height=10,
        ),
        PanelSpec(
            "Languages", "table",
            f"""SELECT lang, model_coverage, model_name, sum(events) AS events,
       sum(detected) AS detected
FROM language_minute
WHERE $__timeFilter(minute) AND {SOURCES} AND {LANGS}
GROUP BY lang, model_coverage, model_name
ORDER BY events DESC""",
            ("lang", "model_coverage", "model_name", "events", "detected"),
            "Events per language: how many had it detected (no lang field), which model "
            "scored them and how well it covers the language. Coverage 'none' is left out "
            "of the mood panels above.",
            width=24, height=8,
        ),
    ),
)  # fmt: skip

SUPPORT = DashboardSpec(
    uid="moodpipe-support",
    title="moodpipe / Customer support",
    description="Angry tickets now, anger by product and customer tier, and support "
    "threads: which are getting worse, and which replies calmed the customer.",
    variables=("brand", "lang"),
    panels=(
        PanelSpec(
            "Angry tickets", "table",
            f"""SELECT created_at, customer_id, customer_tier, product, priority,
       round(least(anger + annoyance + disgust, 1), 3) AS anger_score, sentiment,
       concat(subject, if(subject = '', '', ': '), text) AS ticket
FROM scored_events_dedup
WHERE source = 'ticket' AND $__timeFilter_ms(created_at) AND {BRANDS} AND {LANGS}
  AND model_coverage != 'none' AND anger + annoyance + disgust >= 0.5
  AND author_role NOT IN ('agent', 'bot')
ORDER BY created_at DESC
LIMIT 50""",
            ("created_at", "customer_id", "customer_tier", "product", "priority",
             "anger_score", "sentiment", "ticket"),
            width=24, height=10,
        ),
        PanelSpec(
            "Anger by product", "barchart",
            f"""SELECT product, sum(tickets) AS tickets, sum(angry) AS angry_tickets,
       round(angry_tickets / tickets, 4) AS angry_share
FROM ticket_hour
WHERE $__timeFilter(hour) AND {BRANDS} AND {LANGS}
GROUP BY product
ORDER BY angry_tickets DESC""",
            ("product", "tickets", "angry_tickets", "angry_share"),
        ),
        PanelSpec(
            "Anger by customer tier", "barchart",
            f"""SELECT customer_tier, sum(tickets) AS tickets, sum(angry) AS angry_tickets,
       round(angry_tickets / tickets, 4) AS angry_share
FROM ticket_hour
WHERE $__timeFilter(hour) AND {BRANDS} AND {LANGS}
GROUP BY customer_tier
ORDER BY angry_share DESC""",
            ("customer_tier", "tickets", "angry_tickets", "angry_share"),
        ),
        PanelSpec(
            "Tickets and angry tickets", "timeseries",
            f"""SELECT $__timeInterval(hour) AS time, sum(tickets) AS tickets,
       sum(angry) AS angry_tickets
FROM ticket_hour
WHERE $__timeFilter(hour) AND {BRANDS} AND {LANGS}
GROUP BY time
ORDER BY time""",
            ("time", "tickets", "angry_tickets"), width=24,
        ),
        PanelSpec(
            "Threads getting worse", "table",
            f"""SELECT t.thread_id AS thread_id, t.customer_id AS customer_id,
       t.customer_tier AS customer_tier, t.product AS product, t.turns AS turns,
       round(t.first_mood, 2) AS first_mood, round(t.current_mood, 2) AS current_mood,
       round(t.worst_mood, 2) AS worst_mood, a.severity AS severity, a.last_alert AS last_alert
FROM threads AS t
INNER JOIN (
    SELECT brand, subject AS thread_id, max(event_time) AS last_alert,
           argMax(kind, event_time) AS last_kind, argMax(severity, event_time) AS severity
    FROM alerts_dedup
    WHERE kind IN ('thread_worsening', 'thread_recovered') AND $__timeFilter_ms(event_time)
    GROUP BY brand, subject
) AS a ON a.brand = t.brand AND a.thread_id = t.thread_id
WHERE a.last_kind = 'thread_worsening' AND t.{BRANDS}
ORDER BY a.severity = 'critical' DESC, a.last_alert DESC
LIMIT 50""",
            ("thread_id", "customer_id", "customer_tier", "product", "turns", "first_mood",
             "current_mood", "worst_mood", "severity", "last_alert"),
            description="Threads whose latest thread alert is thread_worsening: not recovered.",
            width=24, height=9,
        ),
        PanelSpec(
            "Thread mood: first, current and worst", "table",
            f"""SELECT thread_id, product, turns, round(first_mood, 2) AS first_mood,
       round(current_mood, 2) AS current_mood, round(worst_mood, 2) AS worst_mood,
       round(last_reply_mood, 2) AS last_reply_mood,
       seconds_to_first_angry, duration_s, worsened, recovered
FROM threads
WHERE $__timeFilter_ms(last_turn_at) AND {BRANDS} AND turns > 1
ORDER BY current_mood - first_mood ASC
LIMIT 50""",
            ("thread_id", "product", "turns", "first_mood", "current_mood", "worst_mood",
             "last_reply_mood", "seconds_to_first_angry", "duration_s", "worsened",
             "recovered"),
            description="Conversations (more than one turn), the most worsened first. Mood "
                        "is the sentiment score, -1..1, of the customer's turns.",
            width=16, height=9,
        ),
        PanelSpec(
            "Replies followed by a calmer customer", "barchart",
            f"""SELECT product, count() AS replies, countIf(after > before) AS followed_by_calmer,
       round(followed_by_calmer / replies, 3) AS calmer_share
FROM (
    SELECT product, author_role,
           anyLast(customer_mood) OVER (PARTITION BY brand, thread_id ORDER BY created_at
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before,
           any(customer_mood) OVER (PARTITION BY brand, thread_id ORDER BY created_at
               ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS after
    FROM (
        SELECT brand, thread_id, product, author_role, created_at,
               if(author_role = 'customer', sentiment_score, NULL) AS customer_mood
        FROM scored_events_dedup
        WHERE source = 'ticket' AND thread_id != '' AND $__timeFilter_ms(created_at)
          AND {BRANDS}
    )
)
WHERE author_role IN ('agent', 'bot') AND before IS NOT NULL AND after IS NOT NULL
GROUP BY product
ORDER BY replies DESC""",
            ("product", "replies", "followed_by_calmer", "calmer_share"),
            description="Per product: agent and bot replies, and how many were followed by a "
                        "customer turn calmer than the one before the reply.",
            width=8, height=9,
        ),
    ),
)  # fmt: skip

ALERTS = DashboardSpec(
    uid="moodpipe-alerts",
    title="moodpipe / Alerts",
    description="Alerts raised by the detector; also shown as annotations.",
    variables=("brand",),
    panels=(
        PanelSpec(
            "Alerts over time", "timeseries",
            f"""SELECT $__timeInterval(event_time) AS time, kind, count() AS alerts
FROM alerts_dedup
WHERE $__timeFilter_ms(event_time) AND {BRANDS}
GROUP BY time, kind
ORDER BY time, kind""",
            ("time", "kind", "alerts"), width=16,
        ),
        PanelSpec(
            "Alerts by brand and kind", "table",
            f"""SELECT brand, kind, count() AS alerts, max(event_time) AS latest
FROM alerts_dedup
WHERE $__timeFilter_ms(event_time) AND {BRANDS}
GROUP BY brand, kind
ORDER BY alerts DESC""",
            ("brand", "kind", "alerts", "latest"), width=8,
        ),
        PanelSpec(
            "Alert history", "table",
            f"""SELECT event_time, kind, severity, brand, source, subject, message,
       arrayStringConcat(arrayMap(w -> JSONExtractString(w, 'word'),
           JSONExtractArrayRaw(explanation, 'texts', 1, 'top')), ', ') AS why_flagged,
       JSONExtractString(reply, 'tone') AS reply_tone
FROM alerts_dedup
WHERE $__timeFilter_ms(event_time) AND {BRANDS}
ORDER BY event_time DESC
LIMIT 200""",
            ("event_time", "kind", "severity", "brand", "source", "subject", "message",
             "why_flagged", "reply_tone"),
            width=24, height=12,
        ),
    ),
)  # fmt: skip

PIPELINE = DashboardSpec(
    uid="moodpipe-pipeline",
    title="moodpipe / Pipeline health",
    description="Throughput, latency, consumer lag, dead letters and re-deliveries.",
    variables=("source",),
    panels=(
        PanelSpec(
            "Throughput (rows stored per second)", "timeseries",
            f"""SELECT $__timeInterval(minute) AS time, source,
       sum(rows) / greatest($__interval_s, 60) AS rows_per_s
FROM pipeline_minute
WHERE $__timeFilter(minute) AND {SOURCES}
GROUP BY time, source
ORDER BY time, source""",
            ("time", "source", "rows_per_s"),
        ),
        PanelSpec(
            "Latency: produced -> scored (p50, p99)", "timeseries",
            f"""SELECT $__timeInterval(minute) AS time,
       quantilesMerge(0.5, 0.99)(queue_ms)[1] AS p50_ms,
       quantilesMerge(0.5, 0.99)(queue_ms)[2] AS p99_ms
FROM pipeline_minute
WHERE $__timeFilter(minute) AND {SOURCES}
GROUP BY time
ORDER BY time""",
            ("time", "p50_ms", "p99_ms"), unit="ms",
        ),
        PanelSpec(
            "Latency: scored -> stored (p50, p99)", "timeseries",
            f"""SELECT $__timeInterval(minute) AS time,
       quantilesMerge(0.5, 0.99)(store_ms)[1] AS p50_ms,
       quantilesMerge(0.5, 0.99)(store_ms)[2] AS p99_ms
FROM pipeline_minute
WHERE $__timeFilter(minute) AND {SOURCES}
GROUP BY time
ORDER BY time""",
            ("time", "p50_ms", "p99_ms"), unit="ms",
        ),
        PanelSpec(
            "Consumer lag (records)", "timeseries",
            """SELECT $__timeInterval(at) AS time, topic, max(lag) AS lag
FROM pipeline_lag
WHERE $__timeFilter_ms(at)
GROUP BY time, topic
ORDER BY time, topic""",
            ("time", "topic", "lag"),
        ),
        PanelSpec(
            "Dead letters", "timeseries",
            """SELECT $__timeInterval(failed_at) AS time, error, count() AS dead_letters
FROM dead_letters FINAL
WHERE $__timeFilter_ms(failed_at)
GROUP BY time, error
ORDER BY time, error""",
            ("time", "error", "dead_letters"),
        ),
        PanelSpec(
            "PII redacted (spans, and share of events with any)", "timeseries",
            f"""SELECT $__timeInterval(minute) AS time, sum(spans) AS spans,
       sum(events_with_pii) / greatest(sum(events), 1) AS share_with_pii
FROM pii_minute
WHERE $__timeFilter(minute) AND {SOURCES}
GROUP BY time
ORDER BY time""",
            ("time", "spans", "share_with_pii"),
            description="E-mail addresses, phone and card numbers, IBANs, IPs and URLs "
            "with credentials replaced before storage (MOODPIPE_PII_REDACTION).",
        ),
        PanelSpec(
            "Re-delivered events (after crashes and replays)", "timeseries",
            f"""SELECT $__timeInterval(minute) AS time, sum(redelivered) AS redelivered
FROM pipeline_minute
WHERE $__timeFilter(minute) AND {SOURCES}
GROUP BY time
ORDER BY time""",
            ("time", "redelivered"),
        ),
        PanelSpec(
            "Recent dead letters", "table",
            """SELECT failed_at, error, source_topic, source_partition, source_offset, reason
FROM dead_letters FINAL
WHERE $__timeFilter_ms(failed_at)
ORDER BY failed_at DESC
LIMIT 50""",
            ("failed_at", "error", "source_topic", "source_partition", "source_offset",
             "reason"),
            width=24,
        ),
    ),
)  # fmt: skip

DASHBOARDS: tuple[DashboardSpec, ...] = (BRAND_MOOD, SUPPORT, ALERTS, PIPELINE)

# Template variables: name -> (label, ClickHouse query or fixed values).
VARIABLE_QUERIES = {
    "brand": ("Brand", "SELECT DISTINCT brand FROM mood_minute WHERE brand != '' ORDER BY brand"),
    "source": ("Source", "post,ticket"),
    "lang": (
        "Language",
        "SELECT DISTINCT lang FROM language_minute WHERE lang != '' ORDER BY lang",
    ),
}

# Alerts as annotations on every dashboard: from ClickHouse, and the ones the notifier
# posts to Grafana (tag "moodpipe").
ANNOTATION_SQL = """SELECT event_time AS time, window_end AS timeEnd, title,
       message AS text, kind AS tags
FROM alerts_dedup
WHERE $__timeFilter_ms(event_time) AND brand IN (${brand:singlequote})"""
ANNOTATION_COLUMNS = ("time", "timeEnd", "title", "text", "tags")
