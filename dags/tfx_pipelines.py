"""The Airflow DAGs of every compiled pipeline: ``<name>_pipeline`` and ``<name>_data`` per ``configs/<name>.yaml``;
``<name>_serving`` when it rolls out to the fleet, ``<name>_monitoring`` when the fleet logs its requests.

(Airflow's DAG discovery safe mode only parses files that mention both "airflow" and "dag": this docstring does.)

The pipeline DAGs are built from the TFX IR that `runway compile` writes (``$RUNWAY_IR_DIR/<name>.json``); a
pipeline that has not been compiled yet has no DAG, and a warning in the DAG processor's log says how to
compile it. Nodes run on the backend named by ``RUNWAY_NODE_BACKEND`` (local, docker, kubernetes).
"""

from __future__ import annotations

import logging

from pipeline_components.config import find_pipeline_configs, load_pipeline_config
from pipeline_components.orchestration.dag_factory import (
    build_data_dag,
    build_serving_dag,
    dag_from_graph,
    dag_id_for,
    data_dag_id_for,
    serving_dag_id_for,
)
from pipeline_components.orchestration.ir import read_pipeline_graph
from pipeline_components.orchestration.monitoring_dag import build_monitoring_dag, monitoring_dag_id_for
from pipeline_components.settings import Settings

log = logging.getLogger(__name__)
settings = Settings.from_env()

for name, config_path in find_pipeline_configs(settings.config_dir).items():
    ir_path = settings.ir_path(name)
    if not ir_path.is_file():
        log.warning("pipeline %s is not compiled (%s missing): run `runway compile %s`", name, ir_path, name)
        continue
    graph = read_pipeline_graph(ir_path)
    # The DAGs take the shape the pipeline was compiled with (`runway compile --set serving.approval=required`).
    config = load_pipeline_config(config_path).with_overrides(graph.overrides)
    globals()[dag_id_for(name)] = dag_from_graph(graph, config=config, settings=settings)
    globals()[data_dag_id_for(name)] = build_data_dag(config=config, settings=settings)
    if config.serving.rollout:
        globals()[serving_dag_id_for(name)] = build_serving_dag(config=config)
    if config.serving.rollout and config.serving.request_logging is not None:
        globals()[monitoring_dag_id_for(name)] = build_monitoring_dag(config=config, settings=settings)
