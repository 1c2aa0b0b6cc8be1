"""Query a TF Serving fleet (or one server) by label or version, over REST or gRPC, with retries and typed errors.

    from pipeline_components.client import ServingClient

    client = ServingClient(rest_url="http://127.0.0.1:8501", grpc_target="127.0.0.1:8500", model="flights_delay")
    answer = client.predict({"distance": 1617.0, "carrier": "B6", ...})            # label "stable", REST
    answer = client.predict(rows, protocol="grpc", version=1795299581)              # a batch, one version, gRPC
    answer.predictions, answer.version                                               # [[0.278]], 1795299581

Retries: only errors that say "try again" — gRPC UNAVAILABLE, HTTP 502/503, connection refused/reset/closed —
with exponential backoff and jitter (``RetryPolicy``). Never retried: INVALID_ARGUMENT / FAILED_PRECONDITION / 400
(``InvalidRequestError``), NOT_FOUND / 404 (``ModelNotFoundError``), a timeout (``ServingTimeoutError``: the server
may still be working on it; retrying would pile up load), anything else (``ServingClientError``). Every request
(predict, classify, status) is idempotent, so a retry after a reset cannot do harm.

No TensorFlow: REST uses ``http.client`` (one keep-alive connection per thread), gRPC uses ``grpcio`` with the
vendored TF Serving protos of ``pipeline_components.serving_protos``. Thread-safe; not fork-safe (make one client
per process).
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pipeline_components import serving_protos as sp
from pipeline_components.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    ServingClientError,
    ServingTimeoutError,
    ServingUnavailableError,
)

Protocol = Literal["rest", "grpc"]
PROTOCOLS: tuple[Protocol, ...] = ("rest", "grpc")
DEFAULT_MODEL = "flights_delay"
DEFAULT_LABEL = "stable"
DEFAULT_REST_URL = "http://127.0.0.1:8501"
DEFAULT_GRPC_TARGET = "127.0.0.1:8500"

# TF Serving's HTTP status for each canonical code (http_server.cc ToHTTPStatusCode), inverted for REST answers.
_CODE_OF_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",  # a load balancer whose upstream failed
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
RETRYABLE_CODES = frozenset({"UNAVAILABLE"})
RETRYABLE_HTTP = frozenset({502, 503})
# Connection-level failures: nothing was processed, or the server went away mid-request (idempotent: retry).
_CONNECTION_ERRORS = (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError)

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    ``attempts`` counts the first try; the wait before try ``n+1`` is ``min(max_backoff_s, initial_backoff_s *
    multiplier**(n-1))``, scaled by a random factor in [0.5, 1] (jitter) so that many clients do not retry in step.
    """

    attempts: int = 5
    initial_backoff_s: float = 0.05
    multiplier: float = 2.0
    max_backoff_s: float = 1.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")

    def backoff_s(self, attempt: int) -> float:
        wait = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return wait * random.uniform(0.5, 1.0) if self.jitter else wait


NO_RETRY = RetryPolicy(attempts=1)


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """One answer: the predictions in TF Serving's row form (one entry per instance), and who answered.

    ``version`` is the version that computed it: from the gRPC response's ``model_spec``; for REST (whose predict
    answer does not say) only when the request named a version, or when ``resolve_version`` asked the server which
    version the label points at (a second request, which a load balancer may send to another instance).
    """

    model: str
    version: int | None
    label: str | None
    protocol: Protocol
    signature: str
    predictions: list[Any]
    attempts: int
    latency_s: float


@dataclass(frozen=True, kw_only=True)
class Classification:
    """Classify's answer: per example, a list of ``(class, score)`` pairs."""

    model: str
    version: int | None
    label: str | None
    protocol: Protocol
    signature: str
    results: list[list[tuple[str, float]]]
    attempts: int
    latency_s: float


@dataclass(frozen=True, kw_only=True)
class VersionStatus:
    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""


@dataclass
class _Attempt:
    """What one try produced, for the retry loop."""

    error: ServingClientError | None = None
    retryable: bool = False


