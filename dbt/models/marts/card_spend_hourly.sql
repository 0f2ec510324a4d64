select
    {{ dbt.date_trunc('hour', 'occurred_at') }} as hour,
    count(*) as transactions,
    count(distinct customer_id) as customers,
    -- Sum as decimal: a sum of doubles depends on the order of the rows (engines differ by a cent).
    cast(round(sum(cast(amount as decimal(18, 3))), 2) as double) as spend
from {{ ref('stg_card_transactions') }}
where {{ partition_window('occurred_at') }}
group by {{ dbt.date_trunc('hour', 'occurred_at') }}
