"""Query a TF Serving fleet (or one server) by label or version, over REST or gRPC, with retries and typed errors.

    from pipeline_components.client import ServingClient

    client = ServingClient(rest_url="http://127.0.0.1:8501", grpc_target="127.0.0.1:8500", model="flights_delay")
    answer = client.predict({"distance": 1617.0, "carrier": "B6", ...})            # label "stable", REST
    answer = client.predict(rows, protocol="grpc", version=1795299581)              # a batch, one version, gRPC
    answer.predictions, answer.version                                               # [[0.278]], 1795299581

``ServingClient`` is the one entry point; beside it: the transports (``rest_transport``, ``grpc_transport``), the
retry policy and the typed errors (``retries``: only errors that say "try again" are retried), the answers
(``results``), and the project's one encoder of tensors, tf.Examples and requests (``serving_protos``). Every
request (predict, classify, status, metadata) is idempotent, so a retry after a reset cannot do harm.

No TensorFlow: REST uses ``http.client`` (one keep-alive connection per thread), gRPC uses ``grpcio`` with the
vendored TF Serving protos. Thread-safe; not fork-safe (make one client per process).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Unpack

from pipeline_components.client.grpc_transport import GrpcTransport
from pipeline_components.client.rest_transport import RestTransport
from pipeline_components.client.results import (
    PROTOCOLS,
    Choice,
    Classification,
    Instances,
    Prediction,
    Protocol,
    Route,
    VersionStatus,
    rows_of,
)
from pipeline_components.client.retries import NO_RETRY, RetryPolicy, encoded
from pipeline_components.errors import (
    InvalidRequestError,
    ServingClientError,
    ServingTimeoutError,
    ServingUnavailableError,
)
from pipeline_components.serving_protos import make_example

__all__ = [
    "DEFAULT_GRPC_TARGET",
    "DEFAULT_LABEL",
    "DEFAULT_MODEL",
    "DEFAULT_REST_URL",
    "FLEET_DESCRIPTION",
    "NO_RETRY",
    "PROTOCOLS",
    "Classification",
    "Prediction",
    "Protocol",
    "RetryPolicy",
    "ServingClient",
    "VersionStatus",
    "make_example",
]

DEFAULT_MODEL = "flights_delay"
DEFAULT_LABEL = "stable"
DEFAULT_REST_URL = "http://127.0.0.1:8501"
DEFAULT_GRPC_TARGET = "127.0.0.1:8500"
# Where `runway fleet up` describes the fleet it started (the fleet's published file: docs/fleet.md); the client
# reads only the load balancer's two addresses from it, so it needs nothing of the fleet's code.
FLEET_DESCRIPTION = Path("fleet") / "fleet.json"


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
        self._rest = RestTransport(base_url=rest_url, timeout_s=timeout_s, retry=self.retry) if rest_url else None
        self._grpc = GrpcTransport(target=grpc_target, timeout_s=timeout_s, retry=self.retry) if grpc_target else None
        self._dtypes: dict[tuple[str, str], dict[str, str]] = {}

    @classmethod
    def from_fleet(cls, home: Path | str | None = None, **kwargs: Any) -> ServingClient:
        """A client of the load balancer of the fleet described in ``<home>/fleet/fleet.json``.

        Args:
            home: ``RUNWAY_HOME`` (default: the environment's, else ``var/`` of the checkout).
            **kwargs: the other arguments of ``ServingClient``.

        Raises:
            ServingUnavailableError: no fleet is described there (start one with ``runway fleet up``).
        """
        if home is None:
            from pipeline_components.settings import Settings

            home = Settings.from_env().home
        path = Path(home) / FLEET_DESCRIPTION
        if not path.is_file():
            raise ServingUnavailableError(
                "UNAVAILABLE", f"no fleet is running here (no {path}): start one with `runway fleet up`"
            )
        state = json.loads(path.read_text())
        return cls(rest_url=state["rest_url"], grpc_target=state["grpc_target"], **kwargs)

    # ---------------------------------------------------------------------------------------------- public API

    def predict(
        self,
        instances: Instances,
        *,
        signature: str = "serving_default",
        resolve_version: bool = False,
        **choice: Unpack[Choice],
    ) -> Prediction:
        """Predict for one row of raw features (a dict) or a batch (a list of dicts).

        Args:
            instances: feature name -> value, one dict per example.
            signature: the signature to run.
            resolve_version: REST only: also ask which version the label points at (one more request).
            **choice: ``label`` (default: the client's, ``stable``) or ``version`` to ask, and ``protocol``
                (``rest`` or ``grpc``; default: the client's). See ``Choice``.

        Raises:
            InvalidRequestError, ModelNotFoundError, ServingTimeoutError, ServingUnavailableError,
            ServingClientError: see ``retries``.
        """
        rows, transport, route = self._start(instances, choice)
        start = time.perf_counter()
        # gRPC tensors are typed by the sender: the signature's dtypes make "precip": 0 a float where it must be.
        needs_dtypes = transport.protocol == "grpc" and signature == "serving_default"
        dtypes = self._feature_dtypes(route, transport) if needs_dtypes else {}
        predictions, answered, attempts = transport.predict(route, signature, rows, dtypes)
        prediction = self._answer(Prediction, transport, route, signature, answered, attempts, start, predictions)
        if resolve_version and answered is None:
            prediction = dataclasses.replace(prediction, version=self.resolve_version(label=route.label))
        return prediction

    def predict_examples(
        self, instances: Instances, *, signature: str = "serving_tf_example", **choice: Unpack[Choice]
    ) -> Prediction:
        """Predict through the serialized-tf.Example signature (``serving_tf_example``, input ``examples``)."""
        rows, transport, route = self._start(instances, choice)
        dtypes = self._feature_dtypes(route, transport)
        serialized = encoded(lambda: [make_example(row, dtypes).SerializeToString() for row in rows])
        start = time.perf_counter()
        predictions, answered, attempts = transport.predict_examples(route, signature, serialized)
        return self._answer(Prediction, transport, route, signature, answered, attempts, start, predictions)

    def classify(
        self, instances: Instances, *, signature: str = "serving_classify", **choice: Unpack[Choice]
    ) -> Classification:
        """TF Serving's Classify API with tf.Examples built from raw features (gRPC: ``Input.example_list``)."""
        rows, transport, route = self._start(instances, choice)
        start = time.perf_counter()
        dtypes = self._feature_dtypes(route, transport)
        classes, answered, attempts = transport.classify(route, signature, rows, dtypes)
        return self._answer(Classification, transport, route, signature, answered, attempts, start, classes)

    def status(
        self, *, label: str | None = None, version: int | None = None, protocol: Protocol | None = None
    ) -> list[VersionStatus]:
        """The model's versions and their states (all of them, or the one a label or version names)."""
        return self._transport(protocol).status(Route(self.model, label, version))

    def resolve_version(self, *, label: str | None = None, protocol: Protocol | None = None) -> int:
        """The version a label (default: the client's) points at, from the model's metadata."""
        transport = self._transport(protocol)
        version, _ = transport.metadata(self._route(label, None))
        if version is None:
            raise ServingClientError(
                "INTERNAL", f"the metadata of {self.model} names no version", protocol=transport.protocol
            )
        return version

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
        transport = self._transport(protocol)
        _, found = transport.metadata(self._route(label, version))
        if signature not in found:
            raise InvalidRequestError(
                "INVALID_ARGUMENT",
                f"model {self.model} has no signature {signature!r}; it has {', '.join(sorted(found))}",
                target=(self.rest_url if transport.protocol == "rest" else self.grpc_target) or "",
                protocol=transport.protocol,
            )
        return found[signature]

    def close(self) -> None:
        """Close the gRPC channel and this thread's REST connection."""
        for transport in (self._rest, self._grpc):
            if transport is not None:
                transport.close()

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------- helpers

    def _start(self, instances: Instances, choice: Choice) -> tuple[list[Any], RestTransport | GrpcTransport, Route]:
        """The rows to send, the protocol's transport and the route a call asks for."""
        route = self._route(choice.get("label"), choice.get("version"))
        return rows_of(instances), self._transport(choice.get("protocol")), route

    def _route(self, label: str | None, version: int | None) -> Route:
        """A version if one is asked, else the label (default: the client's); never both."""
        if label is not None and version is not None:
            raise ValueError("ask for a label or a version, not both")
        if version is not None:
            return Route(self.model, None, int(version))
        return Route(self.model, label if label is not None else self.label, None)

    def _transport(self, protocol: Protocol | None) -> RestTransport | GrpcTransport:
        if (protocol or self.protocol) == "rest":
            if self._rest is None:
                raise ValueError("this client has no rest_url; pass rest_url=... or use protocol='grpc'")
            return self._rest
        if self._grpc is None:
            raise ValueError("this client has no grpc_target; pass grpc_target=... or use protocol='rest'")
        return self._grpc

    def _answer(
        self,
        kind: type[Any],
        transport: RestTransport | GrpcTransport,
        route: Route,
        signature: str,
        answered: int | None,
        attempts: int,
        start: float,
        payload: list[Any],
    ) -> Any:
        """A ``Prediction`` or ``Classification`` of what came back, timed from ``start``."""
        key = "predictions" if kind is Prediction else "results"
        return kind(
            model=self.model,
            version=answered,
            label=route.label,
            protocol=transport.protocol,
            signature=signature,
            attempts=attempts,
            latency_s=time.perf_counter() - start,
            **{key: payload},
        )

    def _feature_dtypes(self, route: Route, transport: RestTransport | GrpcTransport) -> dict[str, str]:
        """The raw features' dtypes from the ``serving_default`` signature, asked once per client and model.

        A server that is down or slow raises as any request would; one that cannot say (no metadata API, no such
        signature, a bad label) leaves the values' types to decide, and the request itself reports what is wrong.
        """
        key = (self.model, "serving_default")
        if key in self._dtypes:
            return self._dtypes[key]
        try:
            dtypes = self.signature_inputs(label=route.label, version=route.version, protocol=transport.protocol)
        except (ServingUnavailableError, ServingTimeoutError):
            raise
        except ServingClientError as error:
            if error.code == "UNIMPLEMENTED":
                self._dtypes[key] = {}
            return {}
        self._dtypes[key] = dtypes
        return dtypes
