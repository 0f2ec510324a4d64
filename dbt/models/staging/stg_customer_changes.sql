-- One row per customer change: a change published twice (same key, version, operation) counts once.
with changes as (
    select
        customer_id,
        _op as operation,
        version,
        updated_at as changed_at,
        city,
        segment,
        row_number() over (
            partition by customer_id, version, _op
            order by _kafka_timestamp, _topic, _partition, _offset
        ) as copy_number
    from {{ source('raw', 'customers') }}
)

select
    customer_id,
    operation,
    version,
    changed_at,
    city,
    segment
from changes
where copy_number = 1
