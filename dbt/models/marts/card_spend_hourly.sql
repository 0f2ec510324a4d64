{{ config(pre_hook="{{ delete_partition_window('hour') }}") }}

select
    {{ dbt.date_trunc('hour', 'occurred_at') }} as hour,
    count(*) as transactions,
    count(distinct customer_id) as customers,
    round(sum(amount), 2) as spend
from {{ ref('stg_card_transactions') }}
where {{ partition_window('occurred_at') }}
group by {{ dbt.date_trunc('hour', 'occurred_at') }}
