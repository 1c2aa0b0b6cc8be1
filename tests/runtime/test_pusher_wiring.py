"""Static check of every pipeline's compiled IR: the Pusher is always wired to both blessings.

The Pusher must push only a model that the Evaluator blessed (quality) AND that a real model server loaded and
answered for (InfraValidator), and only after the serving-contract gate (ModelInspector) passed. TFX's Pusher
enforces a blessing only if it is wired as an input, so the wiring itself is the contract checked here, for every
configuration in configs/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tfx.proto.orchestration import pipeline_pb2

from pipeline_components.config import load_pipeline_config
from pipeline_components.runtime.compile import compile_pipeline
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS

CONFIG_FILES = sorted(CONFIGS.glob("*.yaml"))


def _producer(node: pipeline_pb2.PipelineNode, key: str) -> set[tuple[str, str, str]]:
    assert key in node.inputs.inputs, f"the Pusher has no '{key}' input (has {sorted(node.inputs.inputs)})"
    spec = node.inputs.inputs[key]
    assert spec.min_count >= 1, f"the Pusher's '{key}' input is optional"
    return {(c.producer_node_query.id, c.output_key, c.artifact_query.type.name) for c in spec.channels}


@pytest.mark.parametrize("config_file", [pytest.param(p, id=p.stem) for p in CONFIG_FILES])
def test_the_pusher_needs_both_blessings_and_the_contract_gate(config_file: Path, tmp_path: Path) -> None:
    ir = compile_pipeline(load_pipeline_config(config_file), Settings.from_env({"RUNWAY_HOME": str(tmp_path)}))
    pushers = [n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.type.name.endswith(".Pusher")]
    assert len(pushers) == 1
    pusher = pushers[0]
    assert _producer(pusher, "model_blessing") == {("Evaluator", "blessing", "ModelBlessing")}
    assert _producer(pusher, "infra_blessing") == {("InfraValidator", "blessing", "InfraBlessing")}
    assert _producer(pusher, "model") == {("InfraValidator", "warmed_model", "Model")}
    assert {"Evaluator", "InfraValidator", "ModelInspector"} <= set(pusher.upstream_nodes)


def test_every_configuration_is_checked() -> None:
    assert {p.stem for p in CONFIG_FILES} >= {"flights", "penguins"}
