"""ModelInspector: the candidate's inspection report and its serving-contract gate, after the Trainer."""

from __future__ import annotations

import json
from typing import Any

from tfx.types import component_spec, standard_artifacts

from pipeline_components.components.artifacts import ModelInspection
from pipeline_components.components.base import RunwayComponent
from pipeline_components.components.model_inspector.executor import Executor


class ModelInspectorSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        # {"signatures": {name: {"inputs": {input: dtype}, "outputs": [...]}}}: the configuration's serving.contract
        "contract": component_spec.ExecutionParameter(type=str),
        # The model base path the Pusher writes to (<store>/<model>): its served version is compared with.
        "serving_model_dir": component_spec.ExecutionParameter(type=str),
        # 1: breaking changes against the served version are reported but do not fail the gate (run parameter).
        "allow_breaking_change": component_spec.ExecutionParameter(type=int),
    }
    INPUTS = {"model": component_spec.ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {"inspection": component_spec.ChannelParameter(type=ModelInspection)}


class ModelInspector(RunwayComponent, spec=ModelInspectorSpec, executor=Executor):
    """Inspect the Trainer's SavedModel (everything ``saved_model_cli show --all`` shows, plus variables, assets,
    size, ops and TF version) and refuse a candidate that breaks the serving contract.

    The gate fails (``components/gate.py``) when the candidate misses a signature, input or output the
    configuration declares, or when it breaks the version currently served (removed/renamed/added input, dtype
    change, removed output or signature), unless ``allow_breaking_change`` is set for the run.
    """

    def __init__(
        self,
        *,
        model: Any,
        contract: dict[str, Any],
        serving_model_dir: str,
        allow_breaking_change: bool = False,
    ) -> None:
        self._build(
            model=model,
            contract=json.dumps(contract, sort_keys=True),
            serving_model_dir=serving_model_dir,
            allow_breaking_change=int(allow_breaking_change),
        )
