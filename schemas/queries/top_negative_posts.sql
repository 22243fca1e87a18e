-- The most negative posts of the last hours, for one brand or all.
-- param brand String = ''     brand to show; empty for every brand
-- param hours UInt32 = 24     how far back
-- param limit UInt32 = 20     rows
SELECT
    created_at,
    brand,
    platform,
    author,
    round(sentiment_score, 3) AS sentiment_score,
    top_emotion,
    round(anger + annoyance + disgust, 3) AS anger_score,
    text
FROM scored_events_dedup
WHERE source = 'post'
  AND created_at >= now64(3) - toIntervalHour({hours:UInt32})
  AND ({brand:String} = '' OR brand = {brand:String})
ORDER BY sentiment_score ASC, created_at DESC
LIMIT {limit:UInt32}
