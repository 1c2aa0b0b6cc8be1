"""The orchestrator side: light modules that DAG files and the CLI import (no TensorFlow, no TFX)."""


# The DAG ids of a pipeline, here rather than in dag_factory so that naming a DAG does not import Airflow.
def dag_id_for(pipeline_name: str) -> str:
    return f"{pipeline_name}_pipeline"


def data_dag_id_for(pipeline_name: str) -> str:
    return f"{pipeline_name}_data"


def serving_dag_id_for(pipeline_name: str) -> str:
    return f"{pipeline_name}_serving"


def monitoring_dag_id_for(pipeline_name: str) -> str:
    return f"{pipeline_name}_monitoring"
