"""runway's Evaluator: TFX's Evaluator on the new span's 'eval' split AND on a trusted set, one blessing."""

from __future__ import annotations

import json
from typing import Any

import tensorflow_model_analysis as tfma
from tfx.types import component_spec, standard_artifacts

from pipeline_components.components.base import RunwayComponent
from pipeline_components.components.evaluator.executor import Executor


class EvaluatorSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        "eval_config": component_spec.ExecutionParameter(type=tfma.EvalConfig),
        "example_splits": component_spec.ExecutionParameter(type=str, optional=True),  # JSON list, TFX's meaning
        "max_baseline_drop": component_spec.ExecutionParameter(type=float, optional=True),
        "trusted_max_regression": component_spec.ExecutionParameter(type=float, optional=True),
        "min_label_ratio": component_spec.ExecutionParameter(type=float, optional=True),
        "max_label_ratio": component_spec.ExecutionParameter(type=float, optional=True),
    }
    INPUTS = {
        "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
        "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
        "baseline_model": component_spec.ChannelParameter(type=standard_artifacts.Model, optional=True),
        # The spans the served model was blessed on (components/evaluator/trusted.py); none before a first blessing.
        "trusted_examples": component_spec.ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }
    OUTPUTS = {
        "evaluation": component_spec.ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "trusted_evaluation": component_spec.ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "blessing": component_spec.ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class Evaluator(RunwayComponent, spec=EvaluatorSpec, executor=Executor):
    """Bless the candidate only if TFMA's thresholds hold on the new span's 'eval' split AND on the trusted set (the
    'eval' splits of the spans the served model was blessed on), and the served model did not collapse on the new
    span while holding on the trusted set, nor the new span's positive rate strayed from what the served model
    expects of its features (both: evidence against the new span, not the models).

    Keeps TFX's ``evaluation`` and ``blessing`` outputs (the Pusher and ``LatestBlessedModelStrategy`` read the
    blessing as TFX writes it) and adds ``trusted_evaluation``. The blessing's ``verdict.json`` says which
    evaluation refused; the page shows both side by side (``verdict.py``).
    """

    def __init__(
        self,
        *,
        examples: Any,
        model: Any,
        baseline_model: Any,
        trusted_examples: Any,
        eval_config: tfma.EvalConfig,
        max_baseline_drop: float | None,
        trusted_max_regression: float | None = None,
        label_ratio: tuple[float | None, float | None] = (None, None),
        example_splits: list[str] | None = None,
    ) -> None:
        channels = {"examples": examples, "model": model, "baseline_model": baseline_model}
        splits = json.dumps(example_splits or ["eval"])
        self._build(**channels, trusted_examples=trusted_examples, eval_config=eval_config, example_splits=splits,
                    max_baseline_drop=max_baseline_drop, trusted_max_regression=trusted_max_regression,
                    min_label_ratio=label_ratio[0], max_label_ratio=label_ratio[1])  # fmt: skip
