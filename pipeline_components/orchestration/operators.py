"""Airflow operators: run one TFX node, and check a run's parameters before any node runs."""

from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from pipeline_components import boundary as run_params
from pipeline_components.boundary import EXIT_GATE_FAILED, EXIT_NOT_RETRYABLE, EXIT_SKIPPED, RUNTIME_ENV, error_message
from pipeline_components.config import load_pipeline_config
from pipeline_components.data.preflight import preflight
from pipeline_components.errors import ConfigError, RuntimeEnvironmentError
from pipeline_components.orchestration.links import FAILURE_XCOM_KEY, REPORT_XCOM_KEY, NodeReportLink, report_url
from pipeline_components.orchestration.runner import (
    LocalNodeRunner,
    NodeCommand,
    node_failure_message,
)
from pipeline_components.orchestration.warm_client import WarmNodeRunner, node_runner
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


def _plain(values: Any) -> dict[str, Any]:
    """Airflow's ParamsDict (or a plain dict) as a JSON-ready dict of values."""
    return {key: values[key] for key in values} if values else {}


def record_failure(context: Any, reason: str, *, report: str = "") -> None:
    """Say why the task fails, for the run's summary: the reason's first line and the page with the details.

    An XCom, pushed before the exception that fails the task (``runway run`` reads it with the task states).
    """
    try:
        line = next((part for part in reason.splitlines() if part.strip()), reason).strip()
        context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value={"reason": line, "report": report})
    except Exception:  # the summary's line is a convenience; the task fails with its reason regardless
        logging.getLogger(__name__).warning("could not record why %s failed", context.get("ti"))


