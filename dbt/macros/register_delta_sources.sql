{# Make every Delta source of the lake readable by its source name before any model runs.
   dbt-duckdb: its delta plugin registers a source when a model first reads it, but unit tests read the
   source's columns before that. dbt-spark: the lake's tables become external Delta tables of the
   catalog, so the same models read `raw.customers` etc. on Spark. #}
{% macro register_delta_sources() %}
    {% if execute %}
        {% for node in graph.sources.values() if node.source_meta.get('plugin') == 'delta' %}
            {% if target.type == 'duckdb' %}
                {% do source(node.source_name, node.name) %}
            {% elif target.type == 'spark' %}
                {% do run_query('create schema if not exists ' ~ node.schema) %}
                {% do run_query(
                    'create table if not exists ' ~ node.schema ~ '.' ~ node.name
                    ~ " using delta location '" ~ node.meta['delta_table_path'] ~ "'"
                ) %}
            {% endif %}
        {% endfor %}
    {% endif %}
{% endmacro %}
