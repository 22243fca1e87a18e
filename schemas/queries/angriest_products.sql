-- Products by angry support tickets: volume, angry share, mean anger (rollup).
-- param brand String = ''       brand to show; empty for every brand
-- param hours UInt32 = 168      how far back (default: a week)
-- param min_tickets UInt32 = 5  leave out products with fewer tickets
SELECT
    brand,
    product,
    sum(tickets) AS tickets,
    sum(angry) AS angry_tickets,
    round(angry_tickets / tickets, 3) AS angry_share,
    round(sum(anger_sum) / tickets, 3) AS mean_anger,
    round(sum(negative) / tickets, 3) AS negative_share
FROM ticket_hour
WHERE hour >= toStartOfHour(now() - toIntervalHour({hours:UInt32}))
  AND ({brand:String} = '' OR brand = {brand:String})
GROUP BY brand, product
HAVING tickets >= {min_tickets:UInt32}
ORDER BY angry_tickets DESC, angry_share DESC
