"""The fleet's request logging from the pipeline's configuration: the models.config it writes, and where it refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.errors import ConfigError, RunwayError
from pipeline_components.fleet import FleetState, InstanceAddress, write_fleet_state
from pipeline_components.fleet.operations import apply_request_logging
from pipeline_components.fleet.request_logging import fleet_request_logging
from pipeline_components.fleet.store import ModelServing, ModelStore, RequestLogging
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS

MODEL = "flights_delay"


def flights(**logging: object) -> PipelineConfig:
    return load_pipeline_config(CONFIGS / "flights.yaml").with_overrides({"serving.request_logging": logging or None})


def fleet(*, kind: str = "local", server: str = "/checkout/scripts/runway-model-server") -> FleetState:
    instance = InstanceAddress(name="serving-0", rest_url="http://x", grpc_target="x:1", store_path="/models")
    return FleetState(
        rest_url="http://x", grpc_target="x:1", store="/s", model_config_file="/s/models.config",
        instances=[instance], kind=kind, server=server,
        nginx_pid=os.getpid(),  # a local fleet "runs" while its nginx is alive
    )  # fmt: skip


def test_models_config_carries_the_logging_config_and_reads_it_back(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    logged = RequestLogging(filename_prefix="/logs/flights_delay/flights_delay", sampling_rate=0.05)
    models = {
        MODEL: ModelServing(MODEL, (1, 2), {"stable": 2}, logged),
        "penguins_species": ModelServing("penguins_species", (7,), {"stable": 7}),
    }
    store.write_config(models)
    text = store.config_path.read_text()
    assert 'log_collector_config {\n        type: "tfrecord"\n        filename_prefix: "/logs/flights_delay/' in text
    assert "sampling_rate: 0.05" in text
    assert text.count("logging_config") == 1  # only the model that asks for it
    # A rollout of another model reads the file and writes it back: this model's logging stays.
    assert store.read_config() == models


def test_the_pipeline_configuration_decides_the_prefix_and_rate(tmp_path: Path) -> None:
    said: list[str] = []
    home = tmp_path / "home"
    logging = fleet_request_logging(flights(sampling_rate=0.25), home=home, fleet=fleet(), say=said.append)
    assert logging == RequestLogging(
        filename_prefix=str(home / "fleet" / "request_logs" / MODEL / MODEL), sampling_rate=0.25
    )
    elsewhere = flights(sampling_rate=1.0, directory="/shared/logs")
    assert fleet_request_logging(elsewhere, home=home, fleet=fleet(), say=said.append) == RequestLogging(
        filename_prefix=f"/shared/logs/{MODEL}/{MODEL}", sampling_rate=1.0
    )
    assert fleet_request_logging(flights(), home=home, fleet=fleet(), say=said.append) is None
    assert said == []


@pytest.mark.parametrize(
    ("state", "why"),
    [
        pytest.param(fleet(server="/usr/bin/tensorflow_model_server"), "runway-model-server", id="tf-serving-binary"),
        pytest.param(fleet(kind="compose"), "logging proxy at the load balancer", id="compose"),
        pytest.param(fleet(kind="kubernetes"), "logging proxy at the load balancer", id="kubernetes"),
    ],
)
def test_a_fleet_of_tensorflow_model_server_gets_no_logging_config_and_says_why(
    tmp_path: Path, state: FleetState, why: str
) -> None:
    said: list[str] = []
    config = flights(sampling_rate=0.5)
    assert fleet_request_logging(config, home=tmp_path, fleet=state, say=said.append) is None
    assert len(said) == 1 and "refuses any logging_config" in said[0] and why in said[0], said
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    write_fleet_state(tmp_path, state)
    with pytest.raises(RunwayError, match=f"cannot log the requests of {MODEL}: .*{why}"):
        apply_request_logging(settings, config, say=said.append)


def test_a_sampling_rate_outside_zero_to_one_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"serving\.request_logging\.sampling_rate"):
        flights(sampling_rate=1.5)
