-- Valence, arousal, dominance and intensity per event (pipeline/postprocess/affect.py).
--
-- Nullable: NULL means the model that scored the event has no VAD head (events from
-- before this migration, the null benchmark model returns the neutral 3s). avg()
-- skips NULLs, and the rollup counts the events that have them (vad_events), so a
-- minute's mean valence is valence_sum / vad_events.
ALTER TABLE {database}.scored_events
    ADD COLUMN IF NOT EXISTS valence Nullable(Float32) AFTER sentiment_score,
    ADD COLUMN IF NOT EXISTS arousal Nullable(Float32) AFTER valence,
    ADD COLUMN IF NOT EXISTS dominance Nullable(Float32) AFTER arousal,
    ADD COLUMN IF NOT EXISTS intensity Nullable(Float32) AFTER dominance;

ALTER TABLE {database}.mood_minute
    ADD COLUMN IF NOT EXISTS vad_events UInt64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS valence_sum Float64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS arousal_sum Float64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS dominance_sum Float64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS intensity_sum Float64 DEFAULT 0;

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
WHERE first_write = 1 AND model_coverage != 'none'
GROUP BY minute, brand, source, lang;

CREATE OR REPLACE VIEW {database}.scored_events_dedup AS
SELECT * FROM {database}.scored_events FINAL;
