-- Mood per brand and source: the last 7 days against the 7 days before (rollup).
-- param source String = 'post'   post or ticket; empty for both
SELECT
    brand,
    sumIf(events, minute >= now() - INTERVAL 7 DAY) AS events_this_week,
    sumIf(events, minute < now() - INTERVAL 7 DAY) AS events_last_week,
    round(sumIf(sentiment_score_sum, minute >= now() - INTERVAL 7 DAY)
          / nullIf(events_this_week, 0), 3) AS mood_this_week,
    round(sumIf(sentiment_score_sum, minute < now() - INTERVAL 7 DAY)
          / nullIf(events_last_week, 0), 3) AS mood_last_week,
    round(mood_this_week - mood_last_week, 3) AS mood_change,
    round(sumIf(negative, minute >= now() - INTERVAL 7 DAY)
          / nullIf(events_this_week, 0), 3) AS negative_share_this_week,
    round(sumIf(negative, minute < now() - INTERVAL 7 DAY)
          / nullIf(events_last_week, 0), 3) AS negative_share_last_week
FROM mood_minute
WHERE minute >= now() - INTERVAL 14 DAY
  AND ({source:String} = '' OR source = {source:String})
GROUP BY brand
ORDER BY mood_change ASC NULLS LAST
