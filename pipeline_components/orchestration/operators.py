"""The Airflow operator that runs one TFX node."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from pipeline_components.errors import NodeFailedError, RuntimeEnvironmentError
from pipeline_components.orchestration.runner import LocalNodeRunner, NodeCommand, node_failure_message
from pipeline_components.settings import Settings

node_log = logging.getLogger("runway.tfx_node")

# One colour per TFX stage, so the graph view reads at a glance.
UI_COLORS = {
    "CsvExampleGen": "#d6eaf8",
    "StatisticsGen": "#d1f2eb",
    "ImportSchemaGen": "#d1f2eb",
    "SchemaGen": "#d1f2eb",
    "ExampleValidator": "#d1f2eb",
    "Transform": "#fdebd0",
    "Trainer": "#fadbd8",
    "Resolver": "#e8daef",
    "Evaluator": "#fcf3cf",
    "Pusher": "#d5f5e3",
}


class TfxNodeOperator(BaseOperator):
    """Run one node of a compiled TFX pipeline in the pipeline runtime environment.

    The node runs with TFX's portable launcher against the pipeline's ML Metadata store; the Airflow run id
    is the TFX pipeline run id. The node's output streams into this task's log; a failing node fails the task
    with the node's error. The node's execution summary (artifacts in and out) is the task's XCom.

    Args:
        ir_path: the compiled pipeline (JSON IR).
        node_id: the TFX node id in that IR.
        component_type: the node's component class, for display.
    """

    template_fields = ("ir_path", "tfx_node_id")

    def __init__(self, *, ir_path: str, node_id: str, component_type: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ir_path = ir_path
        self.tfx_node_id = node_id
        self.component_type = component_type
        short = component_type.rsplit(".", 1)[-1]
        self.ui_color = UI_COLORS.get(short, "#ffffff")

    @cached_property
    def runner(self) -> LocalNodeRunner:
        return LocalNodeRunner()

    def execute(self, context: Any) -> dict[str, Any]:
        run_id = context["run_id"]
        command = NodeCommand.for_node(
            settings=Settings.from_env(), ir_path=Path(self.ir_path), node_id=self.tfx_node_id, run_id=run_id
        )
        self.log.info("TFX node %s, pipeline run id %s: %s", self.tfx_node_id, run_id, " ".join(command.argv))
        try:
            outcome = self.runner.run(command, log=node_log.info)
        except RuntimeEnvironmentError as err:
            raise AirflowException(str(err)) from None
        if outcome.returncode != 0:
            raise AirflowException(node_failure_message(self.tfx_node_id, outcome)) from NodeFailedError(
                self.tfx_node_id
            )
        result = outcome.result or {}
        self.log.info("%s", summarize(result))
        return result

    def on_kill(self) -> None:
        self.runner.kill()


def summarize(result: dict[str, Any]) -> str:
    """One readable paragraph for the end of the task log."""
    if not result:
        return "node finished (no result summary)"
    if not result.get("executed", True):
        return f"{result.get('node')}: not executed (inputs not ready or skipped)"
    lines = [f"{result['node']} finished in {result.get('seconds', '?')} s (execution {result.get('execution_id')})"]
    for key, artifacts in sorted(result.get("outputs", {}).items()):
        for artifact in artifacts:
            lines.append(f"  out {key}: {artifact['type']} {artifact['uri']}")
    return "\n".join(lines)
