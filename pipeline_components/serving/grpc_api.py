"""TF Serving's gRPC services (``PredictionService``, ``ModelService``) from tensorflow-serving-api's stubs.

A failure aborts the RPC with TF Serving's status code and message (``ToGRPCStatus``); ``HandleReloadConfigRequest``
fails the RPC too when the reload is refused, as model_service_impl.cc does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from pipeline_components.errors import ServingError
from pipeline_components.serving import status
from pipeline_components.serving.core import ServingCore
from pipeline_components.serving.metrics import Metrics

T = TypeVar("T")


class _Calls:
    def __init__(self, core: ServingCore, metrics: Metrics) -> None:
        self.core = core
        self.metrics = metrics

    def run(
        self, api: str, model_name: str, context: grpc.ServicerContext, call: Callable[[], tuple[T, int | None]]
    ) -> T:
        started = time.monotonic()
        try:
            response, version = call()
        except ServingError as error:
            self.metrics.record_request(
                model_name=model_name,
                version=None,
                api=api,
                entrypoint="GRPC",
                code=error.code,
                seconds=time.monotonic() - started,
            )
            context.abort(getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN), error.message)
            raise  # unreachable: abort raises
        self.metrics.record_request(
            model_name=model_name,
            version=version,
            api=api,
            entrypoint="GRPC",
            code=status.OK,
            seconds=time.monotonic() - started,
        )
        return response


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress and GetModelMetadata."""

    def __init__(self, calls: _Calls) -> None:
        self._calls = calls

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        def call() -> tuple[Any, int]:
            response, servable = self._calls.core.predict(request)
            return response, servable.version

        return self._calls.run("predict", request.model_spec.name, context, call)

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        def call() -> tuple[Any, int]:
            response, servable = self._calls.core.classify(request)
            return response, servable.version

        return self._calls.run("classify", request.model_spec.name, context, call)

    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        def call() -> tuple[Any, int]:
            response, servable = self._calls.core.regress(request)
            return response, servable.version

        return self._calls.run("regress", request.model_spec.name, context, call)

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        def call() -> tuple[Any, int]:
            response = self._calls.core.get_model_metadata(request)
            return response, response.model_spec.version.value

        return self._calls.run("GetModelMetadata", request.model_spec.name, context, call)

    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not implemented by runway-model-server")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest."""

    def __init__(self, calls: _Calls) -> None:
        self._calls = calls

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._calls.run(
            "GetModelStatus",
            request.model_spec.name,
            context,
            lambda: (self._calls.core.get_model_status(request), None),
        )

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        response, error = self._calls.core.reload_config(request)
        if error is not None:
            context.abort(getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN), error.message)
        return response


def make_grpc_server(
    *, core: ServingCore, metrics: Metrics, port: int, host: str = "0.0.0.0", max_message_bytes: int, workers: int = 16
) -> tuple[grpc.Server, int]:
    """A started-ready (not started) gRPC server with both services.

    Returns:
        (the server, the bound port).

    Raises:
        ServingError: UNAVAILABLE when the port cannot be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ],
    )
    calls = _Calls(core, metrics)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(calls), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(calls), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as error:
        raise ServingError(status.UNAVAILABLE, f"cannot bind gRPC port {port}: {error}") from None
    if bound == 0:
        raise ServingError(status.UNAVAILABLE, f"cannot bind gRPC port {port}")
    return server, bound
