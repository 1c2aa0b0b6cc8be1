"""Reading TFMA's output of one evaluation: each model's metrics, and the thresholds not met."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASELINE = "baseline"  # TFMA's name for the baseline model when the eval config has one (tfma.BASELINE_KEY)
VERDICT_FILE = "verdict.json"  # in the blessing: the evaluation stage's verdict (verdict.py)


def _metrics(uri: str, model_name: str | None) -> dict[str, float]:
    import tensorflow_model_analysis as tfma

    metrics: dict[str, float] = {}
    for _, by_output in tfma.load_eval_result(uri, model_name=model_name).slicing_metrics:
        for by_class in by_output.values():
            for values in by_class.values():
                for name, value in values.items():
                    if "doubleValue" in value:
                        metrics[name] = float(value["doubleValue"])
    return metrics


def evaluation_summary(uri: str) -> dict[str, Any]:
    """An Evaluator's output (TFMA's evaluation and validation results) in a few figures.

    Args:
        uri: an evaluation artifact's folder (``evaluation`` or ``trusted_evaluation``).

    Returns:
        ``metrics`` (the candidate's: name -> value, ``<name>_diff`` against the baseline when there is one),
        ``baseline_metrics`` (the baseline's on the same examples, {} without one), ``validation_ok`` and
        ``failures`` (one line per threshold not met, as TFMA words it).
    """
    import tensorflow_model_analysis as tfma

    metrics = _metrics(uri, None)
    baseline: dict[str, float] = {}
    if any(name.endswith("_diff") for name in metrics):
        baseline = _metrics(uri, BASELINE)
    validation = tfma.load_validation_result(uri)
    failures = [
        str(failure.message or failure.metric_threshold).strip()
        for slice_failure in validation.metric_validations_per_slice
        for failure in slice_failure.failures
    ]
    return {
        "metrics": metrics,
        "baseline_metrics": baseline,
        "validation_ok": bool(validation.validation_ok),
        "failures": failures,
    }


def read_verdict(blessing_uri: str) -> dict[str, Any] | None:
    """The evaluation stage's verdict in a blessing (``verdict.json``), or None for a blessing without one."""
    path = Path(blessing_uri) / VERDICT_FILE
    return dict(json.loads(path.read_text())) if path.is_file() else None


def evaluator_figures(evaluation_uri: str, blessing: Any | None) -> dict[str, Any]:
    """The Evaluator's figures for the task: the new span's metrics, the trusted set's, whether it blessed, each
    refusal (naming the evaluation that refused) and the page.

    Args:
        evaluation_uri: the ``evaluation`` artifact's folder.
        blessing: the ``blessing`` artifact (None when there is none).
    """
    blessed = bool(blessing is not None and blessing.get_int_custom_property("blessed"))
    verdict = read_verdict(blessing.uri) if blessing is not None else None
    if verdict is None:  # TFX's own Evaluator: the new span only
        return {**evaluation_summary(evaluation_uri), "blessed": blessed, "report": evaluation_uri}
    trusted = verdict.get("trusted") or {}
    return {
        "metrics": verdict["new_span"].get("metrics", {}),
        # The served model (the baseline) on the same new span: the console's trend of how the served model fares.
        "baseline_metrics": verdict["new_span"].get("baseline_metrics", {}),
        "trusted_metrics": trusted.get("metrics", {}),
        "trusted_spans": verdict.get("trusted_spans", []),
        "blessed": blessed,
        "refused_by": verdict.get("refused_by", []),
        "baseline_drop": verdict.get("baseline_drop"),
        "label_ratio": verdict.get("label_ratio"),
        "failures": verdict.get("failures", []),
        "evaluation_notes": verdict.get("notes", []),
        "report": verdict.get("report") or evaluation_uri,
    }
