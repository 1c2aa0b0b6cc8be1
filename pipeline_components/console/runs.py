"""The runs of ``<name>_pipeline`` as the console shows them: each gate's verdict, the reason of a refusal, figures.

Read from Airflow's own database in the API server's process (no TensorFlow, no ML Metadata there): the runs, their
task states, and the XComs every TFX node task publishes (one key each: ``orchestration/operators.py``,
``runtime/node_figures.py``) and every failing task records (``record_failure``: why, and the page). Three queries
whatever the number of runs (runs, task instances, XComs of the keys the console reads).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline_components.orchestration.links import FAILURE_XCOM_KEY, REPORT_XCOM_KEY, report_url

GATES = ("data", "evaluation", "contract", "infra", "push", "rollout")
# The tasks of each gate; the rollout is the task group `rollout.*` (fleet/tasks.py).
GATE_TASKS: dict[str, tuple[str, ...]] = {
    "data": (
        "check_params",
        "DeliveryValidator",
        "GreatExpectationsValidator",
        "DriftSkewValidator",
        "ExampleValidator",
    ),
    "evaluation": ("Evaluator",),
    "contract": ("ModelInspector",),
    "infra": ("InfraValidator",),
    "push": ("Pusher",),
}
ROLLOUT_PREFIX = "rollout."
# The XComs the console reads (never `return_value`, the node's whole result: large, and not needed here).
KEYS = (
    FAILURE_XCOM_KEY,
    REPORT_XCOM_KEY,
    "blessed",
    "failures",
    "metrics",
    "baseline_metrics",
    "gate_summary",
    "pushed",
    "version",
    "rows_total",
    "tflite_rejected",
)
FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}
RUN_FINISHED = {"success", "failed"}


@dataclass(frozen=True)
class GateVerdict:
    """One gate of one run: ``passed``, ``failed``, ``skipped`` (not reached, nothing to do) or ``pending``."""

    gate: str
    verdict: str
    reason: str = ""
    report: str = ""  # the URL of the page that explains it ("" when none)


@dataclass(frozen=True)
class RunRecord:
    """One run of ``<name>_pipeline``: its state, each task's state and the XComs the console reads."""

    run_id: str
    state: str
    started: datetime | None
    triggered_by: str
    tasks: dict[str, str | None] = field(default_factory=dict)  # task id -> state
    ended: dict[str, datetime | None] = field(default_factory=dict)  # task id -> end date
    xcoms: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> key -> value

    def figure(self, task: str, key: str) -> Any:
        return self.xcoms.get(task, {}).get(key)

    @property
    def pushed_version(self) -> int | None:
        version = self.figure("Pusher", "version")
        return int(version) if self.figure("Pusher", "pushed") and str(version or "").isdigit() else None

    def metric(self, name: str) -> float | None:
        value = (self.figure("Evaluator", "metrics") or {}).get(name)
        return float(value) if isinstance(value, int | float) else None

    def served_metric(self, name: str) -> float | None:
        """The served model's (the Evaluator's baseline's) ``name`` on this run's new span."""
        value = (self.figure("Evaluator", "baseline_metrics") or {}).get(name)
        return float(value) if isinstance(value, int | float) else None

    @property
    def rows(self) -> int | None:
        value = self.figure("StatisticsGen", "rows_total")
        return int(value) if isinstance(value, int | float) else None

    def gate_tasks(self, gate: str) -> list[str]:
        if gate == "rollout":
            return sorted(task for task in self.tasks if task.startswith(ROLLOUT_PREFIX))
        return [task for task in GATE_TASKS[gate] if task in self.tasks]

    def verdicts(self) -> list[GateVerdict]:
        return [self.verdict(gate) for gate in GATES]

    def verdict(self, gate: str) -> GateVerdict:
        """The gate's verdict from its tasks' states, and for a failure the reason its task recorded."""
        names = self.gate_tasks(gate)
        states = [self.tasks[name] for name in names]
        for name in names:
            if self.tasks[name] == "failed":
                failure = self.figure(name, FAILURE_XCOM_KEY) or {}
                reason = str(failure.get("reason") or f"{name} failed (its log says why)")
                return GateVerdict(gate, "failed", reason, self._report(name))
        if self.state not in RUN_FINISHED and any(state not in FINISHED for state in states):
            return GateVerdict(gate, "pending")
        if gate == "evaluation" and self.figure("Evaluator", "blessed") is False:
            failures = self.figure("Evaluator", "failures") or []
            reason = "not blessed" + (f": {failures[0]}" if failures else "")
            return GateVerdict(gate, "failed", reason, self._report("Evaluator"))
        if "success" in states:
            report = next((url for url in map(self._report, names) if url), "")
            return GateVerdict(gate, "passed", self._summary(gate, names), report)
        why = "not reached: an earlier task failed" if "upstream_failed" in states else "nothing to do"
        return GateVerdict(gate, "skipped", why if states else "not in this run")

    def _summary(self, gate: str, names: list[str]) -> str:
        if gate == "push":
            return f"version {self.pushed_version}" if self.pushed_version else ""
        summaries = [str(self.figure(name, "gate_summary")) for name in names if self.figure(name, "gate_summary")]
        return summaries[0] if len(summaries) == 1 else ""

    def _report(self, task: str) -> str:
        failure = self.figure(task, FAILURE_XCOM_KEY) or {}
        return str(self.figure(task, REPORT_XCOM_KEY) or "") or (
            report_url(failure["report"]) if failure.get("report") else ""
        )

    @property
    def failure(self) -> str:
        """Why the run failed, when a task outside the gates failed (a gate's reason is in its cell)."""
        gated = {name for gate in GATES for name in self.gate_tasks(gate)}
        for name, state in sorted(self.tasks.items()):
            if state == "failed" and name not in gated:
                recorded = self.figure(name, FAILURE_XCOM_KEY) or {}
                return f"{name}: {recorded.get('reason') or 'failed (its log says why)'}"
        return ""


