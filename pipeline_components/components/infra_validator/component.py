"""InfraValidator: load the candidate in a real model server, query it, write warmup, bless or refuse."""

from __future__ import annotations

from typing import Any

from tfx.types import component_spec, standard_artifacts

from pipeline_components.components.base import RunwayComponent
from pipeline_components.components.infra_validator.executor import Executor


class InfraValidatorSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        "model_name": component_spec.ExecutionParameter(type=str),
        "warmup_records": component_spec.ExecutionParameter(type=int),
        "query_examples": component_spec.ExecutionParameter(type=int),
        "timeout_s": component_spec.ExecutionParameter(type=int),
    }
    INPUTS = {
        "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
        "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
    }
    # TFX refuses one name for an input and an output: the warmed copy is `warmed_model`.
    OUTPUTS = {
        "warmed_model": component_spec.ChannelParameter(type=standard_artifacts.Model),
        "blessing": component_spec.ChannelParameter(type=standard_artifacts.InfraBlessing),
    }


class InfraValidator(RunwayComponent, spec=InfraValidatorSpec, executor=Executor):
    """TFX's InfraValidator (LOAD_AND_QUERY, ``make_warmup``) without Docker or Kubernetes.

    Copies the candidate into its ``warmed_model`` output with ``assets.extra/tf_serving_warmup_requests`` built
    from real eval examples, starts a real model server process on it (``tensorflow_model_server`` when on PATH, else
    runway's TF Serving-compatible server) with the production flags, waits for the version to be AVAILABLE,
    queries ``predict`` over REST and ``classify`` over gRPC with real examples and compares the answers with the
    SavedModel's own in-process predictions. Its ``blessing`` is an ``InfraBlessing`` with the custom property
    ``blessed`` (1/0) that TFX's Pusher checks; a refused model fails the task as a gate.
    """

    def __init__(
        self,
        *,
        model: Any,
        examples: Any,
        model_name: str,
        warmup_records: int = 16,
        query_examples: int = 8,
        timeout_s: int = 120,
    ) -> None:
        self._build(
            model=model,
            examples=examples,
            model_name=model_name,
            warmup_records=warmup_records,
            query_examples=query_examples,
            timeout_s=timeout_s,
        )
