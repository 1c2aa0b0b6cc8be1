"""Run parameters change the compiled IR node the launcher will run, and nothing else."""

from __future__ import annotations

import json

import pytest
from tfx.proto.orchestration import pipeline_pb2

from pipeline_components.config import load_pipeline_config
from pipeline_components.runtime.compile import compile_pipeline
from pipeline_components.runtime.overrides import apply_run_parameters
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS


@pytest.fixture(scope="module")
def ir(tmp_path_factory: pytest.TempPathFactory) -> pipeline_pb2.Pipeline:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path_factory.mktemp("home"))})
    return compile_pipeline(load_pipeline_config(CONFIGS / "flights.yaml"), settings)


def node(ir: pipeline_pb2.Pipeline, node_id: str) -> pipeline_pb2.PipelineNode:
    copy = pipeline_pb2.PipelineNode()
    copy.CopyFrom(next(n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.id == node_id))
    return copy


def param(n: pipeline_pb2.PipelineNode, key: str) -> str:
    return n.parameters.parameters[key].field_value.string_value


def test_span_pins_example_gen_to_one_span(ir: pipeline_pb2.Pipeline) -> None:
    n = node(ir, "CsvExampleGen")
    assert "range_config" not in n.parameters.parameters  # default: the newest span
    apply_run_parameters(n, {"span": 4})
    assert json.loads(param(n, "range_config")) == {"static_range": {"start_span_number": 4, "end_span_number": 4}}


def test_window_changes_the_rolling_range(ir: pipeline_pb2.Pipeline) -> None:
    n = node(ir, "Transform")
    changes = apply_run_parameters(n, {"window_spans": 6})
    ops = [
        g
        for graph in n.inputs.input_graphs.values()
        for g in graph.nodes.values()
        if g.op_node.op_type == "tfx.LatestSpan"
    ]
    assert ops and all(op.op_node.kwargs["n"].value.field_value.int_value == 6 for op in ops)
    assert changes == ["training window: newest 6 spans"]


def test_training_parameters(ir: pipeline_pb2.Pipeline) -> None:
    n = node(ir, "Trainer")
    apply_run_parameters(n, {"train_steps": 42, "eval_steps": 7, "learning_rate": 0.05})
    assert json.loads(param(n, "train_args")) == {"num_steps": 42}
    assert json.loads(param(n, "eval_args")) == {"num_steps": 7}
    custom = json.loads(param(n, "custom_config"))
    assert custom["learning_rate"] == 0.05
    assert custom["numeric"]  # the rest of the model's configuration is untouched


def test_evaluation_thresholds(ir: pipeline_pb2.Pipeline) -> None:
    n = node(ir, "Evaluator")
    apply_run_parameters(n, {"eval_lower_bound": 0.7, "eval_max_regression": 0.02})
    eval_config = json.loads(param(n, "eval_config"))
    thresholds = [m["threshold"] for s in eval_config["metrics_specs"] for m in s["metrics"] if "threshold" in m]
    assert thresholds == [
        {
            "value_threshold": {"lower_bound": 0.7},
            "change_threshold": {"direction": "HIGHER_IS_BETTER", "absolute": -0.02},
        }
    ]
    assert eval_config["model_specs"][0]["signature_name"] == "serving_tf_example"


def test_serving_target(ir: pipeline_pb2.Pipeline) -> None:
    n = node(ir, "Pusher")
    before = json.loads(param(n, "push_destination"))["filesystem"]["base_directory"]
    apply_run_parameters(n, {"serving_model_name": "flights_canary"})
    after = json.loads(param(n, "push_destination"))["filesystem"]["base_directory"]
    assert after == before.rsplit("/", 1)[0] + "/flights_canary"


def test_parameters_for_other_nodes_change_nothing(ir: pipeline_pb2.Pipeline) -> None:
    n = node(ir, "StatisticsGen")
    before = n.SerializeToString()
    assert apply_run_parameters(n, {"train_steps": 5, "span": 3, "eval_lower_bound": 0.9}) == []
    assert n.SerializeToString() == before


def test_allow_breaking_change_reaches_the_model_inspector(ir: pipeline_pb2.Pipeline) -> None:
    n = node(ir, "ModelInspector")
    assert n.parameters.parameters["allow_breaking_change"].field_value.int_value == 0
    changes = apply_run_parameters(n, {"allow_breaking_change": True, "serving_model_name": "flights_canary"})
    assert n.parameters.parameters["allow_breaking_change"].field_value.int_value == 1
    assert param(n, "serving_model_dir").endswith("/flights_canary")
    assert any("allow_breaking_change: True" in c for c in changes)
    pusher = node(ir, "Pusher")
    before = pusher.SerializeToString()
    apply_run_parameters(pusher, {"allow_breaking_change": True})
    assert pusher.SerializeToString() == before


def test_tflite_variants_reach_the_tflite_node_only(ir: pipeline_pb2.Pipeline) -> None:
    n = node(ir, "TFLiteVariants")
    assert len(json.loads(param(n, "variants"))) == 9  # flights.yaml lists every variant
    assert apply_run_parameters(n, {"tflite_variants": "int8, qat_int8"}) == ["TFLite variants: int8, qat_int8"]
    assert json.loads(param(n, "variants")) == ["int8", "qat_int8"]
    apply_run_parameters(n, {"tflite_variants": "none"})
    assert json.loads(param(n, "variants")) == []
    # The trigger form's multiple choice sends a list; its default is the configuration's list (nothing to apply).
    assert apply_run_parameters(n, {"tflite_variants": ["float16"]}) == ["TFLite variants: float16"]
    assert apply_run_parameters(n, {"tflite_variants": ["float16"]}) == []
    apply_run_parameters(n, {"tflite_variants": []})
    assert json.loads(param(n, "variants")) == []
    before = node(ir, "TFLiteVariants")
    assert apply_run_parameters(before, {"tflite_variants": ""}) == []  # empty: the configuration's list
    trainer = node(ir, "Trainer")
    assert apply_run_parameters(trainer, {"tflite_variants": "int8"}) == []


def test_strategy_and_workers_reach_the_trainer_only(ir: pipeline_pb2.Pipeline) -> None:
    n = node(ir, "Trainer")
    before = json.loads(param(n, "custom_config"))
    assert before["training"]["strategy"] == "default"  # compiled from the configuration's training section
    changes = apply_run_parameters(n, {"strategy": "multi_worker_mirrored", "workers": 3})
    custom = json.loads(param(n, "custom_config"))
    assert custom["training"] == {**before["training"], "strategy": "multi_worker_mirrored", "workers": 3}
    assert custom["numeric"] == before["numeric"]
    assert any("training.strategy" in line for line in changes)
    transform = node(ir, "Transform")
    original = param(transform, "custom_config")
    apply_run_parameters(transform, {"strategy": "mirrored"})
    assert param(transform, "custom_config") == original
    assert "training" not in json.loads(original)