def _rows(instances: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rows = [instances] if isinstance(instances, Mapping) else list(instances)
    if not rows:
        raise InvalidRequestError("INVALID_ARGUMENT", "no instances to send: pass a dict of features or a list")
    return rows


def _coerce(row: Mapping[str, Any], dtypes: Mapping[str, str]) -> dict[str, Any]:
    """A row's values converted to the signature's dtypes (floats stay floats in JSON: ``10.0``, not ``10``)."""
    converted: dict[str, Any] = {}
    for name, value in row.items():
        dtype = dtypes.get(name)
        if dtype in ("DT_FLOAT", "DT_DOUBLE") and isinstance(value, int | str) and not isinstance(value, bool):
            converted[name] = float(value)
        elif dtype in ("DT_INT64", "DT_INT32") and isinstance(value, float | str):
            converted[name] = int(float(value))
        else:
            converted[name] = value
    return converted


def make_example(features: Mapping[str, Any], dtypes: Mapping[str, str] | None = None) -> Any:
    """A ``tensorflow.Example`` of one row of raw features (floats, ints, strings; a list for several values).

    ``dtypes`` (feature -> ``DT_FLOAT`` / ``DT_INT64`` / ``DT_STRING``, e.g. from the ``serving_default``
    signature) decides each feature's list type; without it the Python type decides (int -> int64_list,
    str/bytes -> bytes_list, anything else -> float_list).
    """
    example = sp.message("tensorflow.Example")()
    for name, value in features.items():
        values = list(value) if isinstance(value, list | tuple) else [value]
        dtype = (dtypes or {}).get(name) or sp.tensors._infer_dtype(values)
        feature = example.features.feature[name]
        if dtype == "DT_STRING":
            feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else bytes(v) for v in values)
        elif dtype in ("DT_INT64", "DT_INT32", "DT_BOOL"):
            feature.int64_list.value.extend(int(v) for v in values)
        else:
            feature.float_list.value.extend(float(v) for v in values)
    return example


