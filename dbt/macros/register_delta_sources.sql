{# Make every Delta source of the lake readable by its source name before any model runs: each becomes an
   external Delta table of the catalog. Sail keeps its catalog in memory and per Spark Connect session, so
   every dbt invocation (a new session) registers them again. #}
{% macro register_delta_sources() %}
    {% if execute %}
        {% for node in graph.sources.values() if node.source_meta.get('plugin') == 'delta' %}
            {% do run_query('create schema if not exists ' ~ node.schema) %}
            {% do run_query(
                'create table if not exists ' ~ node.schema ~ '.' ~ node.name
                ~ " using delta location '" ~ node.meta['delta_table_path'] ~ "'"
            ) %}
        {% endfor %}
    {% endif %}
{% endmacro %}
