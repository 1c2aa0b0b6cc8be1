"""The model console: what an operator needs from one page inside Airflow, and its two actions.

Per pipeline, at ``/runway/console/<pipeline>`` (the plugin's app, ``orchestration/plugin.py``; linked from
Airflow's navigation and from the pipeline's DAG and run pages): the serving fleet asked live (``page.py``), the
versions in the model store with where each came from (``versions.py``), the runs with each gate's verdict read from
Airflow's database (``runs.py``), the metric and the data volume over runs (``chart.py``), and promote / roll back,
which trigger ``<pipeline>_serving`` as the logged-in user (``actions.py``). Runs in Airflow's API server: no
TensorFlow, no ML Metadata.
"""
