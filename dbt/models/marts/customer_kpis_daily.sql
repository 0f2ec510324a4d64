with changes as (
    select
        operation,
        customer_id,
        cast({{ dbt.date_trunc('day', 'changed_at') }} as date) as day
    from {{ ref('stg_customer_changes') }}
    where {{ partition_window('changed_at') }}
),

change_counts as (
    select
        day,
        count(distinct case when operation = 'create' then customer_id end) as new_customers,
        count(distinct case when operation = 'update' then customer_id end) as updated_customers,
        count(distinct case when operation = 'delete' then customer_id end) as deactivated_customers
    from changes
    group by day
),

active as (
    select
        snapshot_date as day,
        count(*) as active_customers
    from {{ ref('stg_customers_daily') }}
    where {{ partition_window('snapshot_date') }}
    group by snapshot_date
)

select
    coalesce(active.day, change_counts.day) as day,
    coalesce(active.active_customers, 0) as active_customers,
    coalesce(change_counts.new_customers, 0) as new_customers,
    coalesce(change_counts.updated_customers, 0) as updated_customers,
    coalesce(change_counts.deactivated_customers, 0) as deactivated_customers
from active
full outer join change_counts on active.day = change_counts.day
