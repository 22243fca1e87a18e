-- Alerts raised, newest first (one row per alert, duplicates collapsed), with the
-- words behind each (explanation, JSON) and the suggested reply (reply, JSON).
-- param kind String = ''      angry_customer, brand_mood_spike, ...; empty for all
-- param brand String = ''     brand to show; empty for every brand
-- param hours UInt32 = 168    how far back, by event time
-- param limit UInt32 = 100    rows
SELECT
    event_time,
    kind,
    severity,
    brand,
    source,
    subject,
    title,
    message,
    explanation,
    reply,
    alert_id
FROM alerts_dedup
WHERE event_time >= now64(3) - toIntervalHour({hours:UInt32})
  AND ({kind:String} = '' OR kind = {kind:String})
  AND ({brand:String} = '' OR brand = {brand:String})
ORDER BY event_time DESC
LIMIT {limit:UInt32}
