from __future__ import annotations

from pathlib import Path

from pipeline_components.orchestration.dag_factory import build_pipeline_dag
from pipeline_components.orchestration.operators import TfxNodeOperator
from tests.unit.orchestration.test_ir import DEMO, write_ir


def test_one_task_per_node_with_the_irs_edges(tmp_path: Path) -> None:
    ir = write_ir(tmp_path / "demo.json", DEMO)
    dag = build_pipeline_dag(ir_path=ir, description="demo pipeline")
    assert dag.dag_id == "demo_pipeline"
    assert set(dag.task_dict) == {"CsvExampleGen", "StatisticsGen", "Trainer", "Pusher"}
    assert dag.task_dict["Pusher"].upstream_task_ids == {"StatisticsGen", "Trainer"}
    assert dag.task_dict["CsvExampleGen"].downstream_task_ids == {"StatisticsGen", "Trainer"}
    trainer = dag.task_dict["Trainer"]
    assert isinstance(trainer, TfxNodeOperator)
    assert trainer.tfx_node_id == "Trainer"
    assert trainer.ir_path == str(ir)
    # Retraining must never overlap on one ML Metadata SQLite file.
    assert dag.max_active_runs == 1
    assert dag.schedule is None or str(dag.schedule) in ("None", "")