class ServingClient:
    """A client of one TF Serving endpoint (a load balancer or a single server), for one model.

    Args:
        rest_url: the REST base URL, e.g. ``http://127.0.0.1:8501`` (needed for ``protocol="rest"``).
        grpc_target: the gRPC address, e.g. ``127.0.0.1:8500`` (needed for ``protocol="grpc"``).
        model: the served model's name.
        protocol: the default protocol of every call (each call may override it).
        timeout_s: per attempt; a request without an answer by then raises ``ServingTimeoutError``.
        retry: the retry policy for transient failures (``NO_RETRY`` to see every failure).
        label: the default label when a call names neither a label nor a version (None: the newest version).
    """

    def __init__(
        self,
        *,
        rest_url: str | None = DEFAULT_REST_URL,
        grpc_target: str | None = DEFAULT_GRPC_TARGET,
        model: str = DEFAULT_MODEL,
        protocol: Protocol = "rest",
        timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        label: str | None = DEFAULT_LABEL,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        self.rest_url = rest_url.rstrip("/") if rest_url else None
        self.grpc_target = grpc_target
        self.model = model
        self.protocol: Protocol = protocol
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.label = label
        self._local = threading.local()
        self._lock = threading.Lock()
        self._channel: Any = None
        self._stub: Any = None
        self._dtypes: dict[tuple[str, str], dict[str, str]] = {}

    @classmethod
    def from_fleet(cls, home: Any = None, **kwargs: Any) -> ServingClient:
        """A client of the load balancer of the fleet described by ``$RUNWAY_HOME/fleet/fleet.json``.

        Raises:
            ServingUnavailableError: no fleet is described there (start one with ``runway fleet up``).
        """
        from pipeline_components.fleet import read_fleet_state

        state = read_fleet_state(home)
        if state is None:
            raise ServingUnavailableError(
                "UNAVAILABLE", "no fleet is running here (no fleet.json): start one with `runway fleet up`"
            )
        return cls(rest_url=state.rest_url, grpc_target=state.grpc_target, **kwargs)

    # ---------------------------------------------------------------------------------------------- public API

    def predict(
        self,
        instances: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        label: str | None = None,
        version: int | None = None,
        protocol: Protocol | None = None,
        signature: str = "serving_default",
        resolve_version: bool = False,
    ) -> Prediction:
        """Predict for one row of raw features (a dict) or a batch (a list of dicts).

        Args:
            instances: feature name -> value, one dict per example.
            label: the version label to ask (default: the client's, ``stable``); exclusive with ``version``.
            version: a version number to ask instead of a label.
            protocol: ``rest`` or ``grpc`` (default: the client's).
            signature: the signature to run.
            resolve_version: REST only: also ask which version the label points at (one more request).

        Raises:
            InvalidRequestError, ModelNotFoundError, ServingTimeoutError, ServingUnavailableError,
            ServingClientError: see the module docstring.
        """
        rows = _rows(instances)
        protocol = protocol or self.protocol
        label, version = self._choice(label, version)
        start = time.perf_counter()
        if protocol == "rest":
            body = {"signature_name": signature, "instances": [dict(row) for row in rows]}
            prediction = self._predict_rest(body, label, version, signature, start)
            if resolve_version and version is None:
                prediction = dataclasses.replace(prediction, version=self.resolve_version(label=label))
            return prediction
        request = self._grpc_predict_request(rows, label, version, signature)
        return self._predict_grpc(request, label, version, signature, start)

    def predict_examples(
        self,
        instances: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        label: str | None = None,
        version: int | None = None,
        protocol: Protocol | None = None,
        signature: str = "serving_tf_example",
    ) -> Prediction:
        """Predict through the serialized-tf.Example signature (``serving_tf_example``, input ``examples``)."""
        rows = _rows(instances)
        protocol = protocol or self.protocol
        label, version = self._choice(label, version)
        dtypes = self._feature_dtypes(label, version, protocol)
        serialized = [make_example(row, dtypes).SerializeToString() for row in rows]
        start = time.perf_counter()
        if protocol == "rest":
            body = {
                "signature_name": signature,
                "instances": [{"b64": base64.b64encode(data).decode()} for data in serialized],
            }
            return self._predict_rest(body, label, version, signature, start)
        request = sp.PredictRequest()
        self._fill_spec(request.model_spec, label, version, signature)
        request.inputs["examples"].CopyFrom(sp.make_tensor_proto(serialized, dtype="DT_STRING"))
        return self._predict_grpc(request, label, version, signature, start)

    def _predict_rest(
        self, body: dict[str, Any], label: str | None, version: int | None, signature: str, start: float
    ) -> Prediction:
        """POST ``:predict``; REST does not say which version answered (``version`` is what was asked)."""
        document, attempts = self._rest("POST", self._rest_path(label, version, ":predict"), body)
        return Prediction(
            model=self.model,
            version=version,
            label=label,
            protocol="rest",
            signature=signature,
            predictions=document.get("predictions", []),
            attempts=attempts,
            latency_s=time.perf_counter() - start,
        )

    def _predict_grpc(
        self, request: Any, label: str | None, version: int | None, signature: str, start: float
    ) -> Prediction:
        """``PredictionService.Predict``; the response names the version that answered."""
        response, attempts = self._grpc("Predict", request)
        return Prediction(
            model=self.model,
            version=response.model_spec.version.value if response.model_spec.HasField("version") else version,
            label=label,
            protocol="grpc",
            signature=signature,
            predictions=self._rows_of_outputs(response.outputs),
            attempts=attempts,
            latency_s=time.perf_counter() - start,
        )

    def classify(
        self,
        instances: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        label: str | None = None,
        version: int | None = None,
        protocol: Protocol | None = None,
        signature: str = "serving_classify",
    ) -> Classification:
        """TF Serving's Classify API with tf.Examples built from raw features (gRPC: ``Input.example_list``)."""
        rows = _rows(instances)
        protocol = protocol or self.protocol
        label, version = self._choice(label, version)
        start = time.perf_counter()
        if protocol == "rest":
            # JSON examples are typed by their JSON form (10 -> int64): follow the raw signature's dtypes instead.
            dtypes = self._feature_dtypes(label, version, "rest")
            body = {"signature_name": signature, "examples": [_coerce(row, dtypes) for row in rows]}
            document, attempts = self._rest("POST", self._rest_path(label, version, ":classify"), body)
            results = [[(str(cls), float(score)) for cls, score in result] for result in document.get("results", [])]
            return Classification(
                model=self.model,
                version=version,
                label=label,
                protocol="rest",
                signature=signature,
                results=results,
                attempts=attempts,
                latency_s=time.perf_counter() - start,
            )
        dtypes = self._feature_dtypes(label, version, "grpc")
        request = sp.ClassificationRequest()
        self._fill_spec(request.model_spec, label, version, signature)
        for row in rows:
            request.input.example_list.examples.add().CopyFrom(make_example(row, dtypes))
        response, attempts = self._grpc("Classify", request)
        results = [
            [(item.label, float(item.score)) for item in classifications.classes]
            for classifications in response.result.classifications
        ]
        return Classification(
            model=self.model,
            version=response.model_spec.version.value if response.model_spec.HasField("version") else version,
            label=label,
            protocol="grpc",
            signature=signature,
            results=results,
            attempts=attempts,
            latency_s=time.perf_counter() - start,
        )

    def status(
        self, *, label: str | None = None, version: int | None = None, protocol: Protocol | None = None
    ) -> list[VersionStatus]:
        """The model's versions and their states (all of them, or the one a label or version names)."""
        protocol = protocol or self.protocol
        if protocol == "rest":
            document, _ = self._rest("GET", self._rest_path(label, version, ""), None)
            return [
                VersionStatus(
                    version=int(item["version"]),
                    state=item["state"],
                    error_code=item.get("status", {}).get("error_code", "OK"),
                    error_message=item.get("status", {}).get("error_message", ""),
                )
                for item in document.get("model_version_status", [])
            ]
        request = sp.GetModelStatusRequest()
        self._fill_spec(request.model_spec, label, version, None)
        response, _ = self._grpc("GetModelStatus", request, service="model")
        states = sp.message("tensorflow.serving.ModelVersionStatus").DESCRIPTOR.enum_types_by_name["State"]
        codes = sp.pool().FindEnumTypeByName("tensorflow.error.Code")
        return [
            VersionStatus(
                version=item.version,
                state=states.values_by_number[item.state].name,
                error_code=codes.values_by_number[item.status.error_code].name,
                error_message=item.status.error_message,
            )
            for item in response.model_version_status
        ]

    def resolve_version(self, *, label: str | None = None, protocol: Protocol | None = None) -> int:
        """The version a label (default: the client's) points at, from the model's metadata."""
        protocol = protocol or self.protocol
        label, _ = self._choice(label, None)
        if protocol == "rest":
            document, _ = self._rest("GET", self._rest_path(label, None, "/metadata"), None)
            return int(document["model_spec"]["version"])
        request = sp.GetModelMetadataRequest()
        self._fill_spec(request.model_spec, label, None, None)
        request.metadata_field.append("signature_def")
        response, _ = self._grpc("GetModelMetadata", request)
        return int(response.model_spec.version.value)

    def signature_inputs(
        self,
        *,
        signature: str = "serving_default",
        label: str | None = None,
        version: int | None = None,
        protocol: Protocol | None = None,
    ) -> dict[str, str]:
        """Input name -> dtype name (``DT_FLOAT``...) of a signature, from the model's metadata.

        Raises:
            InvalidRequestError: the model has no such signature.
        """
        protocol = protocol or self.protocol
        label, version = self._choice(label, version)
        if protocol == "rest":
            document, _ = self._rest("GET", self._rest_path(label, version, "/metadata"), None)
            signatures = document.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
            found = {
                name: {n: i["dtype"] for n, i in sig.get("inputs", {}).items()} for name, sig in signatures.items()
            }
        else:
            request = sp.GetModelMetadataRequest()
            self._fill_spec(request.model_spec, label, version, None)
            request.metadata_field.append("signature_def")
            response, _ = self._grpc("GetModelMetadata", request)
            defs = sp.SignatureDefMap.FromString(response.metadata["signature_def"].value).signature_def
            dtype_names = sp.pool().FindEnumTypeByName("tensorflow.DataType")
            found = {
                name: {n: dtype_names.values_by_number[i.dtype].name for n, i in sig.inputs.items()}
                for name, sig in defs.items()
            }
        if signature not in found:
            raise InvalidRequestError(
                "INVALID_ARGUMENT",
                f"model {self.model} has no signature {signature!r}; it has {', '.join(sorted(found))}",
                target=(self.rest_url if protocol == "rest" else self.grpc_target) or "",
                protocol=protocol,
            )
        return found[signature]

    def close(self) -> None:
        """Close the gRPC channel and this thread's REST connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel, self._stub = None, None

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------- helpers

    def _choice(self, label: str | None, version: int | None) -> tuple[str | None, int | None]:
        if label is not None and version is not None:
            raise ValueError("ask for a label or a version, not both")
        if version is not None:
            return None, int(version)
        return (label if label is not None else self.label), None

    def _rest_path(self, label: str | None, version: int | None, suffix: str) -> str:
        path = f"/v1/models/{urllib.parse.quote(self.model, safe='')}"
        if version is not None:
            path += f"/versions/{version}"
        elif label:
            path += f"/labels/{urllib.parse.quote(label, safe='')}"
        return path + suffix

    def _fill_spec(self, spec: Any, label: str | None, version: int | None, signature: str | None) -> None:
        spec.name = self.model
        if version is not None:
            spec.version.value = version
        elif label:
            spec.version_label = label
        if signature:
            spec.signature_name = signature

    def _with_retries(self, call: Callable[[], tuple[T | None, _Attempt]]) -> tuple[T, int]:
        attempt = 0
        while True:
            attempt += 1
            result, outcome = call()
            if outcome.error is None:
                assert result is not None
                return result, attempt
            if not outcome.retryable or attempt >= self.retry.attempts:
                outcome.error.attempts = attempt
                if outcome.retryable:
                    outcome.error.message = outcome.error.args[0] + f" (after {attempt} attempt(s))"
                    outcome.error.args = (outcome.error.message,)
                raise outcome.error
            time.sleep(self.retry.backoff_s(attempt))

    # REST ---------------------------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if not self.rest_url:
                raise ValueError("this client has no rest_url; pass rest_url=... or use protocol='grpc'")
            parsed = urllib.parse.urlsplit(self.rest_url)
            cls = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
            connection = cls(parsed.hostname or "127.0.0.1", parsed.port, timeout=self.timeout_s)
            self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None

    def _rest(self, method: str, path: str, body: Any) -> tuple[dict[str, Any], int]:
        data = None if body is None else json.dumps(body).encode()
        base = self.rest_url or ""
        target = base + path

        def once() -> tuple[dict[str, Any] | None, _Attempt]:
            headers = {"Content-Type": "application/json"} if data is not None else {}
            try:
                connection = self._connection()
                connection.request(
                    method, urllib.parse.urlsplit(base).path.rstrip("/") + path, body=data, headers=headers
                )
                response = connection.getresponse()
                raw = response.read()
                if response.will_close:
                    self._drop_connection()
            except TimeoutError:
                self._drop_connection()
                return None, _Attempt(
                    error=ServingTimeoutError(
                        "DEADLINE_EXCEEDED",
                        f"{method} {target}: no answer within {self.timeout_s:g} s; the server may be overloaded "
                        "(raise timeout_s, or send smaller batches)",
                        target=target,
                        protocol="rest",
                    )
                )
            except (*_CONNECTION_ERRORS, OSError) as error:
                self._drop_connection()
                return None, _Attempt(
                    error=ServingUnavailableError(
                        "UNAVAILABLE",
                        f"{method} {target}: {type(error).__name__}: {error}; is the fleet up (`runway fleet status`)?",
                        target=target,
                        protocol="rest",
                    ),
                    retryable=True,
                )
            if 200 <= response.status < 300:
                try:
                    return json.loads(raw or b"{}"), _Attempt()
                except json.JSONDecodeError:
                    return None, _Attempt(
                        error=ServingClientError(
                            "INTERNAL", f"{method} {target}: answer is not JSON: {raw[:200]!r}", target=target
                        )
                    )
            return None, self._rest_error(method, target, response.status, raw)

        return self._with_retries(once)

    def _rest_error(self, method: str, target: str, http_status: int, raw: bytes) -> _Attempt:
        try:
            message = str(json.loads(raw).get("error", "")) or raw.decode(errors="replace")[:300]
        except (json.JSONDecodeError, AttributeError):
            message = raw.decode(errors="replace").strip()[:300] or f"HTTP {http_status}"
        code = _CODE_OF_HTTP.get(http_status, "UNKNOWN")
        text = f"{method} {target}: HTTP {http_status}: {message}"
        return _Attempt(
            error=self._typed(code, text, target=target, protocol="rest", http_status=http_status),
            retryable=http_status in RETRYABLE_HTTP,
        )

    @staticmethod
    def _typed(code: str, text: str, **where: Any) -> ServingClientError:
        if code == "UNAVAILABLE":
            return ServingUnavailableError(code, text, **where)
        if code == "DEADLINE_EXCEEDED":
            return ServingTimeoutError(code, text, **where)
        if code == "NOT_FOUND":
            return ModelNotFoundError(code, text, **where)
        if code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"):
            return InvalidRequestError(code, text, **where)
        return ServingClientError(code, text, **where)

    # gRPC ---------------------------------------------------------------------------------------------------

    def _stubs(self) -> tuple[Any, Any]:
        with self._lock:
            if self._stub is None:
                import grpc

                if not self.grpc_target:
                    raise ValueError("this client has no grpc_target; pass grpc_target=... or use protocol='rest'")
                self._channel = grpc.insecure_channel(
                    self.grpc_target,
                    options=[
                        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                        ("grpc.max_send_message_length", 64 * 1024 * 1024),
                        # Reconnect fast after a restart: the retry policy, not gRPC's long backoff, paces retries.
                        ("grpc.initial_reconnect_backoff_ms", 100),
                        ("grpc.min_reconnect_backoff_ms", 100),
                        ("grpc.max_reconnect_backoff_ms", 1000),
                    ],
                )
                self._stub = (sp.PredictionServiceStub(self._channel), sp.ModelServiceStub(self._channel))
            return self._stub

    def _grpc(self, method: str, request: Any, *, service: str = "prediction") -> tuple[Any, int]:
        import grpc

        target = self.grpc_target or ""

        def once() -> tuple[Any, _Attempt]:
            prediction, model = self._stubs()
            stub = getattr(model if service == "model" else prediction, method)
            try:
                return stub(request, timeout=self.timeout_s), _Attempt()
            except grpc.RpcError as error:
                code = error.code().name if error.code() is not None else "UNKNOWN"
                details = error.details() or ""
                text = f"gRPC {method} {target}: {code}: {details}"
                if code == "DEADLINE_EXCEEDED":
                    text += f" (timeout {self.timeout_s:g} s; the server may be overloaded)"
                return None, _Attempt(
                    error=self._typed(code, text, target=target, protocol="grpc"),
                    retryable=code in RETRYABLE_CODES,
                )

        return self._with_retries(once)

    def _feature_dtypes(self, label: str | None, version: int | None, protocol: Protocol) -> dict[str, str]:
        """The raw features' dtypes from the ``serving_default`` signature, asked once per client and model.

        A server that is down or slow raises as any request would; one that cannot say (no metadata API, no such
        signature, a bad label) leaves the Python types to decide, and the request itself reports what is wrong.
        """
        key = (self.model, "serving_default")
        if key in self._dtypes:
            return self._dtypes[key]
        try:
            dtypes = self.signature_inputs(label=label, version=version, protocol=protocol)
        except (ServingUnavailableError, ServingTimeoutError):
            raise
        except ServingClientError as error:
            if error.code == "UNIMPLEMENTED":
                self._dtypes[key] = {}
            return {}
        self._dtypes[key] = dtypes
        return dtypes

    def _grpc_predict_request(
        self, rows: list[Mapping[str, Any]], label: str | None, version: int | None, signature: str
    ) -> Any:
        dtypes = self._feature_dtypes(label, version, "grpc") if signature == "serving_default" else {}
        request = sp.PredictRequest()
        self._fill_spec(request.model_spec, label, version, signature)
        names: Iterable[str] = rows[0].keys()
        for name in names:
            column = [row.get(name) for row in rows]
            if any(value is None for value in column):
                raise InvalidRequestError(
                    "INVALID_ARGUMENT", f"feature {name!r} is missing from some instances; every row needs it"
                )
            try:
                request.inputs[name].CopyFrom(sp.make_tensor_proto(column, dtype=dtypes.get(name)))
            except ValueError as error:
                raise InvalidRequestError("INVALID_ARGUMENT", f"feature {name!r}: {error}") from None
        return request

    @staticmethod
    def _rows_of_outputs(outputs: Any) -> list[Any]:
        """gRPC outputs as REST's row form: a single output's rows, or one dict per row for several outputs."""
        columns = {name: sp.tensor_to_list(proto) for name, proto in outputs.items()}
        columns = {
            name: [v.decode() if isinstance(v, bytes) else v for v in value] if isinstance(value, list) else value
            for name, value in columns.items()
        }
        if len(columns) == 1:
            (only,) = columns.values()
            return only if isinstance(only, list) else [only]
        length = min(len(value) for value in columns.values() if isinstance(value, list))
        return [{name: value[i] for name, value in columns.items()} for i in range(length)]
