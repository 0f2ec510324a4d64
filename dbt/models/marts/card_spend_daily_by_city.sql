-- Spend per day and customer city (the segment of the card product), with the city the customer
-- had at the end of that day; customers deleted that day count as `unknown`.
with transactions as (
    select
        customer_id,
        amount,
        cast({{ dbt.date_trunc('day', 'occurred_at') }} as date) as day
    from {{ ref('stg_card_transactions') }}
    where {{ partition_window('occurred_at') }}
)

select  -- noqa: ST06
    transactions.day,
    coalesce(customers.city, 'unknown') as city,
    count(*) as transactions,
    -- Sum as decimal: a sum of doubles depends on the order of the rows (engines differ by a cent).
    cast(round(sum(cast(transactions.amount as decimal(18, 3))), 2) as double) as spend
from transactions
left join {{ ref('stg_customers_daily') }} as customers
    on
        transactions.customer_id = customers.customer_id
        and transactions.day = customers.snapshot_date
group by transactions.day, coalesce(customers.city, 'unknown')
