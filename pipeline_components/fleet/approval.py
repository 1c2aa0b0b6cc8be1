"""The approval gate of a rollout (``serving.approval: required``): a person decides before ``stable`` moves.

The task ``rollout.approve`` sits between ``verify`` and ``promote``. It is Airflow's own human-in-the-loop
``ApprovalOperator`` (the request shows under "Required actions", answered there or through the REST API's
``hitlDetails``), so the decision is recorded by Airflow with the user who made it. The request's body is what the
decision needs: the candidate's evaluation against its baseline and its contract check (XComs of this run's
Evaluator and ModelInspector, where the run trained it) and the canary verification (the rollout's journal).

- **Approve**: ``promote`` and ``retire`` run.
- A **rollback** (``<name>_serving`` with ``action: rollback``) asks nobody: it goes back to a version that served.
- **Reject**, or no answer within ``serving.approval_timeout_h``: the previous stable is put back on every instance
  (the candidate leaves ``canary``) before the task ends, then ``promote`` and ``retire`` are skipped. The task's log,
  its XComs (``decision``, ``decided_by``) and the rollout's journal say who or what decided.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.exceptions import HITLTimeoutError
from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk.exceptions import AirflowFailException

from pipeline_components.config import PipelineConfig
from pipeline_components.fleet.operations import fleet_rollout
from pipeline_components.fleet.rollout import Rollout, RolloutFailed
from pipeline_components.settings import Settings

APPROVE_TASK = "approve"
DECISION_KEY = "decision"  # XCom: approved | rejected | timed_out
DECIDED_BY_KEY = "decided_by"  # XCom: the user's name, or what decided (the timeout)


class RolloutApprovalOperator(ApprovalOperator):
    """Wait for a person to approve the verified canary of ``config``'s model; reject or timeout roll back."""

    ui_color = "#fdebd0"

    def __init__(self, *, config: PipelineConfig, **kwargs: Any) -> None:
        timeout_h = config.serving.approval_timeout_h
        super().__init__(
            subject=f"Promote the verified canary of {config.serving.model_name} to stable?",
            body="(written when the canary is verified)",
            response_timeout=timedelta(hours=timeout_h),
            # The execution phases (writing the request; acting on the answer) are short; the wait is not one.
            execution_timeout=timedelta(minutes=10),
            # No retry. Airflow 3.3 has a race on an answer that comes before the scheduler has handled the paused
            # workload's "finished" event: the resumed task is queued, that event arrives and fails it ("finished
            # with state success, but the task instance's state attribute is queued"). The task then fails, and the
            # backstop puts the previous stable back: the safe outcome; the operator triggers the promotion again.
            # A retry would resume with the earlier answer in an undefined way (seen: promote skipped after Approve).
            retries=0,
            **kwargs,
        )
        # As the DAG file built it (with the overrides the pipeline was compiled with): the worker parses it too.
        self.config = config
        self.timeout_h = timeout_h

    def _rollout(self) -> Rollout:
        rollout = fleet_rollout(self.config, Settings.from_env(), say=self.log.info)
        if rollout is None:
            raise AirflowFailException("the serving fleet is gone: nothing to approve (`runway fleet status`)")
        return rollout

    def execute(self, context: Any) -> Any:
        if (context.get("params") or {}).get("action") == "rollback":
            # Going back to a version that served before is the way out of trouble: nobody has to be found first.
            self.log.info("a rollback (serving DAG, action rollback): no approval asked")
            context["ti"].xcom_push(key=DECISION_KEY, value="not_needed")
            return {"decision": "not_needed"}
        rollout = self._rollout()
        try:
            candidate = rollout.candidate()
            previous = rollout.store.serving(rollout.model).stable
            self.subject = (
                f"Promote version {candidate} of {rollout.model} to stable? (stable now: {previous or 'none'})"
            )
            self.body = approval_body(rollout, candidate=candidate, evidence=_run_evidence(context))
        except RolloutFailed as failed:
            raise AirflowFailException(str(failed)) from None
        finally:
            rollout.close()
        self.log.info("%s\n%s", self.subject, self.body)
        self.log.info("waiting up to %g h for a decision (Airflow: Required actions)", self.timeout_h)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        try:
            answer = HITLOperator.execute_complete(self, context, event)
        except HITLTimeoutError:
            decision, decided_by = "timed_out", f"nobody within {self.timeout_h:g} h (the approval timed out)"
        else:
            user = answer.get("responded_by_user") or {}
            approved = answer["chosen_options"] == [self.APPROVE]
            decision = "approved" if approved else "rejected"
            decided_by = user.get("name") or user.get("id") or "Airflow (no user recorded)"
        ti = context["ti"]
        ti.xcom_push(key=DECISION_KEY, value=decision)
        ti.xcom_push(key=DECIDED_BY_KEY, value=decided_by)
        if decision == "approved":
            self.log.info("approved by %s: promoting", decided_by)
            return {"decision": decision, "decided_by": decided_by}
        rollout = self._rollout()
        try:
            reason = f"rejected by {decided_by}" if decision == "rejected" else decided_by
            outcome = str(rollout.fail(APPROVE_TASK, f"not approved: {reason}"))
        finally:
            rollout.close()
        self.log.info("%s", outcome)
        ti.xcom_push(key="outcome", value=outcome)
        # Nothing to promote or retire; the rollback above is done, so the backstop has nothing to do either.
        self.skip(ti=ti, tasks=list(context["task"].get_direct_relatives(upstream=False)))
        return {"decision": decision, "decided_by": decided_by, "outcome": outcome}


