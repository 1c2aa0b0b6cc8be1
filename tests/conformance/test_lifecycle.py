"""Lifecycle: versions found by polling, availability-preserving swaps, failed loads, policies and labels."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.config import model_server_config_pb2

from tests.conformance.harness import ServerProcess, add_version, make_base_path, wait_for
from tests.conformance.samples import ROWS

TIMEOUT_S = 120.0


def _answered_version(server: ServerProcess, model: str, path_suffix: str = "") -> int:
    response = server.get(f"/v1/models/{model}{path_suffix}/metadata")
    assert response.status == 200, response.body
    return int(response.json()["model_spec"]["version"])


def _predicts(server: ServerProcess, model: str) -> None:
    response = server.post(f"/v1/models/{model}:predict", {"instances": ROWS})
    assert response.status == 200, response.body


def test_new_version_replaces_old_and_unloadable_version_never_does(
    server_bin: str, exported_version: Path, tmp_path: Path
) -> None:
    base = make_base_path(tmp_path / "m", exported_version, {1: "good"})
    server = ServerProcess(
        server_bin,
        tmp_path,
        [
            "--model_name=m",
            f"--model_base_path={base}",
            "--file_system_poll_wait_seconds=1",
            "--max_num_load_retries=0",
        ],
    )
    server.start()
    try:
        server.wait_available("m", versions={1})
        add_version(base, exported_version, 2)
        wait_for(lambda: server.status("m").get(1, {}).get("state") == "END", TIMEOUT_S, "version 1 to be unloaded")
        assert server.status("m")[2]["state"] == "AVAILABLE"
        assert _answered_version(server, "m") == 2

        add_version(base, exported_version, 3, corrupt=True)

        def failed() -> bool:
            # While version 3 is tried and fails, version 2 answers every request.
            assert _answered_version(server, "m") == 2
            _predicts(server, "m")
            state = server.status("m").get(3)
            return state is not None and state["state"] == "END"

        wait_for(failed, TIMEOUT_S, "version 3 to fail to load")
        status = server.status("m")
        assert status[3]["status"]["error_code"] != "OK"
        assert status[3]["status"]["error_message"]
        assert status[2]["state"] == "AVAILABLE"
        grpc_status = {v.version: v for v in server.grpc_status("m").model_version_status}
        assert grpc_status[3].status.error_code != 0
        # Later polls leave the failed version alone and version 2 serving.
        for _ in range(3):
            _predicts(server, "m")
        assert _answered_version(server, "m") == 2
        assert server.post("/v1/models/m/versions/3:predict", {"instances": ROWS}).status == 404
    finally:
        server.stop()


def _config(
    base: Path, policy: str = "", labels: dict[str, int] | None = None
) -> model_server_config_pb2.ModelServerConfig:
    text = f'model_config_list {{ config {{ name: "m" base_path: "{base}" model_platform: "tensorflow" {policy} '
    for label, version in (labels or {}).items():
        text += f'version_labels {{ key: "{label}" value: {version} }} '
    text += "} }"
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def _reload(
    server: ServerProcess, config: model_server_config_pb2.ModelServerConfig
) -> model_management_pb2.ReloadConfigResponse:
    return server.model_stub().HandleReloadConfigRequest(
        model_management_pb2.ReloadConfigRequest(config=config), timeout=TIMEOUT_S
    )


@pytest.fixture
def two_version_server(server_bin: str, exported_version: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    base = make_base_path(tmp_path / "m", exported_version, {1: "good", 2: "good"})
    config_file = tmp_path / "models.config"
    config_file.write_text(text_format.MessageToString(_config(base, "model_version_policy { all {} }")))
    server = ServerProcess(
        server_bin,
        tmp_path,
        [
            f"--model_config_file={config_file}",
            "--file_system_poll_wait_seconds=1",
            "--model_config_file_poll_wait_seconds=1",
            "--max_num_load_retries=0",
        ],
    )
    server.start()
    try:
        server.wait_available("m", versions={1, 2})
        yield server, base, config_file
    finally:
        server.stop()


def test_labels_only_point_at_available_versions(two_version_server) -> None:  # type: ignore[no-untyped-def]
    server, base, _ = two_version_server
    policy = "model_version_policy { all {} }"
    response = _reload(server, _config(base, policy, {"stable": 1, "canary": 2}))
    assert response.status.error_code == 0
    assert _answered_version(server, "m", "/labels/stable") == 1
    assert _answered_version(server, "m", "/labels/canary") == 2

    with pytest.raises(grpc.RpcError) as refused:
        _reload(server, _config(base, policy, {"stable": 1, "canary": 7}))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not currently available" in refused.value.details()
    # The refused reload changed no label.
    assert _answered_version(server, "m", "/labels/stable") == 1
    assert _answered_version(server, "m", "/labels/canary") == 2
    assert server.post("/v1/models/m/labels/canary:predict", {"instances": ROWS}).status == 200


def test_version_policies(two_version_server) -> None:  # type: ignore[no-untyped-def]
    server, base, _ = two_version_server
    assert _reload(server, _config(base, "model_version_policy { specific { versions: 1 } }")).status.error_code == 0
    wait_for(lambda: server.status("m")[2]["state"] == "END", TIMEOUT_S, "version 2 to be unloaded (specific: 1)")
    assert server.status("m")[1]["state"] == "AVAILABLE"
    assert _answered_version(server, "m") == 1

    assert _reload(server, _config(base, "model_version_policy { latest { num_versions: 2 } }")).status.error_code == 0
    wait_for(lambda: server.status("m")[2]["state"] == "AVAILABLE", TIMEOUT_S, "version 2 again (latest: 2)")
    assert server.status("m")[1]["state"] == "AVAILABLE"
    assert _answered_version(server, "m") == 2


def test_config_file_changes_are_polled(two_version_server) -> None:  # type: ignore[no-untyped-def]
    server, base, config_file = two_version_server
    config_file.write_text(text_format.MessageToString(_config(base, "model_version_policy { all {} }", {"blue": 1})))

    def labelled() -> bool:
        return server.get("/v1/models/m/labels/blue/metadata").status == 200

    wait_for(labelled, TIMEOUT_S, "the label from the changed config file")
    assert _answered_version(server, "m", "/labels/blue") == 1
