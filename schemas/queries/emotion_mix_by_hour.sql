-- Emotion mix per hour and brand: Ekman group shares and the mood index (rollup).
-- param brand String = ''     brand to show; empty for every brand
-- param source String = ''    post or ticket; empty for both
-- param hours UInt32 = 24     how far back
SELECT
    toStartOfHour(minute) AS hour,
    brand,
    sum(events) AS events,
    round(sum(ekman_joy) / events, 3) AS joy,
    round(sum(ekman_anger) / events, 3) AS anger,
    round(sum(ekman_sadness) / events, 3) AS sadness,
    round(sum(ekman_fear) / events, 3) AS fear,
    round(sum(ekman_surprise) / events, 3) AS surprise,
    round(sum(ekman_disgust) / events, 3) AS disgust,
    round(sum(ekman_neutral) / events, 3) AS neutral,
    round(sum(sentiment_score_sum) / events, 3) AS mood_index
FROM mood_minute
WHERE minute >= toStartOfHour(now() - toIntervalHour({hours:UInt32}))
  AND ({brand:String} = '' OR brand = {brand:String})
  AND ({source:String} = '' OR source = {source:String})
GROUP BY hour, brand
ORDER BY hour, brand