def _value(raw: Any) -> Any:
    """An XCom value as read from the JSON column: values set through ``serialize_value`` are JSON text."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def read_runs(session: Any, dag_id: str, *, limit: int = 50) -> list[RunRecord]:
    """The newest ``limit`` runs of ``dag_id``, newest first, from Airflow's database (three queries).

    Args:
        session: a SQLAlchemy session on Airflow's metadata database (the API server's).
        dag_id: ``<name>_pipeline``.
        limit: how many runs.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    rows = session.execute(
        select(DagRun.run_id, DagRun.state, DagRun.start_date, DagRun.run_type, DagRun.triggering_user_name)
        .where(DagRun.dag_id == dag_id)
        .order_by(DagRun.run_after.desc(), DagRun.id.desc())
        .limit(limit)
    ).all()
    if not rows:
        return []
    run_ids = [row.run_id for row in rows]
    tasks: dict[str, dict[str, str | None]] = {run_id: {} for run_id in run_ids}
    ended: dict[str, dict[str, datetime | None]] = {run_id: {} for run_id in run_ids}
    for ti in session.execute(
        select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state, TaskInstance.end_date).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(run_ids), TaskInstance.map_index == -1
        )
    ).all():
        tasks[ti.run_id][ti.task_id] = str(ti.state) if ti.state is not None else None
        ended[ti.run_id][ti.task_id] = ti.end_date
    xcoms: dict[str, dict[str, dict[str, Any]]] = {run_id: {} for run_id in run_ids}
    for xcom in session.execute(
        select(XComModel.run_id, XComModel.task_id, XComModel.key, XComModel.value).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id.in_(run_ids),
            XComModel.key.in_(KEYS),
            XComModel.map_index == -1,
        )
    ).all():
        xcoms[xcom.run_id].setdefault(xcom.task_id, {})[xcom.key] = _value(xcom.value)
    return [
        RunRecord(
            run_id=row.run_id,
            state=str(row.state),
            started=row.start_date,
            triggered_by=row.triggering_user_name or str(row.run_type),
            tasks=tasks[row.run_id],
            ended=ended[row.run_id],
            xcoms=xcoms[row.run_id],
        )
        for row in rows
    ]


def by_version(runs: Iterable[RunRecord]) -> dict[int, RunRecord]:
    """Version -> the run whose Pusher pushed it."""
    return {run.pushed_version: run for run in runs if run.pushed_version is not None}
