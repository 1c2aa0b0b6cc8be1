"""Apply a run's typed parameters to one node of the compiled IR, just before TFX's launcher runs it.

The parameters were validated on the orchestrator side (``pipeline_components/boundary.py``). Each one maps onto a
node's execution parameter (a JSON-serialized proto or dict in the IR) or onto its input-resolution graph, so
the values the executor sees, and the execution properties ML Metadata records, are the run's values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfx.proto import range_config_pb2, trainer_pb2
from tfx.proto.orchestration import pipeline_pb2
from tfx.utils import proto_utils


def _component(node: pipeline_pb2.PipelineNode) -> str:
    return node.node_info.type.name.rsplit(".", 1)[-1]


def _get(node: pipeline_pb2.PipelineNode, key: str) -> str | None:
    params = node.parameters.parameters
    return params[key].field_value.string_value if key in params else None


def _set(node: pipeline_pb2.PipelineNode, key: str, value: str) -> None:
    node.parameters.parameters[key].field_value.string_value = value


def apply_run_parameters(node: pipeline_pb2.PipelineNode, params: dict[str, Any]) -> list[str]:
    """Change ``node`` in place; return one line per change, for the task log."""
    component = _component(node)
    changes: list[str] = []

    if component.endswith("ExampleGen") and params.get("span") is not None:
        span = int(params["span"])
        range_config = range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span)
        )
        _set(node, "range_config", proto_utils.proto_to_json(range_config))
        changes.append(f"range_config: span {span}")

    if component == "Transform" and params.get("window_spans") is not None:
        for graph in node.inputs.input_graphs.values():
            for graph_node in graph.nodes.values():
                if graph_node.op_node.op_type == "tfx.LatestSpan":
                    graph_node.op_node.kwargs["n"].value.field_value.int_value = int(params["window_spans"])
                    changes.append(f"training window: newest {params['window_spans']} spans")

    if component == "DriftSkewValidator" and params.get("window_spans") is not None:  # skew covers the same window
        node.parameters.parameters["window_spans"].field_value.int_value = int(params["window_spans"])
        changes.append(f"skew window: newest {params['window_spans']} spans")

    if component == "Trainer":
        if params.get("train_steps") is not None:
            _set(node, "train_args", proto_utils.proto_to_json(trainer_pb2.TrainArgs(num_steps=params["train_steps"])))
            changes.append(f"train_args.num_steps: {params['train_steps']}")
        if params.get("eval_steps") is not None:
            _set(node, "eval_args", proto_utils.proto_to_json(trainer_pb2.EvalArgs(num_steps=params["eval_steps"])))
            changes.append(f"eval_args.num_steps: {params['eval_steps']}")
        if params.get("learning_rate") is not None:
            custom = json.loads(_get(node, "custom_config") or "{}")
            custom["learning_rate"] = float(params["learning_rate"])
            _set(node, "custom_config", json.dumps(custom, sort_keys=True))
            changes.append(f"custom_config.learning_rate: {params['learning_rate']}")
        if params.get("strategy") is not None or params.get("workers") is not None:
            custom = json.loads(_get(node, "custom_config") or "{}")
            training = dict(custom.get("training") or {})
            for key in ("strategy", "workers"):
                if params.get(key) is not None:
                    training[key] = params[key]
                    changes.append(f"custom_config.training.{key}: {params[key]}")
            custom["training"] = training
            _set(node, "custom_config", json.dumps(custom, sort_keys=True))

    if component == "Evaluator" and (
        params.get("eval_lower_bound") is not None or params.get("eval_max_regression") is not None
    ):
        eval_config = json.loads(_get(node, "eval_config") or "{}")
        for spec in eval_config.get("metrics_specs", []):
            for metric in spec.get("metrics", []):
                threshold = metric.get("threshold")
                if not threshold:
                    continue
                if params.get("eval_lower_bound") is not None:
                    threshold.setdefault("value_threshold", {})["lower_bound"] = float(params["eval_lower_bound"])
                if params.get("eval_max_regression") is not None:
                    threshold.setdefault("change_threshold", {})["absolute"] = -float(params["eval_max_regression"])
                changes.append(f"thresholds of {metric.get('class_name')}: {threshold}")
        _set(node, "eval_config", json.dumps(eval_config, indent=2))
        if params.get("eval_max_regression") is not None and "trusted_max_regression" in node.parameters.parameters:
            # The run's change threshold is the operator's for this run: on the trusted set too.
            value = float(params["eval_max_regression"])
            node.parameters.parameters["trusted_max_regression"].field_value.double_value = value
            changes.append(f"trusted_max_regression: {value}")

    if component == "ModelInspector":
        if params.get("allow_breaking_change") is not None:
            node.parameters.parameters["allow_breaking_change"].field_value.int_value = int(
                bool(params["allow_breaking_change"])
            )
            changes.append(f"allow_breaking_change: {bool(params['allow_breaking_change'])}")
        if params.get("serving_model_name") and _get(node, "serving_model_dir"):
            base = Path(_get(node, "serving_model_dir") or ".")
            _set(node, "serving_model_dir", str(base.parent / params["serving_model_name"]))
            changes.append(f"served version looked up under: {base.parent / params['serving_model_name']}")

    if component == "TFLiteVariants" and "tflite_variants" in params:
        from pipeline_components.boundary import tflite_variant_list

        variants = tflite_variant_list(params["tflite_variants"])
        # The default is the configuration's list, which the node already has: only a change is applied.
        if variants is not None and variants != json.loads(_get(node, "variants") or "[]"):
            _set(node, "variants", json.dumps(variants))
            changes.append(f"TFLite variants: {', '.join(variants) or 'none'}")

    if component == "Pusher" and params.get("serving_model_name"):
        destination = json.loads(_get(node, "push_destination") or "{}")
        filesystem = destination.setdefault("filesystem", {})
        base = Path(filesystem.get("base_directory", "."))
        filesystem["base_directory"] = str(base.parent / params["serving_model_name"])
        _set(node, "push_destination", json.dumps(destination, indent=2))
        changes.append(f"push destination: {filesystem['base_directory']}")
    return changes
