"""GreatExpectationsValidator: runs the repository's expectation suite against the span this run ingested."""

from __future__ import annotations

from typing import Any

from tfx.types import component_spec, standard_artifacts

from pipeline_components.components.artifacts import ExpectationsResult
from pipeline_components.components.base import RunwayComponent
from pipeline_components.components.great_expectations_validator.executor import Executor


class GreatExpectationsValidatorSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        "input_base": component_spec.ExecutionParameter(type=str),  # ExampleGen's input_base
        "span_pattern": component_spec.ExecutionParameter(type=str),  # with TFX's {SPAN} placeholder
        "suite_file": component_spec.ExecutionParameter(type=str),  # the committed suite (JSON), read at run time
    }
    # ExampleGen's output: which span this run ingested (and the lineage of the result).
    INPUTS = {"examples": component_spec.ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {"result": component_spec.ChannelParameter(type=ExpectationsResult)}


class GreatExpectationsValidator(RunwayComponent, spec=GreatExpectationsValidatorSpec, executor=Executor):
    """Validate the raw CSV of the span ExampleGen ingested with a Great Expectations suite kept in the repository,
    and fail the run (``components/gate.py``) on any failing expectation, or when the span's data is a copy of
    another span's. GX's results fail nothing by themselves: this component does.
    """

    def __init__(self, *, examples: Any, input_base: str, span_pattern: str, suite_file: str) -> None:
        self._build(examples=examples, input_base=input_base, span_pattern=span_pattern, suite_file=suite_file)
