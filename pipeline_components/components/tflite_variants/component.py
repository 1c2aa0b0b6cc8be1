"""TFLiteVariants (build, measure, gate) and TFLitePublisher (copy the accepted ones beside the pushed version)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfx.types import artifact_utils, component_spec, standard_artifacts

from pipeline_components.components.artifacts import TFLiteModels, TFLitePublication
from pipeline_components.components.base import RunwayComponent
from pipeline_components.components.gate import Artifacts, GateExecutor, GateOutcome
from pipeline_components.components.tflite_variants.executor import Executor


class TFLiteVariantsSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        # JSON list of variant names (TFLiteConfig.variants; run parameter tflite_variants).
        "variants": component_spec.ExecutionParameter(type=str),
        # JSON object: the tflite configuration section plus the model's batch_size.
        "settings": component_spec.ExecutionParameter(type=str),
    }
    INPUTS = {
        "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
        "transform_graph": component_spec.ChannelParameter(type=standard_artifacts.TransformGraph),
        # The window's transformed Examples: real training rows for calibration and fine-tuning.
        "transformed_examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
        # This run's ExampleGen output: its eval split is what every variant is measured on.
        "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {"tflite_models": component_spec.ChannelParameter(type=TFLiteModels)}


class TFLiteVariants(RunwayComponent, spec=TFLiteVariantsSpec, executor=Executor):
    """TFLite variants of the Trainer's model (float32, dynamic range, float16, int8 PTQ, QAT, pruning, clustering,
    PQAT, CQAT), each measured on this run's evaluation rows with ai-edge-litert and gated against the float
    SavedModel by its metric drop (docs/tflite.md).

    A variant over budget is rejected (not published) without failing the run; the gate fails only when no variant
    at all could be built and run, or when the shipped reference encoder does not reproduce Transform.
    """

    def __init__(
        self,
        *,
        model: Any,
        transform_graph: Any,
        transformed_examples: Any,
        examples: Any,
        variants: list[str],
        settings: dict[str, Any],
    ) -> None:
        self._build(
            model=model,
            transform_graph=transform_graph,
            transformed_examples=transformed_examples,
            examples=examples,
            variants=json.dumps(list(variants)),
            settings=json.dumps(settings, sort_keys=True),
        )


class PublisherExecutor(GateExecutor):
    """See ``TFLitePublisher``."""

    def judge(self, inputs: Artifacts, outputs: Artifacts, properties: dict[str, Any]) -> GateOutcome:
        from pipeline_components.components.tflite_variants.publish import TFLITE_DIR, publish

        out = artifact_utils.get_single_instance(outputs["publication"])
        pushed = artifact_utils.get_single_instance(inputs["pushed_model"])
        models = artifact_utils.get_single_instance(inputs["tflite_models"])
        if not pushed.get_int_custom_property("pushed"):
            out.set_int_custom_property("published", 0)
            return GateOutcome(out.uri, passed=True, summary="nothing pushed this run: no TFLite variant published")
        destination = Path(pushed.get_string_custom_property("pushed_destination"))
        version = pushed.get_string_custom_property("pushed_version") or destination.name
        index = publish(models.uri, destination, model=destination.parent.name, version=version)
        target = destination / TFLITE_DIR
        out.set_int_custom_property("published", 1)
        out.set_string_custom_property("published_destination", str(target))
        out.set_string_custom_property("published_variants", ",".join(index["variants"]))
        return GateOutcome(
            out.uri,
            passed=True,
            summary=f"published {len(index['variants'])} TFLite variant(s) to {target}: "
            f"{', '.join(index['variants']) or 'none accepted'}",
            figures={"tflite_published": index["variants"], "tflite_destination": str(target)},
        )


class TFLitePublisherSpec(component_spec.ComponentSpec):
    PARAMETERS: dict[str, Any] = {}
    INPUTS = {
        "tflite_models": component_spec.ChannelParameter(type=TFLiteModels),
        "pushed_model": component_spec.ChannelParameter(type=standard_artifacts.PushedModel),
    }
    OUTPUTS = {"publication": component_spec.ChannelParameter(type=TFLitePublication)}


class TFLitePublisher(RunwayComponent, spec=TFLitePublisherSpec, executor=PublisherExecutor):
    """After the Pusher: the accepted variants go to ``<store>/<model>/<version>/tflite/`` (atomically), each with
    its metadata JSON; nothing is written when nothing was pushed."""

    def __init__(self, *, tflite_models: Any, pushed_model: Any) -> None:
        self._build(tflite_models=tflite_models, pushed_model=pushed_model)
