"""Runway: Airflow 3-orchestrated TFX pipelines, from real data to served TensorFlow models.

Layers, from the tree:
  - ``config``, ``settings``: the typed configuration (per pipeline: YAML; per machine: environment variables);
  - ``data``: preparation of the real datasets into spans;
  - ``models``: model code run by Transform and Trainer (``preprocessing_fn``, ``run_fn``);
  - ``pipeline``: the pure ``create_pipeline(...)`` factory (TFX);
  - ``runtime``: what runs inside the pipeline runtime environment (compile to IR, run one node);
  - ``orchestration``: the light Airflow side (IR reading, node runners, the DAG factory);
  - ``cli``: the ``runway`` command.

Only ``config``, ``settings``, ``errors`` and ``orchestration`` are imported by DAG files; they never import
TensorFlow or TFX.
"""

__version__ = "0.1.0"
