"""Every shipped pipeline compiles for ML Metadata on PostgreSQL: no node parameter holds a backslash, which
ML Metadata 1.21's PostgreSQL backend mis-quotes (``'E'{...``, a syntax error) when a node records its execution.
Found on the deployment: the flights Evaluator failed at its start on PostgreSQL, its eval_config carrying
backslash-escaped JSON of metric names."""

from __future__ import annotations

from pathlib import Path

import pytest
from tfx.proto.orchestration import pipeline_pb2

from pipeline_components.config import load_pipeline_config
from pipeline_components.errors import ConfigError
from pipeline_components.runtime.compile import compile_pipeline, postgres_unsafe
from pipeline_components.settings import CHECKOUT, PostgresMetadata, Settings

CONFIGS = CHECKOUT / "configs"


def _postgres_settings(home: Path) -> Settings:
    settings = Settings.from_env({"RUNWAY_HOME": str(home)})
    metadata = PostgresMetadata.from_url("postgresql://mlmd@10.9.0.2:5432/mlmd", None)
    return Settings(**{**settings.__dict__, "metadata_postgres": metadata})


@pytest.mark.parametrize("name", ["flights", "penguins"])
def test_shipped_pipelines_compile_for_postgres(name: str, tmp_path: Path) -> None:
    config = load_pipeline_config(CONFIGS / f"{name}.yaml")
    ir = compile_pipeline(config, _postgres_settings(tmp_path))
    assert postgres_unsafe(ir) == []
    evaluator = next(n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.id == "Evaluator")
    assert "metrics_specs" in evaluator.parameters.parameters["eval_config"].field_value.string_value


def test_a_parameter_with_a_backslash_is_named() -> None:
    ir = pipeline_pb2.Pipeline()
    node = ir.nodes.add().pipeline_node
    node.node_info.id = "Evaluator"
    node.parameters.parameters["eval_config"].field_value.string_value = '{"config": "{\\"name\\": \\"auc\\"}"}'
    node.parameters.parameters["example_splits"].field_value.string_value = '["eval"]'
    assert postgres_unsafe(ir) == ["Evaluator.eval_config"]


def test_compiling_such_a_pipeline_for_postgres_is_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_components.runtime import compile as compile_module

    monkeypatch.setattr(compile_module, "postgres_unsafe", lambda ir: ["Evaluator.eval_config"])
    config = load_pipeline_config(CONFIGS / "penguins.yaml")
    with pytest.raises(ConfigError, match=r"Evaluator\.eval_config.*backslash"):
        compile_pipeline(config, _postgres_settings(tmp_path))
