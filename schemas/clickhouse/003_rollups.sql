-- Rollups for dashboards and saved queries, so they never scan raw events.
--
-- Dedup-aware: a materialized view sees every insert, and a re-delivered event is
-- inserted again (scored_events collapses it, a plain rollup would count it twice).
-- The sink therefore marks each row first_write = 1 only when the event is not yet in
-- scored_events (one indexed lookup per batch), and the rollup views read only those.

ALTER TABLE {database}.scored_events ADD COLUMN IF NOT EXISTS first_write UInt8 DEFAULT 1;

-- Per minute x brand x source: volume, the sum of each emotion's probability (divide
-- by events for the mean), sentiment and Ekman counts, the sum of sentiment scores.
CREATE TABLE IF NOT EXISTS {database}.mood_minute
(
    minute DateTime('UTC'),
    brand LowCardinality(String),
    source LowCardinality(String),
    events UInt64,
    admiration Float64,
    amusement Float64,
    anger Float64,
    annoyance Float64,
    approval Float64,
    caring Float64,
    confusion Float64,
    curiosity Float64,
    desire Float64,
    disappointment Float64,
    disapproval Float64,
    disgust Float64,
    embarrassment Float64,
    excitement Float64,
    fear Float64,
    gratitude Float64,
    grief Float64,
    joy Float64,
    love Float64,
    nervousness Float64,
    optimism Float64,
    pride Float64,
    realization Float64,
    relief Float64,
    remorse Float64,
    sadness Float64,
    surprise Float64,
    neutral Float64,
    positive UInt64,
    negative UInt64,
    ambiguous UInt64,
    neutral_sentiment UInt64,
    sentiment_score_sum Float64,
    ekman_anger UInt64,
    ekman_disgust UInt64,
    ekman_fear UInt64,
    ekman_joy UInt64,
    ekman_sadness UInt64,
    ekman_surprise UInt64,
    ekman_neutral UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (brand, source, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.mood_minute_mv TO {database}.mood_minute AS
SELECT
    toStartOfMinute(created_at) AS minute,
    brand,
    source,
    count() AS events,
    sum(admiration) AS admiration,
    sum(amusement) AS amusement,
    sum(anger) AS anger,
    sum(annoyance) AS annoyance,
    sum(approval) AS approval,
    sum(caring) AS caring,
    sum(confusion) AS confusion,
    sum(curiosity) AS curiosity,
    sum(desire) AS desire,
    sum(disappointment) AS disappointment,
    sum(disapproval) AS disapproval,
    sum(disgust) AS disgust,
    sum(embarrassment) AS embarrassment,
    sum(excitement) AS excitement,
    sum(fear) AS fear,
    sum(gratitude) AS gratitude,
    sum(grief) AS grief,
    sum(joy) AS joy,
    sum(love) AS love,
    sum(nervousness) AS nervousness,
    sum(optimism) AS optimism,
    sum(pride) AS pride,
    sum(realization) AS realization,
    sum(relief) AS relief,
    sum(remorse) AS remorse,
    sum(sadness) AS sadness,
    sum(surprise) AS surprise,
    sum(neutral) AS neutral,
    countIf(sentiment = 'positive') AS positive,
    countIf(sentiment = 'negative') AS negative,
    countIf(sentiment = 'ambiguous') AS ambiguous,
    countIf(sentiment = 'neutral') AS neutral_sentiment,
    sum(sentiment_score) AS sentiment_score_sum,
    countIf(ekman = 'anger') AS ekman_anger,
    countIf(ekman = 'disgust') AS ekman_disgust,
    countIf(ekman = 'fear') AS ekman_fear,
    countIf(ekman = 'joy') AS ekman_joy,
    countIf(ekman = 'sadness') AS ekman_sadness,
    countIf(ekman = 'surprise') AS ekman_surprise,
    countIf(ekman = 'neutral') AS ekman_neutral
FROM {database}.scored_events
WHERE first_write = 1
GROUP BY minute, brand, source;

-- Tickets per hour x brand x product x tier, for support dashboards.
CREATE TABLE IF NOT EXISTS {database}.ticket_hour
(
    hour DateTime('UTC'),
    brand LowCardinality(String),
    product LowCardinality(String),
    customer_tier LowCardinality(String),
    tickets UInt64,
    angry UInt64,
    negative UInt64,
    anger_sum Float64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (brand, product, customer_tier, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.ticket_hour_mv TO {database}.ticket_hour AS
SELECT
    toStartOfHour(created_at) AS hour,
    brand,
    product,
    customer_tier,
    count() AS tickets,
    countIf(anger + annoyance + disgust >= 0.5) AS angry,
    countIf(sentiment = 'negative') AS negative,
    sum(least(anger + annoyance + disgust, 1)) AS anger_sum
FROM {database}.scored_events
WHERE first_write = 1 AND source = 'ticket'
GROUP BY hour, brand, product, customer_tier;

-- Pipeline health per minute of insert time: every write (re-deliveries included: they
-- are work done), with latency quantiles produce -> scored and scored -> stored.
CREATE TABLE IF NOT EXISTS {database}.pipeline_minute
(
    minute DateTime('UTC'),
    source LowCardinality(String),
    model_version LowCardinality(String),
    rows SimpleAggregateFunction(sum, UInt64),
    redelivered SimpleAggregateFunction(sum, UInt64),
    queue_ms AggregateFunction(quantiles(0.5, 0.99), Int64),
    store_ms AggregateFunction(quantiles(0.5, 0.99), Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (source, model_version, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.pipeline_minute_mv TO {database}.pipeline_minute AS
SELECT
    toStartOfMinute(inserted_at) AS minute,
    source,
    model_version,
    count() AS rows,
    countIf(first_write = 0) AS redelivered,
    quantilesState(0.5, 0.99)(dateDiff('millisecond', produced_at, scored_at)) AS queue_ms,
    quantilesState(0.5, 0.99)(dateDiff('millisecond', scored_at, inserted_at)) AS store_ms
FROM {database}.scored_events
GROUP BY minute, source, model_version;

-- Dead letters, for history and the pipeline dashboard (the topic stays the record).
CREATE TABLE IF NOT EXISTS {database}.dead_letters
(
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    error LowCardinality(String),
    reason String,
    failed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(failed_at)
ORDER BY (source_topic, source_partition, source_offset);

-- Consumer lag per topic partition, sampled by each worker every few seconds.
CREATE TABLE IF NOT EXISTS {database}.pipeline_lag
(
    at DateTime64(3, 'UTC'),
    worker String,
    topic LowCardinality(String),
    partition UInt32,
    lag Int64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (topic, partition, at)
TTL toDateTime(at) + INTERVAL 30 DAY;

-- Existing events (installs that scored before this migration) into the rollups.
INSERT INTO {database}.mood_minute
SELECT
    toStartOfMinute(created_at) AS minute, brand, source, count() AS events,
    sum(admiration), sum(amusement), sum(anger), sum(annoyance), sum(approval), sum(caring), sum(confusion), sum(curiosity), sum(desire), sum(disappointment), sum(disapproval), sum(disgust), sum(embarrassment), sum(excitement), sum(fear), sum(gratitude), sum(grief), sum(joy), sum(love), sum(nervousness), sum(optimism), sum(pride), sum(realization), sum(relief), sum(remorse), sum(sadness), sum(surprise), sum(neutral),
    countIf(sentiment = 'positive'), countIf(sentiment = 'negative'),
    countIf(sentiment = 'ambiguous'), countIf(sentiment = 'neutral'), sum(sentiment_score),
    countIf(ekman = 'anger'), countIf(ekman = 'disgust'), countIf(ekman = 'fear'), countIf(ekman = 'joy'), countIf(ekman = 'sadness'), countIf(ekman = 'surprise'), countIf(ekman = 'neutral')
FROM {database}.scored_events FINAL
GROUP BY minute, brand, source;

INSERT INTO {database}.ticket_hour
SELECT toStartOfHour(created_at), brand, product, customer_tier, count(),
       countIf(anger + annoyance + disgust >= 0.5), countIf(sentiment = 'negative'),
       sum(least(anger + annoyance + disgust, 1))
FROM {database}.scored_events FINAL
WHERE source = 'ticket'
GROUP BY 1, 2, 3, 4;
