select
    {{ dbt.date_trunc('hour', 'occurred_at') }} as hour,
    count(*) as transactions,
    count(distinct customer_id) as customers,
    -- Amounts are decimal(12, 2): their sum is exact, in cents, whatever the order of the rows.
    sum(amount) as spend
from {{ ref('stg_card_transactions') }}
where {{ partition_window('occurred_at') }}
group by {{ dbt.date_trunc('hour', 'occurred_at') }}
