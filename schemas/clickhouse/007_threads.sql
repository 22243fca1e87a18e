-- Support threads (docs/alerting.md "Threads").
--
-- Every ticket belongs to a thread (`thread_id`; a ticket without one is a thread of
-- its own id) and has an author role: customer, agent or bot. Agent and bot messages
-- are stored and scored (the tone of our own replies) but are not the customer's mood:
-- they stay out of the mood and ticket rollups. Posts have '' in both columns.
ALTER TABLE {database}.scored_events
    ADD COLUMN IF NOT EXISTS thread_id String DEFAULT '' AFTER priority,
    ADD COLUMN IF NOT EXISTS author_role LowCardinality(String) DEFAULT '' AFTER thread_id;

-- Rows from before this migration are one-message customer threads, as they were.
-- (Synchronous, so the threads view sees them once the migration is applied.)
ALTER TABLE {database}.scored_events
    UPDATE thread_id = event_id, author_role = 'customer'
    WHERE source = 'ticket' AND thread_id = ''
    SETTINGS mutations_sync = 2;

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
    countIf(ekman = 'neutral') AS ekman_neutral,
    countIf(valence IS NOT NULL) AS vad_events,
    sum(ifNull(valence, 0)) AS valence_sum,
    sum(ifNull(arousal, 0)) AS arousal_sum,
    sum(ifNull(dominance, 0)) AS dominance_sum,
    sum(ifNull(intensity, 0)) AS intensity_sum
FROM {database}.scored_events
WHERE first_write = 1 AND model_coverage != 'none' AND author_role NOT IN ('agent', 'bot')
GROUP BY minute, brand, source, lang;

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
  AND author_role NOT IN ('agent', 'bot')
GROUP BY hour, brand, product, customer_tier, lang;

CREATE OR REPLACE VIEW {database}.scored_events_dedup AS
SELECT * FROM {database}.scored_events FINAL;

-- What an alert's text-level evidence adds (JSON, '' when none): the words that drove
-- its emotion score (pipeline/explain) and the reply-tone guidance from the playbook
-- (pipeline/alerts/playbook.py).
ALTER TABLE {database}.alerts
    ADD COLUMN IF NOT EXISTS explanation String DEFAULT '' AFTER evidence,
    ADD COLUMN IF NOT EXISTS reply String DEFAULT '' AFTER explanation;

CREATE OR REPLACE VIEW {database}.alerts_dedup AS
SELECT * FROM {database}.alerts FINAL;

-- Latest state per thread, from the stored turns: the customer's first, current and
-- worst mood (sentiment_score, -1..1), turns, duration, time to the first angry
-- customer turn (anger + annoyance + disgust >= 0.5, as in ticket_hour), the tone of
-- the last agent reply, and whether the thread worsened and recovered (its alerts).
-- A plain view: exact under re-delivery (FINAL), computed when queried; filter it by
-- brand or last_turn_at on large tables.
CREATE OR REPLACE VIEW {database}.threads AS
SELECT
    t.brand AS brand,
    t.thread_id AS thread_id,
    t.customer_id AS customer_id,
    t.customer_tier AS customer_tier,
    t.product AS product,
    t.turns AS turns,
    t.customer_turns AS customer_turns,
    t.started_at AS started_at,
    t.last_turn_at AS last_turn_at,
    t.duration_s AS duration_s,
    t.first_mood AS first_mood,
    t.current_mood AS current_mood,
    t.worst_mood AS worst_mood,
    t.last_reply_mood AS last_reply_mood,
    t.seconds_to_first_angry AS seconds_to_first_angry,
    ifNull(a.worsened, 0) AS worsened,
    ifNull(a.recovered, 0) AS recovered
FROM
(
    SELECT
        brand,
        thread_id,
        argMin(customer_id, created_at) AS customer_id,
        argMin(customer_tier, created_at) AS customer_tier,
        argMin(product, created_at) AS product,
        count() AS turns,
        countIf(author_role = 'customer') AS customer_turns,
        min(created_at) AS started_at,
        max(created_at) AS last_turn_at,
        dateDiff('second', min(created_at), max(created_at)) AS duration_s,
        argMinIf(sentiment_score, created_at, author_role = 'customer') AS first_mood,
        argMaxIf(sentiment_score, created_at, author_role = 'customer') AS current_mood,
        minIf(sentiment_score, author_role = 'customer') AS worst_mood,
        if(countIf(author_role IN ('agent', 'bot')) > 0,
           argMaxIf(sentiment_score, created_at, author_role IN ('agent', 'bot')),
           NULL) AS last_reply_mood,
        if(countIf(author_role = 'customer' AND anger + annoyance + disgust >= 0.5) > 0,
           dateDiff('second', min(created_at),
                    minIf(created_at, author_role = 'customer' AND anger + annoyance + disgust >= 0.5)),
           NULL) AS seconds_to_first_angry
    FROM {database}.scored_events FINAL
    WHERE source = 'ticket' AND thread_id != ''
    GROUP BY brand, thread_id
) AS t
LEFT JOIN
(
    SELECT
        brand,
        subject AS thread_id,
        toUInt8(countIf(kind = 'thread_worsening') > 0) AS worsened,
        toUInt8(argMax(kind, event_time) = 'thread_recovered') AS recovered
    FROM {database}.alerts FINAL
    WHERE kind IN ('thread_worsening', 'thread_recovered')
    GROUP BY brand, subject
) AS a ON a.brand = t.brand AND a.thread_id = t.thread_id;
