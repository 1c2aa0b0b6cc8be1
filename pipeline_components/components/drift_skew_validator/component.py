"""DriftSkewValidator: compares this run's statistics with earlier spans' statistics, with TFDV's comparators."""

from __future__ import annotations

import json
from typing import Any

from tfx.types import component_spec, standard_artifacts

from pipeline_components.components.artifacts import DriftSkewReport
from pipeline_components.components.base import RunwayComponent
from pipeline_components.components.drift_skew_validator.executor import Executor


class DriftSkewValidatorSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        # {feature: threshold}; the comparator follows the feature's kind (categorical: L-infinity, else JS).
        "drift": component_spec.ExecutionParameter(type=str),
        "skew": component_spec.ExecutionParameter(type=str),
        "categorical": component_spec.ExecutionParameter(type=str),  # JSON list of categorical feature names
        "window_spans": component_spec.ExecutionParameter(type=int),
    }
    INPUTS = {
        "statistics": component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": component_spec.ChannelParameter(type=standard_artifacts.Schema),
        # Every span's statistics in ML Metadata, from any run: the previous span and the window are picked here.
        "statistics_history": component_spec.ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
    }
    OUTPUTS = {"report": component_spec.ChannelParameter(type=DriftSkewReport)}


class DriftSkewValidator(RunwayComponent, spec=DriftSkewValidatorSpec, executor=Executor):
    """Fail the run when a key feature drifted from the previous span, or when the training window is skewed
    against the evaluation split, beyond the thresholds of the configuration's ``validation`` section.

    TFX 1.21's ExampleValidator compares one statistics artifact with a schema only; this component hands TFDV
    the previous span's statistics (``previous_statistics``) and each window span's 'train' statistics against
    this span's 'eval' statistics (``serving_statistics``). The verdict goes through ``components/gate.py``.
    """

    def __init__(
        self,
        *,
        statistics: Any,
        schema: Any,
        statistics_history: Any,
        drift: dict[str, float],
        skew: dict[str, float],
        categorical: list[str],
        window_spans: int,
    ) -> None:
        self._build(
            statistics=statistics,
            schema=schema,
            statistics_history=statistics_history,
            drift=json.dumps(drift, sort_keys=True),
            skew=json.dumps(skew, sort_keys=True),
            categorical=json.dumps(sorted(categorical)),
            window_spans=window_spans,
        )
