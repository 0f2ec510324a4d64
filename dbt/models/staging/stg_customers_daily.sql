-- Customers alive at the end of each day, with the state they had then.
select
    snapshot_date,
    customer_id,
    city,
    segment,
    version
from {{ source('history', 'customers') }}
