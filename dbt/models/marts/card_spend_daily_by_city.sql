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
    -- Amounts are decimal(12, 2): their sum is exact, in cents, whatever the order of the rows.
    sum(transactions.amount) as spend
from transactions
left join {{ ref('stg_customers_daily') }} as customers
    on
        transactions.customer_id = customers.customer_id
        and transactions.day = customers.snapshot_date
group by transactions.day, coalesce(customers.city, 'unknown')
