-- Support threads getting worse now: the latest thread alert is thread_worsening (not
-- yet recovered), critical ones first, with the thread's first, current and worst mood.
-- param hours UInt32 = 24     threads whose last worsening alert is this recent (event time)
-- param brand String = ''     brand to show; empty for every brand
-- param limit UInt32 = 100    rows
SELECT
    t.brand AS brand,
    t.thread_id AS thread_id,
    t.customer_id AS customer_id,
    t.customer_tier AS customer_tier,
    t.product AS product,
    t.turns AS turns,
    round(t.first_mood, 3) AS first_mood,
    round(t.current_mood, 3) AS current_mood,
    round(t.worst_mood, 3) AS worst_mood,
    a.severity AS severity,
    a.last_alert AS last_alert,
    t.last_turn_at AS last_turn_at
FROM threads AS t
INNER JOIN
(
    SELECT
        brand,
        subject AS thread_id,
        max(event_time) AS last_alert,
        argMax(kind, event_time) AS last_kind,
        argMax(severity, event_time) AS severity
    FROM alerts_dedup
    WHERE kind IN ('thread_worsening', 'thread_recovered')
    GROUP BY brand, subject
) AS a ON a.brand = t.brand AND a.thread_id = t.thread_id
WHERE a.last_kind = 'thread_worsening'
  AND a.last_alert >= now64(3) - toIntervalHour({hours:UInt32})
  AND ({brand:String} = '' OR t.brand = {brand:String})
ORDER BY a.severity = 'critical' DESC, a.last_alert DESC
LIMIT {limit:UInt32}
