"""DeliveryValidator: the span's rows, calendar coverage and label shares against the previous spans' profiles."""

from __future__ import annotations

import json
from typing import Any

from tfx.types import component_spec, standard_artifacts

from pipeline_components.components.artifacts import SpanProfile
from pipeline_components.components.base import RunwayComponent
from pipeline_components.components.delivery_validator.executor import Executor


class DeliveryValidatorSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        "input_base": component_spec.ExecutionParameter(type=str),  # ExampleGen's input_base
        "span_pattern": component_spec.ExecutionParameter(type=str),  # with TFX's {SPAN} placeholder
        "label": component_spec.ExecutionParameter(type=str),  # the label column
        "positive": component_spec.ExecutionParameter(type=str),  # a binary label's positive class, else ""
        # JSON: history_spans, max_share_change, delivery (validation.delivery as a dict)
        "settings": component_spec.ExecutionParameter(type=str),
    }
    INPUTS = {
        # ExampleGen's output: which span this run ingested.
        "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
        # Every span's profile in ML Metadata, from any run: the previous spans are picked here.
        "profile_history": component_spec.ChannelParameter(type=SpanProfile, optional=True),
    }
    OUTPUTS = {"profile": component_spec.ChannelParameter(type=SpanProfile)}


class DeliveryValidator(RunwayComponent, spec=DeliveryValidatorSpec, executor=Executor):
    """Fail the run when the span ExampleGen ingested is not a whole delivery (too few or too many rows, calendar
    units missing) or when its label's shares moved beyond the tolerance, against the previous spans.

    The expectations come from history: the profiles this component recorded for earlier spans (newest per span,
    only those that passed), ``history_spans`` of them; absolute row bounds hold with or without history. The
    thresholds are the configuration's ``validation.delivery`` and ``validation.label``; the verdict goes through
    ``components/gate.py``.
    """

    def __init__(
        self,
        *,
        examples: Any,
        profile_history: Any,
        input_base: str,
        span_pattern: str,
        label: str,
        positive: str | None,
        history_spans: int,
        max_share_change: float,
        delivery: dict[str, Any],
    ) -> None:
        settings = {"history_spans": history_spans, "max_share_change": max_share_change, "delivery": delivery}
        where = {"input_base": input_base, "span_pattern": span_pattern}  # the span's raw CSV, as ExampleGen read it
        self._build(examples=examples, profile_history=profile_history, label=label, positive=positive or "",
                    settings=json.dumps(settings, sort_keys=True), **where)  # fmt: skip
