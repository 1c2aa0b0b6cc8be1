"""The rollout as Airflow tasks: one task per step, so an operator watches each one (orchestrator process, no
TensorFlow: a step starts in well under a second).

- In ``<name>_pipeline``: the task group ``rollout`` after the Pusher. It is skipped when the Pusher was skipped
  (nothing pushed), and when no fleet is running (the log says how to start one and roll out by hand).
- ``<name>_serving``: a manual DAG for operators, ``promote`` or ``rollback`` with a ``version`` parameter, through
  the same steps.

A failing step has already put the previous stable back on every instance when its task fails (not retried: the
rollout is re-run, not a step); ``rollback_on_failure`` (trigger rule ``one_failed``) repeats that for a step that
could not (a task killed by its timeout).
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, Param, TaskGroup
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.fleet.canary import CANARY_STEP
from pipeline_components.fleet.operations import fleet_rollout, promote_or_rollback_target
from pipeline_components.fleet.rollout import STEPS, NothingToRollOut, Rollout, RolloutFailed
from pipeline_components.settings import Settings

ROLLOUT_GROUP = "rollout"
ROLLBACK_TASK = "rollback_on_failure"
STEP_TASKS = STEPS  # one task per step of the rollout


def no_fleet_message(config: PipelineConfig) -> str:
    return (
        "no serving fleet is running, so nothing was rolled out. Start one with `runway fleet up`, then roll the "
        f"newest version out with `runway fleet rollout {config.name}` (or `runway fleet promote {config.name} N`)"
    )


class RolloutStepOperator(BaseOperator):
    """One step of the rollout of ``config``'s model (see ``pipeline_components.fleet.rollout``)."""

    ui_color = "#d4efdf"

    def __init__(self, *, step: str, config_path: str, candidate_from: str = "push", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if step not in (*STEP_TASKS, CANARY_STEP, ROLLBACK_TASK):
            raise ValueError(f"unknown rollout step {step}")
        self.step = step
        self.config_path = config_path
        self.candidate_from = candidate_from  # "push": the Pusher's version; "params": the serving DAG's form

    def _candidate(self, rollout: Rollout, context: Any) -> int:
        params = context.get("params") or {}
        if self.candidate_from == "params":
            version = params.get("version")
            if params.get("action") == "rollback":
                return promote_or_rollback_target(rollout.store, rollout.model, int(version) if version else None)
            if not version:
                raise AirflowFailException("promote needs the version parameter (the version folder's number)")
            return int(version)
        if params.get("dry_run"):
            raise AirflowSkipException("dry run: nothing was pushed, nothing to roll out")
        ti = context["ti"]
        pushed = ti.xcom_pull(task_ids="Pusher", key="pushed")
        version = ti.xcom_pull(task_ids="Pusher", key="version")
        if not pushed or not version:
            raise AirflowSkipException("the Pusher pushed nothing in this run: nothing to roll out")
        return int(version)

    def execute(self, context: Any) -> str:
        settings = Settings.from_env()
        config = load_pipeline_config(self.config_path)
        rollout = fleet_rollout(config, settings, say=self.log.info)
        if rollout is None:
            if self.step == ROLLBACK_TASK:
                return "no fleet: nothing to roll back"
            raise AirflowSkipException(no_fleet_message(config))
        try:
            if self.step == "load":
                candidate = self._candidate(rollout, context)
                outcome = rollout.load(candidate)
            elif self.step == ROLLBACK_TASK:
                journal = rollout.journal()
                if journal.get("status") != "in_progress":
                    return f"nothing to roll back: the rollout is {journal.get('status', 'not started')}"
                raise rollout.fail("task", "a rollout step ended without finishing (killed or timed out)")
            elif self.step == CANARY_STEP:
                outcome = rollout.analyse_canary()
            elif self.step == "promote":
                previous = rollout.store.serving(rollout.model).stable
                candidate = rollout.candidate()
                outcome = rollout.promote()
                if previous != candidate:  # tell downstream apps: a webhook, and this task's Asset event
                    from pipeline_components.fleet.operations import notify

                    notify(rollout.model, candidate, previous, rollout.fleet, context)
            else:
                outcome = getattr(rollout, self.step)()
        except NothingToRollOut as nothing:
            raise AirflowSkipException(str(nothing)) from None
        except RolloutFailed as failed:
            raise AirflowFailException(str(failed)) from None
        finally:
            rollout.close()
        self.log.info("%s: %s", self.step, outcome)
        return outcome


def rollout_task_group(*, config: PipelineConfig, candidate_from: str = "push") -> tuple[TaskGroup, Any]:
    """The ``rollout`` group: the steps in a chain, and the backstop rollback. Returns (group, first task)."""
    canary = config.serving.canary
    names = list(STEP_TASKS)
    if config.serving.rollout == "canary":  # judged on mirrored live traffic before it is promoted (fleet.canary)
        names.insert(names.index("promote"), CANARY_STEP)
    with TaskGroup(group_id=ROLLOUT_GROUP, tooltip="Verified, fleet-wide rollout (docs/fleet.md)") as group:
        steps: list[BaseOperator] = [
            RolloutStepOperator(
                task_id=step,
                step=step,
                config_path=str(config.source),
                candidate_from=candidate_from,
                retries=0,
                execution_timeout=timedelta(
                    seconds=config.serving.rollout_timeout_s
                    + 120
                    + (canary.iterations * canary.interval_s if step == CANARY_STEP else 0)
                ),
                outlets=_stable_outlets(config) if step == "promote" else [],
            )
            for step in names
        ]
        if config.serving.approval == "required":
            from pipeline_components.fleet.approval import APPROVE_TASK, RolloutApprovalOperator

            approve = RolloutApprovalOperator(task_id=APPROVE_TASK, config=config)
            steps.insert(STEP_TASKS.index("promote"), approve)
        for upstream, downstream in itertools.pairwise(steps):
            upstream >> downstream
        backstop = RolloutStepOperator(
            task_id=ROLLBACK_TASK,
            step=ROLLBACK_TASK,
            config_path=str(config.source),
            retries=1,
            trigger_rule="one_failed",
        )
        steps >> backstop
    return group, steps[0]


def _stable_outlets(config: PipelineConfig) -> list[Any]:
    """The Asset downstream apps schedule on: updated when ``stable`` moves (pipeline_components.client)."""
    try:
        from pipeline_components.client.assets import stable_asset
    except ImportError:
        return []
    return [stable_asset(config.serving.model_name)]


def serving_params() -> dict[str, Param]:
    return {
        "action": Param(
            "promote",
            enum=["promote", "rollback"],
            description="promote: make `version` stable (verified rollout); rollback: go back to `version`, "
            "or to the newest version older than the current stable when `version` is empty",
        ),
        "version": Param(
            None, type=["null", "integer"], minimum=1, description="Version number (the folder under the store)"
        ),
    }