def approval_body(rollout: Rollout, *, candidate: int, evidence: dict[str, Any]) -> str:
    """The request a person reads (Markdown): evaluation vs baseline, contract check, canary verification."""
    journal = rollout.journal()
    previous = journal.get("previous", {}).get("labels", {}).get("stable")
    lines = [
        f"Version **{candidate}** of `{rollout.model}` is loaded on every instance of the fleet as `canary`; "
        f"`stable` is still version {previous or 'none'}. Approve moves `stable` to version {candidate}; "
        f"Reject (or no answer in time) puts version {previous or 'none'} back and unlabels the candidate.",
        "",
        "**Evaluation against the baseline**",
    ]
    metrics = evidence.get("metrics") or {}
    baseline = evidence.get("trusted_metrics") or evidence.get("baseline_metrics") or {}
    if metrics:
        for name, value in sorted(metrics.items()):
            against = f" (baseline {_figure(baseline[name])})" if name in baseline else ""
            lines.append(f"- {name}: {_figure(value)}{against}")
        if evidence.get("baseline_drop") is not None:
            lines.append(f"- drop against the baseline: {_figure(evidence['baseline_drop'])}")
    else:
        lines.append("- not in this run (this run did not train the candidate: see the run that pushed it)")
    lines += ["", "**Serving contract**"]
    lines.append(f"- {evidence['contract']}" if evidence.get("contract") else "- not in this run")
    lines += ["", "**Canary verification**"]
    verification = journal.get("verification") or []
    if not verification:
        lines.append("- not verified (the version has no verification samples)")
    for item in verification:
        verdict = item.get("failure") or "answers as exported"
        lines.append(
            f"- {item.get('instance')} {item.get('protocol')}: {item.get('examples')} real examples, {verdict}; "
            f"median {item.get('median_ms')} ms, largest difference {_figure(item.get('max_abs_diff'))}"
        )
    return "\n".join(lines)


def _figure(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _run_evidence(context: Any) -> dict[str, Any]:
    """This run's Evaluator and ModelInspector figures (empty in the serving DAG, which trains nothing)."""
    ti = context["ti"]
    evidence: dict[str, Any] = {}
    for key in ("metrics", "trusted_metrics", "baseline_metrics", "baseline_drop"):
        evidence[key] = _pull(ti, "Evaluator", key)
    summary = _pull(ti, "ModelInspector", "gate_summary")
    if summary:
        evidence["contract"] = summary
    return evidence


def _pull(ti: Any, task_id: str, key: str) -> Any:
    try:
        return ti.xcom_pull(task_ids=task_id, key=key)
    except Exception:  # a task that is not in this DAG: no evidence from it, not a failure of the gate
        return None
