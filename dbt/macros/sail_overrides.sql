{# Sail 0.7.2: `to_timestamp(<bigint>)` reads the number as milliseconds, so dbt-spark's dateadd (built on
   to_unix_timestamp/to_timestamp) lands in 1970. timestampadd is exact on Sail and on Spark >= 3.3. #}
{% macro sail__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}

{# Sail 0.7.2: `describe extended` of a table registered by location only lists no columns (its catalog
   keeps no schema for it), which leaves unit-test fixtures of a source without columns.
   A temporary view over the relation describes its columns. #}
{% macro sail__get_columns_in_relation_raw(relation) -%}
    {%- set probe = '__dbt_columns__' ~ (relation.schema ~ '__' if relation.schema else '') ~ relation.identifier -%}
    {% call statement('get_columns_probe') -%}
        create or replace temporary view {{ probe }} as select * from {{ relation }}
    {%- endcall %}
    {% call statement('get_columns_in_relation_raw', fetch_result=True) -%}
        describe extended {{ probe }}
    {%- endcall %}
    {% do return(load_result('get_columns_in_relation_raw').table) %}
{%- endmacro %}
