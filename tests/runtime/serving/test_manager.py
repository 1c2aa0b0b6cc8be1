"""The lifecycle rules on their own, with a fake loader: policies, availability-preserving swaps, labels."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format

from pipeline_components.errors import ServingError
from pipeline_components.serving.manager import LoadOptions, ModelManager
from pipeline_components.serving.model_config import ModelServerConfig
from pipeline_components.serving.servable import Servable
from pipeline_components.serving.version_policy import aspired_versions, versions_on_disk


def _loader(name: str, version: int, path: Path) -> Servable:
    if (path / "broken").exists():
        raise ServingError("DATA_LOSS", f"version {version} is broken")
    return Servable(name=name, version=version, path=path, signature_defs={}, loaded=None)


def _manager() -> ModelManager:
    return ModelManager(loader=_loader, options=LoadOptions(max_num_load_retries=0))


def _config(base: Path, extra: str = "") -> ModelServerConfig:
    return text_format.Parse(
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" {extra} }} }}', ModelServerConfig()
    )


def test_policies(tmp_path: Path) -> None:
    for version in (1, 3, 10):
        (tmp_path / str(version)).mkdir()
    (tmp_path / "tmp-upload").mkdir()
    assert versions_on_disk(tmp_path) == [1, 3, 10]
    policy = _config(tmp_path).model_config_list.config[0].model_version_policy
    assert aspired_versions(policy, [1, 3, 10]) == [10]
    policy.latest.num_versions = 2
    assert aspired_versions(policy, [1, 3, 10]) == [10, 3]
    policy.specific.versions.extend([1, 7])
    assert aspired_versions(policy, [1, 3, 10]) == [1]
    policy.all.SetInParent()
    assert aspired_versions(policy, [1, 3, 10]) == [10, 3, 1]


def test_a_broken_version_never_replaces_the_serving_one(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    manager = _manager()
    manager.reload_config(_config(tmp_path))
    assert manager.servable("m").version == 1
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "broken").touch()
    manager.poll()
    assert manager.servable("m").version == 1
    states = dict(manager.version_states("m"))
    assert (states[2].state, states[2].error_code) == ("END", "DATA_LOSS")
    assert states[1].state == "AVAILABLE"
    (tmp_path / "3").mkdir()
    manager.poll()
    states = dict(manager.version_states("m"))
    assert manager.servable("m").version == 3
    assert states[1].state == "END" and states[1].error_code == "OK"


def test_labels_need_available_versions(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    manager = _manager()
    manager.reload_config(_config(tmp_path))
    manager.reload_config(_config(tmp_path, 'version_labels { key: "stable" value: 1 }'))
    assert manager.servable("m", label="stable").version == 1
    with pytest.raises(ServingError, match="not currently available") as refused:
        manager.reload_config(_config(tmp_path, 'version_labels { key: "stable" value: 2 }'))
    assert refused.value.code == "FAILED_PRECONDITION"
    assert manager.servable("m", label="stable").version == 1
    with pytest.raises(ServingError, match="Unrecognized servable version label: nope"):
        manager.servable("m", label="nope")
