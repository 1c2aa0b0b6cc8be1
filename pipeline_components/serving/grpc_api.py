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
from pipeline_components.serving.flags import ServerFlags, channel_arguments, listen_address
from pipeline_components.serving.metrics import Metrics
from pipeline_components.serving.servable import Servable

T = TypeVar("T")


class _Calls:
    def __init__(self, core: ServingCore, metrics: Metrics) -> None:
        self.core = core
        self.metrics = metrics

    def run(
        self, api: str, model_name: str, context: grpc.ServicerContext, call: Callable[[], tuple[T, int | None]]
    ) -> T:
        started = time.monotonic()
        outcome, version = status.UNKNOWN, None
        try:
            response, version = call()
            outcome = status.OK
            return response
        except ServingError as error:
            outcome = error.code
            version = error.served[2] if error.served else version
            context.abort(_grpc_code(error), error.message)
            raise  # unreachable: abort raises
        finally:
            # Counted before the status goes out (the handler has not returned yet), as TF Serving does.
            self.metrics.record_request(
                model_name=model_name,
                version=version,
                api=api,
                entrypoint="GRPC",
                code=outcome,
                seconds=time.monotonic() - started,
            )


def _grpc_code(error: ServingError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN)


def _answer(api: str, call: Callable[[ServingCore, Any], tuple[Any, int | None]]) -> Callable[..., Any]:
    """One RPC method: ``call(core, request)`` gives (response, version answered), run through ``_Calls.run``."""

    def method(self: _Service, request: Any, context: grpc.ServicerContext) -> Any:
        return self._calls.run(api, request.model_spec.name, context, lambda: call(self._calls.core, request))

    method.__name__ = api
    return method


def _with_version(answer: tuple[Any, Servable]) -> tuple[Any, int]:
    response, servable = answer
    return response, servable.version


def _metadata(core: ServingCore, request: Any) -> tuple[Any, int]:
    response = core.get_model_metadata(request)
    return response, response.model_spec.version.value


class _Service:
    def __init__(self, calls: _Calls) -> None:
        self._calls = calls


class PredictionService(_Service, prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress and GetModelMetadata."""

    Predict = _answer("predict", lambda core, request: _with_version(core.predict(request)))
    Classify = _answer("classify", lambda core, request: _with_version(core.classify(request)))
    Regress = _answer("regress", lambda core, request: _with_version(core.regress(request)))
    GetModelMetadata = _answer("GetModelMetadata", lambda core, request: _metadata(core, request))

    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not implemented by runway-model-server")


class ModelService(_Service, model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus and HandleReloadConfigRequest."""

    GetModelStatus = _answer("GetModelStatus", lambda core, request: (core.get_model_status(request), None))

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        response, error = self._calls.core.reload_config(request)
        if error is not None:
            context.abort(_grpc_code(error), error.message)
        return response


# Connection upkeep: TF Serving sets none of these and takes them from --grpc_channel_arguments, as this server does
# (a value given there wins). Pings find a peer that vanished without closing (its calls then end and free their
# slots); an idle connection is closed after 5 minutes; any connection is closed gracefully after 10 minutes (clients
# reconnect transparently), which also bounds how long a call whose request never arrives can hold a slot.
DEFAULT_CHANNEL_ARGUMENTS: dict[str, int | str] = {
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.max_connection_idle_ms": 300_000,
    "grpc.max_connection_age_ms": 600_000,
    "grpc.max_connection_age_grace_ms": 60_000,
}


def make_grpc_server(*, core: ServingCore, metrics: Metrics, flags: ServerFlags) -> tuple[grpc.Server, int]:
    """A ready (not started) gRPC server with both services, listening as ``flags`` say.

    ``--grpc_max_threads`` calls are served at once; one more is refused at once with RESOURCE_EXHAUSTED, as TF
    Serving's server does when its thread quota is spent. A request message over ``--runway_max_request_bytes`` is
    refused with RESOURCE_EXHAUSTED. ``--grpc_channel_arguments`` apply over ``DEFAULT_CHANNEL_ARGUMENTS``.

    Args:
        core: the serving APIs.
        metrics: where calls are counted.
        flags: the command line.

    Returns:
        (the server, the bound port).

    Raises:
        ServingError: UNAVAILABLE when the port cannot be bound.
    """
    options: dict[str, int | str] = {
        "grpc.max_receive_message_length": flags.runway_max_request_bytes,
        "grpc.max_send_message_length": -1,
        "grpc.so_reuseport": 0,
        **DEFAULT_CHANNEL_ARGUMENTS,
        **dict(channel_arguments(flags.grpc_channel_arguments)),
    }
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=flags.grpc_max_threads, thread_name_prefix="grpc"),
        options=list(options.items()),
        maximum_concurrent_rpcs=flags.grpc_max_threads,
    )
    calls = _Calls(core, metrics)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(calls), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(calls), server)
    address = listen_address(flags.bind_address, flags.port)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise ServingError(status.UNAVAILABLE, f"cannot listen for gRPC on {address}: {error}") from None
    if bound == 0:
        raise ServingError(status.UNAVAILABLE, f"cannot listen for gRPC on {address}")
    return server, bound
