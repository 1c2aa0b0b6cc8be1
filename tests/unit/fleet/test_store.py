"""The model store: atomic versions, models.config round trip, retention; fleet.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_components.fleet import FleetState, InstanceAddress, protos, read_fleet_state, write_fleet_state
from pipeline_components.fleet.store import ModelServing, ModelStore, StoreError


def saved_model(folder: Path) -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.index").write_bytes(b"index")
    (folder / "saved_model.pb").write_bytes(b"graph")
    return folder


def test_a_version_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    source = saved_model(tmp_path / "export")

    target = store.write_version("m", 7, source)

    assert target == tmp_path / "store" / "m" / "7"
    assert (target / "variables" / "variables.index").read_bytes() == b"index"
    assert store.versions_on_disk("m") == [7]
    assert [p.name for p in (tmp_path / "store" / "m").iterdir()] == ["7"]  # no staging folder left
    with pytest.raises(StoreError, match="never overwritten"):
        store.write_version("m", 7, source)


def test_a_folder_without_saved_model_pb_is_not_a_version(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    (tmp_path / "m" / "5" / "variables").mkdir(parents=True)  # what a half-copied version looks like
    (tmp_path / "m" / ".staging-6-1").mkdir()
    assert store.versions_on_disk("m") == []


def test_models_config_is_a_text_model_server_config_with_specific_versions_and_labels(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.write_config({"m": ModelServing("m", (3, 4), {"stable": 3, "canary": 4})})

    text = store.config_path.read_text()
    parsed = protos.model_server_config(text)
    entry = parsed.model_config_list.config[0]
    assert entry.base_path == str(tmp_path / "m") and entry.model_platform == "tensorflow"
    assert list(entry.model_version_policy.specific.versions) == [3, 4]
    assert dict(entry.version_labels) == {"stable": 3, "canary": 4}
    assert store.read_config() == {"m": ModelServing("m", (3, 4), {"stable": 3, "canary": 4})}
    # The same config as an instance that mounts the store at /models sees it.
    assert 'base_path: "/models/m"' in store.render_config(store.read_config(), store_path="/models")


def test_an_empty_config_is_still_a_model_config_list(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.write_config({})
    assert protos.model_server_config(store.config_path.read_text()).WhichOneof("config") == "model_config_list"


def test_a_label_must_name_a_served_version(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="label stable names version 9"):
        ModelStore(tmp_path).write_config({"m": ModelServing("m", (3,), {"stable": 9})})


def test_retention_keeps_the_newest_and_never_deletes_a_labelled_or_served_version(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    source = saved_model(tmp_path / "export")
    for version in (1, 2, 3, 4, 5, 6):
        store.write_version("m", version, source)
    serving = ModelServing("m", (2, 6), {"stable": 2})  # an operator rolled back to an old version

    deleted = store.prune("m", 2, serving)

    assert deleted == [1, 3, 4]
    assert store.versions_on_disk("m") == [2, 5, 6]


def test_fleet_json_round_trip(tmp_path: Path) -> None:
    state = FleetState(
        rest_url="http://127.0.0.1:8501",
        grpc_target="127.0.0.1:8500",
        store="/s",
        model_config_file="/s/models.config",
        instances=[InstanceAddress(name="serving-0", rest_url="http://x:1", grpc_target="x:2", store_path="/s", pid=4)],
    )
    write_fleet_state(tmp_path, state)
    assert read_fleet_state(tmp_path) == state
    assert read_fleet_state(tmp_path / "nothing") is None
