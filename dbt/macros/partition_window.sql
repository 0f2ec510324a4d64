{# The rows of the day range this run rebuilds: [min_date, max_date + 1 day). #}
{% macro partition_window(column) -%}
    {{ column }} >= cast('{{ var("min_date") }}' as {{ dbt.type_timestamp() }})
    and {{ column }} < {{ dbt.dateadd('day', 1, "cast('" ~ var('max_date') ~ "' as " ~ dbt.type_timestamp() ~ ")") }}
{%- endmacro %}

{# Incremental marts delete exactly the days of the run first, so a rerun of a day is idempotent
   and a day that lost all its rows after a fix is emptied too. #}
{% macro delete_partition_window(column) -%}
    {% if is_incremental() %}
        delete from {{ this }} where {{ partition_window(column) }}
    {% endif %}
{%- endmacro %}
