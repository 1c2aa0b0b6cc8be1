"""TF Serving's gRPC API with ``grpcio`` and the vendored stubs: one channel, retries, typed errors."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pipeline_components import serving_protos as sp
from pipeline_components.client import results
from pipeline_components.client.results import Protocol, Route, VersionStatus, answered_version
from pipeline_components.client.retries import (
    RETRYABLE_CODES,
    Attempt,
    RetryPolicy,
    encoded,
    typed_error,
    with_retries,
)

# Reconnect fast after a restart: the retry policy, not gRPC's long default backoff, paces retries.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def _spec(route: Route, signature: str) -> dict[str, Any]:
    """The model-spec arguments of ``serving_protos``' request builders."""
    return {"model": route.model, "version": route.version, "label": route.label, "signature": signature}


class GrpcTransport:
    """TF Serving's PredictionService and ModelService at one gRPC target.

    Each API method answers ``(what was asked, the version that answered, tries)``; gRPC responses name the
    version that computed them.

    Args:
        target: e.g. ``127.0.0.1:8500``.
        timeout_s: the deadline of each attempt.
        retry: the retry policy for transient failures.
    """

    protocol: Protocol = "grpc"

    def __init__(self, *, target: str, timeout_s: float, retry: RetryPolicy) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.retry = retry
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stubs: tuple[Any, Any] | None = None

    # ------------------------------------------------------------------------------------------------ the API

    def predict(
        self, route: Route, signature: str, rows: Sequence[Mapping[str, Any]], dtypes: Mapping[str, str]
    ) -> tuple[list[Any], int | None, int]:
        """``Predict`` with one typed tensor per feature (the signature's dtypes, else the values' types)."""
        request = encoded(
            lambda: sp.predict_request(columns=sp.columns_of(rows), dtypes=dtypes, **_spec(route, signature))
        )
        return self._predict(route, request)

    def predict_examples(
        self, route: Route, signature: str, serialized: list[bytes]
    ) -> tuple[list[Any], int | None, int]:
        """``Predict`` with the serialized tf.Examples as the ``examples`` string tensor."""
        columns, dtypes = {"examples": serialized}, {"examples": "DT_STRING"}
        request = sp.predict_request(columns=columns, dtypes=dtypes, **_spec(route, signature))
        return self._predict(route, request)

    def _predict(self, route: Route, request: Any) -> tuple[list[Any], int | None, int]:
        response, attempts = self.call("Predict", request)
        return sp.outputs_as_rows(response.outputs), answered_version(response, route.version), attempts

    def classify(
        self, route: Route, signature: str, rows: Sequence[Mapping[str, Any]], dtypes: Mapping[str, str]
    ) -> tuple[list[list[tuple[str, float]]], int | None, int]:
        """``Classify`` with one tf.Example per row (``Input.example_list``)."""
        request = encoded(lambda: sp.classification_request(rows=rows, dtypes=dtypes, **_spec(route, signature)))
        response, attempts = self.call("Classify", request)
        return results.classes_of_grpc(response), answered_version(response, route.version), attempts

    def status(self, route: Route) -> list[VersionStatus]:
        """``ModelService.GetModelStatus``: the versions and their states."""
        request = sp.GetModelStatusRequest()
        sp.fill_model_spec(request.model_spec, model=route.model, version=route.version, label=route.label)
        response, _ = self.call("GetModelStatus", request, service="model")
        return results.statuses_of_grpc(response)

    def metadata(self, route: Route) -> tuple[int | None, dict[str, dict[str, str]]]:
        """``GetModelMetadata``: (the version that answered, signature -> input -> dtype name)."""
        request = sp.GetModelMetadataRequest()
        sp.fill_model_spec(request.model_spec, model=route.model, version=route.version, label=route.label)
        request.metadata_field.append("signature_def")
        response, _ = self.call("GetModelMetadata", request)
        return int(response.model_spec.version.value), results.signature_inputs_of_grpc(response)

    # ------------------------------------------------------------------------------------------ the transport

    def _stub(self, service: str) -> Any:
        with self._lock:
            if self._stubs is None:
                import grpc  # only a gRPC client pays for importing grpcio

                self._channel = grpc.insecure_channel(self.target, options=_CHANNEL_OPTIONS)
                self._stubs = (sp.PredictionServiceStub(self._channel), sp.ModelServiceStub(self._channel))
            prediction, model = self._stubs
        return model if service == "model" else prediction

    def close(self) -> None:
        """Close the channel (the next call opens a new one)."""
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel, self._stubs = None, None

    def call(
        self, method: str, request: Any, *, service: Literal["prediction", "model"] = "prediction"
    ) -> tuple[Any, int]:
        """Call ``method`` (e.g. ``Predict``) with ``request``, retrying transient failures.

        Returns:
            (the response, the number of tries).

        Raises:
            ServingClientError: see ``retries``.
        """
        import grpc

        def once() -> tuple[Any, Attempt]:
            stub = getattr(self._stub(service), method)
            try:
                return stub(request, timeout=self.timeout_s), Attempt()
            except grpc.RpcError as error:
                code = error.code().name if error.code() is not None else "UNKNOWN"
                text = f"gRPC {method} {self.target}: {code}: {error.details() or ''}"
                if code == "DEADLINE_EXCEEDED":
                    text += f" (timeout {self.timeout_s:g} s; the server may be overloaded)"
                failure = typed_error(code, text, target=self.target, protocol="grpc")
                return None, Attempt(error=failure, retryable=code in RETRYABLE_CODES)

        return with_retries(once, self.retry)
