{# The rows of the day range this run builds: [min_date, max_date + 1 day). #}
{% macro partition_window(column) -%}
    {{ column }} >= cast('{{ var("min_date") }}' as {{ dbt.type_timestamp() }})
    and {{ column }} < {{ dbt.dateadd('day', 1, "cast('" ~ var('max_date') ~ "' as " ~ dbt.type_timestamp() ~ ")") }}
{%- endmacro %}
