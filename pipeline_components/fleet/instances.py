"""Talking to one model server of the fleet: TF Serving's gRPC ModelService and PredictionService, and REST.

Plain grpcio and urllib with the vendored messages (``protos``): no TensorFlow, so a rollout step starts in well
under a second.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import grpc

from pipeline_components.errors import RunwayError
from pipeline_components.fleet import InstanceAddress, protos

# tensorflow_serving/apis/get_model_status.proto ModelVersionStatus.State
STATES = {0: "UNKNOWN", 10: "START", 20: "LOADING", 30: "AVAILABLE", 40: "UNLOADING", 50: "END"}


class InstanceError(RunwayError):
    """A model server of the fleet did not answer, or answered with an error."""

    def __init__(self, instance: str, message: str) -> None:
        super().__init__(f"{instance}: {message}")
        self.instance = instance


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    error_code: int = 0
    error_message: str = ""


class Instance:
    """One model server: its gRPC channel (opened lazily) and REST URL."""

    def __init__(self, address: InstanceAddress) -> None:
        self.address = address
        self.name = address.name
        self._channel: grpc.Channel | None = None

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            # A channel of its own subchannels: gRPC's process-wide pool would keep answering "connection refused"
            # (reconnect backoff) for a while after a restarted instance listens again.
            self._channel = grpc.insecure_channel(
                self.address.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]
            )
        return self._channel

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def _call(self, service: str, method: str, request: Any, response_type: str, timeout_s: float) -> Any:
        try:
            return protos.call(self.channel, service + method, request, response_type, timeout_s)
        except grpc.RpcError as error:
            code = error.code().name if hasattr(error, "code") else "UNKNOWN"
            details = error.details() if hasattr(error, "details") else str(error)
            raise InstanceError(self.name, f"{method} failed: {code}: {details}") from None

    def reload_config(self, config_text: str, timeout_s: float) -> None:
        """``HandleReloadConfigRequest`` with this text ``ModelServerConfig``."""
        request = protos.message("tensorflow.serving.ReloadConfigRequest")
        request.config.CopyFrom(protos.model_server_config(config_text))
        response = self._call(
            protos.MODEL_SERVICE,
            "HandleReloadConfigRequest",
            request,
            "tensorflow.serving.ReloadConfigResponse",
            timeout_s,
        )
        if response.status.error_code:
            raise InstanceError(self.name, f"reload refused: {response.status.error_message}")

    def model_status(self, model: str, timeout_s: float = 5.0) -> dict[int, VersionStatus]:
        """``GetModelStatus``: every version this server knows of the model (empty when the model is unknown)."""
        request = protos.message("tensorflow.serving.GetModelStatusRequest")
        request.model_spec.name = model
        try:
            response = protos.call(
                self.channel,
                protos.MODEL_SERVICE + "GetModelStatus",
                request,
                "tensorflow.serving.GetModelStatusResponse",
                timeout_s,
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return {}
            raise InstanceError(self.name, f"GetModelStatus failed: {error.code().name}: {error.details()}") from None
        return {
            status.version: VersionStatus(
                status.version,
                STATES.get(status.state, str(status.state)),
                status.status.error_code,
                status.status.error_message,
            )
            for status in response.model_version_status
        }

    def predict_grpc(self, request: Any, timeout_s: float) -> tuple[dict[str, list[Any]], float]:
        """gRPC Predict: (output name -> flat values, seconds)."""
        started = time.perf_counter()
        response = self._call(
            protos.PREDICTION_SERVICE, "Predict", request, "tensorflow.serving.PredictResponse", timeout_s
        )
        seconds = time.perf_counter() - started
        return {name: protos.tensor_values(proto)[1] for name, proto in response.outputs.items()}, seconds

    def predict_rest(self, path: str, body: dict[str, Any], timeout_s: float) -> tuple[Any, float]:
        """REST POST ``{rest_url}{path}`` with a JSON body: (JSON answer, seconds)."""
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.address.rest_url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise InstanceError(self.name, f"REST {path} answered {error.code}: {error.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as error:
            raise InstanceError(self.name, f"REST {path} failed: {error}") from None
        return answer, time.perf_counter() - started


def rest_get(url: str, timeout_s: float = 5.0) -> Any:
    """GET a JSON document (None when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return {"error": error.code}
    except (urllib.error.URLError, OSError, ValueError):
        return None
