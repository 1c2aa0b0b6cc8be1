"""``<name>_monitoring``: watch what the fleet answered and ask for retraining when the world drifted.

    watch_traffic -> check_alert -> request_retraining

- ``watch_traffic`` runs ``python -m pipeline_components.monitoring`` in the runtime environment: the traffic the
  fleet logged for the pipeline's model since the previous window, against the training statistics of
  the version that answered (skew) and against the previous window (drift), with TFDV (docs/monitoring.md). Its
  figures are the task's XCom; its report page is the task's "Report" link.
- ``check_alert`` lets the run go on only when a threshold was crossed (otherwise ``request_retraining`` is
  skipped: nothing to do, at a glance).
- ``request_retraining`` emits the pipeline's Asset (``<name>_spans``) with the evidence in the event's ``extra``:
  a pipeline scheduled on it (``schedule.on_new_span``) retrains, and its data gate judges the data on its own.

Scheduled by ``monitoring.schedule`` (cron, UTC); triggered by hand any time (``runway monitor NAME`` does both
the replay of real traffic and such a run). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, BaseOperator, CronTriggerTimetable

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.fleet.request_logging import request_log_prefix
from pipeline_components.orchestration import monitoring_dag_id_for
from pipeline_components.orchestration.dag_factory import START_DATE, spans_asset
from pipeline_components.orchestration.links import REPORT_XCOM_KEY, NodeReportLink, report_url
from pipeline_components.orchestration.monitoring_windows import WINDOW_PREFIX, judged_until, last_window, windows_dir
from pipeline_components.orchestration.operators import RuntimeCommandOperator
from pipeline_components.settings import Settings

WATCH_TASK = "watch_traffic"


def window_arguments(config: PipelineConfig, settings: Settings, *, until: int) -> list[str]:
    """``python -m pipeline_components.monitoring``'s arguments for the window that ends at ``until`` (or before
    it, where the servers still write requests answered before then: ``judged_until``).

    The window starts where the last judged one ended (all logged traffic before the first), so every logged
    request is judged once; a window without traffic is skipped and the next one covers its time as well.
    """
    previous = last_window(settings.home, config.name)
    since = json.loads((previous / "result.json").read_text())["window"]["until"] if previous else 0
    logging = config.serving.request_logging
    prefix = request_log_prefix(
        home=settings.home, model=config.serving.model_name, directory=logging.directory if logging else None
    )
    until = judged_until(prefix, until)
    stamp = datetime.fromtimestamp(until, UTC).strftime("%Y%m%dT%H%M%SZ")
    out = windows_dir(settings.home, config.name) / f"{WINDOW_PREFIX}{stamp}"
    return [
        *("--pipeline", config.name, "--log-prefix", str(prefix)),
        *("--since", str(min(since, until - 1)), "--until", str(until), "--out", str(out)),
        *(("--previous", str(previous)) if previous else ()),
    ]


class WatchTrafficOperator(RuntimeCommandOperator):
    """One window of served traffic judged in the runtime environment; links its report page."""

    module = "pipeline_components.monitoring"
    operator_extra_links = (NodeReportLink(),)
    ui_color = "#d6eaf8"

    def __init__(self, *, config_path: str, **kwargs: Any) -> None:
        super().__init__(runtime_args=[], **kwargs)
        self.config_path = config_path

    def arguments(self, context: Any) -> list[str]:
        config = load_pipeline_config(Path(self.config_path))
        return window_arguments(config, Settings.from_env(), until=int(time.time()))

    def execute(self, context: Any) -> Any:
        result = super().execute(context)
        if not isinstance(result, dict):
            return result
        if result.get("report"):  # report.html's path under RUNWAY_HOME
            result["page"] = report_url(result["report"])
            context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=result["page"])
        for line in result.get("evidence") or []:
            self.log.warning("drift: %s", line)
        self.log.info(
            "window %s .. %s: %s rows, %s",
            (result.get("window") or {}).get("since"),
            (result.get("window") or {}).get("until"),
            result.get("rows"),
            "ALERT" if result.get("alert") else "no threshold crossed",
        )
        return result


def drift_in(ti: Any) -> bool:
    """Whether ``watch_traffic`` crossed a threshold (the short-circuit's condition)."""
    result = ti.xcom_pull(task_ids=WATCH_TASK) or {}
    return bool(result.get("alert"))


class RequestRetrainingOperator(BaseOperator):
    """Emit the pipeline's Asset with the monitoring evidence in the event's ``extra``."""

    ui_color = "#fdebd0"

    def execute(self, context: Any) -> dict[str, Any]:
        result = context["ti"].xcom_pull(task_ids=WATCH_TASK) or {}
        extra = {
            "reason": "drift in served traffic",
            "monitoring_run": context["run_id"],
            "window": result.get("window"),
            "evidence": result.get("evidence") or [],
            "report": result.get("page"),
        }
        for asset in self.outlets:
            context["outlet_events"][asset].extra = extra
        self.log.info("retraining requested: %s", "; ".join(extra["evidence"]) or "(no evidence given)")
        return extra


def build_monitoring_dag(*, config: PipelineConfig, settings: Settings) -> DAG:
    """The monitoring DAG of one pipeline (module docstring)."""
    cron = config.monitoring.schedule
    with DAG(
        dag_id=monitoring_dag_id_for(config.name),
        description=f"Skew and drift of the traffic {config.serving.model_name} answers; retraining when it drifts",
        doc_md=__doc__,
        schedule=CronTriggerTimetable(cron, timezone="UTC") if cron else None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["monitoring", config.name],
    ) as dag:
        watch = WatchTrafficOperator(task_id=WATCH_TASK, config_path=str(config.source), retries=1)
        detected = ShortCircuitOperator(task_id="check_alert", python_callable=drift_in)
        retrain = RequestRetrainingOperator(task_id="request_retraining", outlets=[spans_asset(config, settings)])
        watch >> detected >> retrain
    return dag
