-- Alerts raised by the detector (pipeline/alerts), one row per alert_id.
-- alert_id is deterministic (kind + subject + ticket or window), so an alert
-- re-raised after a crash replaces itself: ReplacingMergeTree + FINAL / alerts_dedup.
CREATE TABLE IF NOT EXISTS {database}.alerts
(
    alert_id String,
    kind LowCardinality(String),
    severity LowCardinality(String),
    source LowCardinality(String),
    brand LowCardinality(String),
    subject String,
    event_time DateTime64(3, 'UTC'),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    raised_at DateTime64(3, 'UTC'),
    title String,
    message String,
    evidence String,
    event_ids Array(String),
    stored_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(stored_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (brand, kind, event_time, alert_id);

CREATE VIEW IF NOT EXISTS {database}.alerts_dedup AS
SELECT * FROM {database}.alerts FINAL;

-- Every delivery attempt outcome per channel (webhook, grafana): what was sent,
-- what failed after all retries and why. Notifiers skip alerts already 'sent'.
CREATE TABLE IF NOT EXISTS {database}.alert_deliveries
(
    alert_id String,
    channel LowCardinality(String),
    status LowCardinality(String),
    attempts UInt16,
    error String,
    delivered_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (alert_id, channel, delivered_at);