class CheckRunParametersOperator(BaseOperator):
    """First task of every run: validate the run parameters, then the configuration against the data.

    An invalid value fails the run here, before any node, with a message that names the parameter; the
    trigger form has already checked each value's type and range. Then the pre-flight check
    (``data/preflight.py``): the span to ingest against the configuration's columns and types, the committed
    schema and the expectation suite; a mismatch fails the run here, never retried, naming the column or key.
    """

    ui_color = "#eaecee"

    def __init__(self, *, config_path: str, check_data: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self.check_data = check_data

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            config = load_pipeline_config(self.config_path)
            resolved = run_params.validate(_plain(context["params"]), config)
            if self.check_data:
                data_dir = Settings.from_env().data_dir
                spans = run_params.check_against_data(resolved, config, data_dir)
                self.log.info("spans present: %s", spans)
                for line in preflight(config, data_dir, resolved.get("span"), spans):
                    self.log.info("pre-flight: %s", line)
        except ConfigError as err:
            self.log.error("%s", err)
            record_failure(context, str(err))
            raise AirflowFailException(str(err)) from None
        for name, value in sorted(resolved.items()):
            self.log.info("run parameter %-22s = %r", name, value)
        return resolved


class TfxNodeOperator(BaseOperator):
    """Run one node of a compiled TFX pipeline in the pipeline runtime environment.

    The node runs with TFX's portable launcher against the pipeline's ML Metadata store; the Airflow run id
    is the TFX pipeline run id, and the run's parameters are applied to the node before it runs. The node's
    output streams into this task's log. Its exit code decides the task's state: a gate that refused the run
    fails the task without retries (``AirflowFailException``); "nothing to do" (dry run, model not blessed)
    skips it with the reason; any other failure fails it and Airflow retries it with backoff. The node's key
    figures (rows, anomalies, metrics, pushed version) are the task's XComs, one key each.

    Args:
        ir_path: the compiled pipeline (JSON IR).
        node_id: the TFX node id in that IR.
        component_type: the node's component class, for display.
    """

    template_fields = ("ir_path", "tfx_node_id")
    operator_extra_links = (NodeReportLink(),)

    def __init__(self, *, ir_path: str, node_id: str, component_type: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ir_path = ir_path
        self.tfx_node_id = node_id
        self.component_type = component_type
        self.ui_color = UI_COLORS.get(component_type.rsplit(".", 1)[-1], "#ffffff")

    @cached_property
    def runner(self) -> LocalNodeRunner | WarmNodeRunner:
        # The warm runtime (docs/warm-runtime.md) unless RUNWAY_WARM_RUNTIME=off; it falls back to a cold process.
        try:
            return node_runner()
        except ConfigError as err:
            raise AirflowFailException(str(err)) from None

    def execute(self, context: Any) -> dict[str, Any]:
        run_id = context["run_id"]
        command = NodeCommand.for_node(
            settings=Settings.from_env(),
            ir_path=Path(self.ir_path),
            node_id=self.tfx_node_id,
            run_id=run_id,
            params=_plain(context.get("params")),
        )
        command = NodeCommand(argv=command.argv, env={**command.env, **self.node_env(context)})
        self.log.info("TFX node %s, pipeline run id %s: %s", self.tfx_node_id, run_id, " ".join(command.argv))
        try:
            outcome = self.runner.run(command, log=node_log.info)
        except RuntimeEnvironmentError as err:
            raise AirflowFailException(str(err)) from None
        result = outcome.result or {}
        # Before the state is decided: a failed gate's page is the one an operator needs most. Pushed empty when
        # the node wrote none, so that the Report link (read as the task ends) finds a value rather than an error.
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=report_url(result["report"]) if result.get("report") else "")
        if result.get("report"):
            self.log.info("report: %s (in the Airflow UI: the task's Report link)", report_url(result["report"]))
        if outcome.returncode == EXIT_SKIPPED:
            reason = result.get("reason", "nothing to do")
            reason += self._evaluation_reason(context) if "not blessed" in reason else ""
            self.log.info("%s", summarize(result))
            raise AirflowSkipException(f"{self.tfx_node_id} skipped: {reason}")
        if outcome.returncode in (EXIT_GATE_FAILED, EXIT_NOT_RETRYABLE):
            # A gate refused the run, or the configuration or an input is wrong: a retry would fail the same way.
            self.log.error("%s", summarize(result))
            reason = (
                result.get("reason") or error_message(outcome.tail) or node_failure_message(self.tfx_node_id, outcome)
            )
            record_failure(context, reason, report=result.get("report", ""))
            raise AirflowFailException(reason)
        if outcome.returncode != 0:
            message = node_failure_message(self.tfx_node_id, outcome)
            record_failure(context, message)
            raise AirflowException(message)
        for key, value in sorted(result.get("figures", {}).items()):
            context["ti"].xcom_push(key=key, value=value)
        self.log.info("%s", summarize(result))
        return result

    def node_env(self, context: Any) -> dict[str, str]:
        """Variables a subclass adds to the node's environment (``training_workers.TrainerChiefOperator``)."""
        return {}

    def _evaluation_reason(self, context: Any) -> str:
        """Why the Evaluator did not bless, from its XComs (same run)."""
        try:
            failures = context["ti"].xcom_pull(task_ids="Evaluator", key="failures")
        except Exception:  # the XCom is a convenience for the message only
            return ""
        return f" ({'; '.join(failures)})" if failures else ""

    def on_kill(self) -> None:
        self.runner.kill()


def summarize(result: dict[str, Any]) -> str:
    """A short paragraph for the end of the task log: what ran, what changed, the key figures."""
    if not result:
        return "node finished (no result summary)"
    lines = [f"=== {result.get('node')} summary ==="]
    if result.get("status"):
        lines.append(f"status: {result['status']}: {result.get('reason', '')}")
    elif not result.get("executed", True):
        lines.append("not executed (inputs not ready or skipped by TFX)")
    else:
        lines.append(f"finished in {result.get('seconds', '?')} s (ML Metadata execution {result.get('execution_id')})")
    for change in result.get("parameters_applied", []):
        lines.append(f"parameter: {change}")
    figures = result.get("figures", {})
    if "rows" in figures:
        lines.append("rows: " + ", ".join(f"{split} {count}" for split, count in figures["rows"].items()))
    if "anomaly_count" in figures:
        lines.append(f"anomalies: {figures['anomaly_count']}")
        lines.extend(f"  - {a['feature']}: {a['short']}" for a in figures["anomalies"][:20])
    if "metrics" in figures:
        metrics = figures["metrics"]
        for name in sorted(k for k in metrics if not k.endswith("_diff")):
            diff = metrics.get(f"{name}_diff")
            lines.append(
                f"metric {name}: {metrics[name]:.4f}" + (f" ({diff:+.4f} vs baseline)" if diff is not None else "")
            )
        lines.append(f"blessed: {figures.get('blessed')}")
        lines.extend(f"  threshold failed: {f}" for f in figures.get("failures", []))
    if figures.get("pushed"):
        lines.append(f"pushed version {figures['version']} to {figures['destination']}")
    if "span" in figures:
        lines.append(f"span ingested: {figures['span']}")
    for key, artifacts in sorted(result.get("outputs", {}).items()):
        for artifact in artifacts:
            lines.append(f"artifact {key}: {artifact['type']} {artifact['uri']}")
    return "\n".join(lines)


class RuntimeCommandOperator(BaseOperator):
    """Run ``python -m <module> ARGS`` in the runtime environment (locally), logging its output; its last JSON line
    is the task's XCom.

    Used for work around the pipeline that needs TensorFlow or pandas, such as preparing the next span. An exit
    status of ``EXIT_SKIPPED`` skips the task (its last line of output says why); any other failure fails it.
    """

    template_fields = ("runtime_args",)
    module = "pipeline_components.runtime"

    def __init__(self, *, runtime_args: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime_args = runtime_args

    @cached_property
    def runner(self) -> LocalNodeRunner:
        return LocalNodeRunner()

    def arguments(self, context: Any) -> list[str]:
        """The command's arguments (a subclass may compute them when the task runs)."""
        return list(self.runtime_args)

    def execute(self, context: Any) -> Any:
        settings = Settings.from_env()
        command = NodeCommand(
            argv=[str(settings.runtime_python), "-m", self.module, *self.arguments(context)],
            env={**settings.as_env(), **RUNTIME_ENV},
        )
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)
            node_log.info(line)

        try:
            outcome = self.runner.run(command, log=log)
        except RuntimeEnvironmentError as err:
            raise AirflowFailException(str(err)) from None
        if outcome.returncode == EXIT_SKIPPED:
            raise AirflowSkipException(next((line for line in reversed(lines) if line.strip()), "skipped"))
        if outcome.returncode != 0:
            reason = error_message(lines) or node_failure_message(self.task_id, outcome)
            record_failure(context, reason)
            raise AirflowFailException(reason)
        payload = [line for line in lines if line.startswith(("[", "{"))]
        return json.loads(payload[-1]) if payload else None

    def on_kill(self) -> None:
        self.runner.kill()
