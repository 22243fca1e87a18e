-- Every scored post and ticket, one row per (source, event_id).
-- ReplacingMergeTree keyed by the ORDER BY makes writes idempotent: a re-delivered or
-- replayed event has the same key, so merges keep one row (the latest scored_at) and
-- `FINAL` (or the scored_events_dedup view) hides duplicates before merges run.
-- Partitioned by day; ordered for per-brand time-range queries.
CREATE TABLE IF NOT EXISTS {database}.scored_events
(
    event_id String,
    source LowCardinality(String),
    brand LowCardinality(String),
    brands Array(LowCardinality(String)),
    platform LowCardinality(String),
    author String,
    customer_id String,
    customer_tier LowCardinality(String),
    product LowCardinality(String),
    channel LowCardinality(String),
    priority LowCardinality(String),
    lang LowCardinality(String),
    subject String,
    text String,
    created_at DateTime64(3, 'UTC'),
    produced_at DateTime64(3, 'UTC'),
    scored_at DateTime64(3, 'UTC'),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    admiration Float32,
    amusement Float32,
    anger Float32,
    annoyance Float32,
    approval Float32,
    caring Float32,
    confusion Float32,
    curiosity Float32,
    desire Float32,
    disappointment Float32,
    disapproval Float32,
    disgust Float32,
    embarrassment Float32,
    excitement Float32,
    fear Float32,
    gratitude Float32,
    grief Float32,
    joy Float32,
    love Float32,
    nervousness Float32,
    optimism Float32,
    pride Float32,
    realization Float32,
    relief Float32,
    remorse Float32,
    sadness Float32,
    surprise Float32,
    neutral Float32,
    top_emotion LowCardinality(String),
    top_score Float32,
    labels Array(LowCardinality(String)),
    ekman LowCardinality(String),
    sentiment LowCardinality(String),
    sentiment_score Float32,
    model_name LowCardinality(String),
    model_version LowCardinality(String),
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMMDD(created_at)
ORDER BY (source, brand, created_at, event_id);

CREATE VIEW IF NOT EXISTS {database}.scored_events_dedup AS
SELECT * FROM {database}.scored_events FINAL;
