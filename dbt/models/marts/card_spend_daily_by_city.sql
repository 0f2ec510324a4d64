{{ config(pre_hook="{{ delete_partition_window('day') }}") }}

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

select
    transactions.day,
    coalesce(customers.city, 'unknown') as city,
    count(*) as transactions,
    round(sum(transactions.amount), 2) as spend
from transactions
left join {{ ref('stg_customers_daily') }} as customers
    on
        transactions.customer_id = customers.customer_id
        and transactions.day = customers.snapshot_date
group by transactions.day, coalesce(customers.city, 'unknown')
