-- Card transactions, one row per transaction (current holds the newest copy of each).
select
    transaction_id,
    customer_id,
    amount,
    currency,
    merchant_category,
    occurred_at
from {{ source('current', 'card_transactions') }}
