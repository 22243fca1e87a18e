-- Languages (pipeline/language.py, README "Languages").
--
-- Every event records the language it was scored as (`lang`: declared, else
-- detected), the record's own tag and the detector's answer, and how well the model
-- that scored it covers that language. Events of languages no model covers
-- (model_coverage = 'none') are stored, and counted in language_minute, but left out
-- of the mood and ticket rollups: their emotions are not reliable enough to move a
-- brand's mood.
ALTER TABLE {database}.scored_events
    ADD COLUMN IF NOT EXISTS lang_declared LowCardinality(String) DEFAULT '' AFTER lang,
    ADD COLUMN IF NOT EXISTS lang_detected LowCardinality(String) DEFAULT '' AFTER lang_declared,
    ADD COLUMN IF NOT EXISTS model_coverage LowCardinality(String) DEFAULT 'full' AFTER lang_detected;

-- The dashboards' language variable filters the rollups, so they gain a `lang` key.
-- (A column added to a sorting key must have no default expression; rows from before
-- this migration get lang = ''.)
ALTER TABLE {database}.mood_minute
    ADD COLUMN IF NOT EXISTS lang LowCardinality(String) AFTER source,
    MODIFY ORDER BY (brand, source, minute, lang);

ALTER TABLE {database}.mood_minute_mv MODIFY QUERY
SELECT
    toStartOfMinute(created_at) AS minute,
    brand,
    source,
    lang,
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
WHERE first_write = 1 AND model_coverage != 'none'
GROUP BY minute, brand, source, lang;

ALTER TABLE {database}.ticket_hour
    ADD COLUMN IF NOT EXISTS lang LowCardinality(String) AFTER customer_tier,
    MODIFY ORDER BY (brand, product, customer_tier, hour, lang);

ALTER TABLE {database}.ticket_hour_mv MODIFY QUERY
SELECT
    toStartOfHour(created_at) AS hour,
    brand,
    product,
    customer_tier,
    lang,
    count() AS tickets,
    countIf(anger + annoyance + disgust >= 0.5) AS angry,
    countIf(sentiment = 'negative') AS negative,
    sum(least(anger + annoyance + disgust, 1)) AS anger_sum
FROM {database}.scored_events
WHERE first_write = 1 AND source = 'ticket' AND model_coverage != 'none'
GROUP BY hour, brand, product, customer_tier, lang;

-- Volume per minute x source x language x coverage, every language included.
CREATE TABLE IF NOT EXISTS {database}.language_minute
(
    minute DateTime('UTC'),
    source LowCardinality(String),
    lang LowCardinality(String),
    model_coverage LowCardinality(String),
    model_name LowCardinality(String),
    events SimpleAggregateFunction(sum, UInt64),
    detected SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (source, lang, model_coverage, model_name, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.language_minute_mv TO {database}.language_minute AS
SELECT
    toStartOfMinute(created_at) AS minute,
    source,
    lang,
    model_coverage,
    model_name,
    count() AS events,
    countIf(lang_declared = '') AS detected
FROM {database}.scored_events
WHERE first_write = 1
GROUP BY minute, source, lang, model_coverage, model_name;

INSERT INTO {database}.language_minute
SELECT toStartOfMinute(created_at), source, lang, model_coverage, model_name, count(),
       countIf(lang_declared = '')
FROM {database}.scored_events FINAL
GROUP BY 1, 2, 3, 4, 5;

-- A view's columns are fixed when it is created: recreate the deduplicated view so it
-- has the new columns (and those added since 001).
CREATE OR REPLACE VIEW {database}.scored_events_dedup AS
SELECT * FROM {database}.scored_events FINAL;
