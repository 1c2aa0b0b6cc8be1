"""What the ``runway`` command prints: progress lines and the summary of a run."""

from __future__ import annotations

from typing import Any


def say(message: str = "") -> None:
    """One line to the terminal, flushed at once (progress must show while a long command runs)."""
    print(message, flush=True)


def print_summary(summary: dict[str, Any]) -> None:
    """A run's tasks (state, duration), spans, metrics against the baseline, blessing and push."""
    say(f"\nRun {summary['run_id']} of {summary['dag_id']}")
    say(f"  {'task':<32} {'state':<10} {'duration':>9}")
    for task in summary["tasks"]:
        seconds = f"{task['seconds']:.1f} s" if task.get("seconds") is not None else "-"
        say(f"  {task['task_id']:<32} {task['state'] or '-':<10} {seconds:>9}")
    print_failures(summary.get("failures") or {})
    meta = summary.get("metadata") or {}
    if "error" in meta:
        say(f"  (no ML Metadata summary: {meta['error']})")
        return
    spans = meta.get("spans", {})
    say(f"Spans: ingested {spans.get('ingested')}, training window {spans.get('training_window')}")
    if (left := spans_left(summary)) is not None:
        say(f"Spans left out: {left}")
    evaluation = meta.get("evaluation", {})
    if line := metrics_line(evaluation.get("metrics", {})):
        say("Evaluation: " + line)
    if line := metrics_line((evaluation.get("trusted") or {}).get("metrics", {})):
        trusted_spans = ", ".join(str(s) for s in evaluation.get("trusted_spans", []))
        say(f"Trusted set (spans {trusted_spans}): {line}")
    baseline = evaluation.get("baseline_run_id")
    say(f"Baseline: {'model of run ' + baseline if baseline else 'none (first blessed model)'}")
    blessed = evaluation.get("blessed")
    failures = evaluation.get("failures") or []
    refused_by = evaluation.get("refused_by")
    if refused_by is None:  # a run before the trusted set: TFMA's failures on one line
        say(f"Blessed: {'yes' if blessed else 'no'}" + (f" ({'; '.join(failures)})" if failures else ""))
    else:  # which evaluation refused, then one line per reason
        say(
            f"Blessed: {'yes' if blessed else 'no'}"
            + (f" (refused by the {', the '.join(refused_by)})" * bool(refused_by))
        )
        for failure in failures:
            say(f"  - {failure}")
    push = meta.get("push", {})
    pusher_state = next((t["state"] for t in summary["tasks"] if t["task_id"] == "Pusher"), None)
    reason = (summary.get("skip_reasons") or {}).get("Pusher")
    if push.get("pushed"):
        say(f"Pushed: version {push['version']} -> {push['destination']}")
    elif reason:
        say(f"Pushed: nothing ({reason})")
    else:
        say(f"Pushed: nothing (Pusher {pusher_state or 'did not run'})")


def metrics_line(metrics: dict[str, float]) -> str:
    """``auc 0.7795 (+0.0100 vs baseline); ...``: every metric but the loss, with its change against the baseline."""
    parts = []
    for key in sorted(k for k in metrics if not k.endswith("_diff") and k != "loss"):
        diff = metrics.get(f"{key}_diff")
        parts.append(f"{key} {metrics[key]:.4f}" + (f" ({diff:+.4f} vs baseline)" if diff is not None else ""))
    return "; ".join(parts)


def print_failures(failures: dict[str, Any]) -> None:
    """For each failed task, the one line that says why, and where the full report is."""
    for task_id, failure in failures.items():
        tries = f" (after {failure['tries']} tries)" if failure.get("tries", 1) > 1 else ""
        reason = str(failure["reason"]).removeprefix(f"{task_id}: ")  # a gate's reason may start with its name
        say(f"Failed: {task_id}{tries}: {reason}")
        say(f"  full report: {failure['report']}")


def spans_left(summary: dict[str, Any]) -> str | None:
    """Which spans on disk the model did not train on, and why (None when the run trained on nothing)."""
    meta = summary.get("metadata") or {}
    window = (meta.get("spans") or {}).get("training_window") or []
    present = summary.get("spans_present")
    if not window or present is None:
        return None
    ingested = set(meta.get("ingested_so_far") or [])
    older = [span for span in present if span in ingested and span not in window]
    never = [span for span in present if span not in ingested and span not in window]
    parts = []
    if older:
        parts.append(f"{older} ingested, older than the training window of {len(window)}")
    if never:
        parts.append(
            f"{never} present but never ingested (`runway run {summary.get('pipeline', 'NAME')} --history` takes "
            "them in, oldest first)"
        )
    return "; ".join(parts) or "none"
