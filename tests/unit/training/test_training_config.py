"""The ``training:`` section of a pipeline configuration: strategy names and their settings, validated on load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline_components.config import STRATEGIES, load_pipeline_config
from pipeline_components.errors import ConfigError
from pipeline_components.training.settings import from_custom_config, trainer_training_config
from tests.conftest import CONFIGS


def _write(tmp_path: Path, training: dict[str, object] | None) -> Path:
    raw = yaml.safe_load((CONFIGS / "flights.yaml").read_text())
    raw["schema_file"] = str((CONFIGS / raw["schema_file"]).resolve())
    raw.pop("validation", None)
    if training is None:
        raw.pop("training", None)
    else:
        raw["training"] = training
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_every_strategy_of_the_issue_is_known() -> None:
    assert set(STRATEGIES) == {
        "default",
        "one_device",
        "mirrored",
        "central_storage",
        "multi_worker_mirrored",
        "parameter_server",
        "tpu",
    }


def test_a_configuration_without_the_section_trains_under_the_default_strategy(tmp_path: Path) -> None:
    config = load_pipeline_config(_write(tmp_path, None))
    assert config.training.strategy == "default"
    assert not config.training.multi_process


@pytest.mark.parametrize(
    "training",
    [
        pytest.param({"strategy": "one_device", "device": "/gpu:1"}, id="one_device"),
        pytest.param({"strategy": "mirrored", "logical_cpus": 4}, id="mirrored"),
        pytest.param({"strategy": "central_storage"}, id="central_storage"),
        pytest.param({"strategy": "multi_worker_mirrored", "workers": 3}, id="multi_worker_mirrored"),
        pytest.param({"strategy": "parameter_server", "workers": 2, "parameter_servers": 2}, id="parameter_server"),
        pytest.param({"strategy": "tpu", "tpu": "grpc://10.0.0.2:8470"}, id="tpu"),
    ],
)
def test_valid_strategy_settings_load(tmp_path: Path, training: dict[str, object]) -> None:
    config = load_pipeline_config(_write(tmp_path, training))
    assert config.training.strategy == training["strategy"]
    for key, value in training.items():
        assert getattr(config.training, key) == value


@pytest.mark.parametrize(
    ("training", "message"),
    [
        pytest.param({"strategy": "horovod"}, "training.strategy", id="unknown-strategy"),
        pytest.param({"strategy": "tpu"}, "strategy 'tpu' needs 'tpu'", id="tpu-without-address"),
        pytest.param({"strategy": "multi_worker_mirrored", "workers": 1}, "workers >= 2", id="one-worker"),
        pytest.param({"strategy": "one_device", "device": "gpu0"}, "training.device", id="bad-device"),
        pytest.param({"strategy": "mirrored", "logical_cpus": 0}, "training.logical_cpus", id="no-cpus"),
        pytest.param({"strategy": "parameter_server", "parameter_servers": 0}, "parameter_servers", id="no-ps"),
        pytest.param({"strategy": "mirrored", "gpus": 2}, "training.gpus", id="unknown-key"),
        pytest.param({"cluster": {"port": 80}}, "training.cluster.port", id="privileged-port"),
    ],
)
def test_invalid_strategy_settings_name_the_key(tmp_path: Path, training: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_pipeline_config(_write(tmp_path, training))


def test_the_trainer_gets_the_strategy_but_not_the_cluster_sizing(tmp_path: Path) -> None:
    config = load_pipeline_config(_write(tmp_path, {"strategy": "parameter_server", "workers": 3}))
    entry = trainer_training_config(config)
    assert entry["strategy"] == "parameter_server"
    assert entry["workers"] == 3
    assert "cluster" not in entry


def test_overrides_validate_the_strategy_rules_again() -> None:
    config = load_pipeline_config(CONFIGS / "flights.yaml")
    assert config.with_overrides({"training.strategy": "mirrored"}).training.strategy == "mirrored"
    with pytest.raises(ConfigError, match="needs 'tpu'"):
        config.with_overrides({"training.strategy": "tpu"})


def test_the_trainer_reads_its_entry_back_and_validates_it() -> None:
    assert from_custom_config({}).strategy == "default"
    assert from_custom_config({"training": {"strategy": "mirrored", "logical_cpus": 3}}).logical_cpus == 3
    with pytest.raises(ConfigError, match=r"training\.strategy"):
        from_custom_config({"training": {"strategy": "nope"}})


def test_the_strategy_tuple_lists_the_literal() -> None:
    from typing import get_args

    from pipeline_components.config import StrategyName

    assert get_args(StrategyName) == STRATEGIES
