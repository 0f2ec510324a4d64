{# dbt-duckdb's delta plugin registers a source when a model first reads it; unit tests read the
   source's columns before that, so every Delta source is registered when the run starts. #}
{% macro register_delta_sources() %}
    {% if execute and target.type == 'duckdb' %}
        {% for node in graph.sources.values() if node.source_meta.get('plugin') == 'delta' %}
            {% do source(node.source_name, node.name) %}
        {% endfor %}
    {% endif %}
{% endmacro %}
