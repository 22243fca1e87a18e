-- Which agent (and bot) replies were followed by a calmer customer, by product: for
-- every reply, the customer's mood (sentiment score) in the turn before it and in the
-- turn after it, within the thread; replies with a customer turn on both sides count.
-- param hours UInt32 = 168    replies this recent (event time)
-- param brand String = ''     brand to show; empty for every brand
SELECT
    product,
    count() AS replies,
    countIf(after > before) AS followed_by_calmer,
    round(followed_by_calmer / replies, 3) AS calmer_share,
    round(avg(after - before), 3) AS mean_mood_change,
    round(avg(reply_mood), 3) AS mean_reply_mood
FROM
(
    SELECT
        product,
        author_role,
        sentiment_score AS reply_mood,
        anyLast(customer_mood) OVER (PARTITION BY brand, thread_id ORDER BY created_at
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before,
        any(customer_mood) OVER (PARTITION BY brand, thread_id ORDER BY created_at
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS after
    FROM
    (
        SELECT brand, thread_id, product, author_role, created_at, sentiment_score,
               if(author_role = 'customer', sentiment_score, NULL) AS customer_mood
        FROM scored_events_dedup
        WHERE source = 'ticket' AND thread_id != ''
          AND created_at >= now64(3) - toIntervalHour({hours:UInt32})
          AND ({brand:String} = '' OR brand = {brand:String})
    )
)
WHERE author_role IN ('agent', 'bot') AND before IS NOT NULL AND after IS NOT NULL
GROUP BY product
ORDER BY replies DESC
