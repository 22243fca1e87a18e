-- How many PII spans (e-mail addresses, phone and card numbers, IBANs, IPs, URLs with
-- credentials, names) were replaced in an event's stored text and subject, so the
-- dashboards can show how much was removed (README "PII redaction"). 0 for rows
-- written before redaction existed, or with MOODPIPE_PII_REDACTION=off.
ALTER TABLE {database}.scored_events ADD COLUMN IF NOT EXISTS pii_redacted UInt16 DEFAULT 0 AFTER text;

-- Redaction per minute of event time, for the pipeline dashboard; first writes only,
-- so re-delivered events are not counted twice (see 003_rollups.sql).
CREATE TABLE IF NOT EXISTS {database}.pii_minute
(
    minute DateTime('UTC'),
    source LowCardinality(String),
    events SimpleAggregateFunction(sum, UInt64),
    events_with_pii SimpleAggregateFunction(sum, UInt64),
    spans SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (source, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.pii_minute_mv TO {database}.pii_minute AS
SELECT
    toStartOfMinute(created_at) AS minute,
    source,
    count() AS events,
    countIf(pii_redacted > 0) AS events_with_pii,
    sum(pii_redacted) AS spans
FROM {database}.scored_events
WHERE first_write = 1
GROUP BY minute, source;
