"""TFLiteVariants (build, measure, gate) and TFLitePublisher (copy the accepted ones beside the pushed version)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, channel_utils, component_spec, standard_artifacts
from tfx.types.artifact import Artifact

from pipeline_components.components.tflite_variants.executor import Executor
from pipeline_components.runtime.figures import write_gate


class TFLiteModels(Artifact):
    """TFLite variants of a model: ``variants/<name>.tflite``, ``encoding.json``, ``encoder.py`` and the report."""

    TYPE_NAME = "runway.TFLiteModels"


class TFLitePublication(Artifact):
    """Where the accepted variants were published (``<store>/<model>/<version>/tflite``), and the verdict."""

    TYPE_NAME = "runway.TFLitePublication"


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


class TFLiteVariants(base_component.BaseComponent):
    """TFLite variants of the Trainer's model (float32, dynamic range, float16, int8 PTQ, QAT, pruning, clustering,
    PQAT, CQAT), each measured on this run's evaluation rows with ai-edge-litert and gated against the float
    SavedModel by its metric drop (docs/tflite.md).

    A variant over budget is rejected (not published) without failing the run; the gate fails only when no variant
    at all could be built and run, or when the shipped reference encoder does not reproduce Transform.
    """

    SPEC_CLASS = TFLiteVariantsSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

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
        super().__init__(
            spec=TFLiteVariantsSpec(
                model=model,
                transform_graph=transform_graph,
                transformed_examples=transformed_examples,
                examples=examples,
                variants=json.dumps(list(variants)),
                settings=json.dumps(settings, sort_keys=True),
                tflite_models=channel_utils.as_channel([TFLiteModels()]),
            )
        )


class PublisherExecutor(base_executor.BaseExecutor):
    """See ``TFLitePublisher``."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        from pipeline_components.components.tflite_variants.publish import TFLITE_DIR, publish

        out = artifact_utils.get_single_instance(output_dict["publication"])
        pushed = artifact_utils.get_single_instance(input_dict["pushed_model"])
        models = artifact_utils.get_single_instance(input_dict["tflite_models"])
        if not pushed.get_int_custom_property("pushed"):
            write_gate(out.uri, passed=True, summary="nothing pushed this run: no TFLite variant published")
            out.set_int_custom_property("published", 0)
            return
        destination = Path(pushed.get_string_custom_property("pushed_destination"))
        version = pushed.get_string_custom_property("pushed_version") or destination.name
        index = publish(models.uri, destination, model=destination.parent.name, version=version)
        target = destination / TFLITE_DIR
        out.set_int_custom_property("published", 1)
        out.set_string_custom_property("published_destination", str(target))
        out.set_string_custom_property("published_variants", ",".join(index["variants"]))
        write_gate(
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


class TFLitePublisher(base_component.BaseComponent):
    """After the Pusher: the accepted variants go to ``<store>/<model>/<version>/tflite/`` (atomically), each with
    its metadata JSON; nothing is written when nothing was pushed."""

    SPEC_CLASS = TFLitePublisherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(PublisherExecutor)

    def __init__(self, *, tflite_models: Any, pushed_model: Any) -> None:
        super().__init__(
            spec=TFLitePublisherSpec(
                tflite_models=tflite_models,
                pushed_model=pushed_model,
                publication=channel_utils.as_channel([TFLitePublication()]),
            )
        )
