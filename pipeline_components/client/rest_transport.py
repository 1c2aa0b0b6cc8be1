"""TF Serving's REST API over ``http.client``: one keep-alive connection per thread, retries, typed errors."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline_components.client import results
from pipeline_components.client.results import Protocol, Route, VersionStatus
from pipeline_components.client.retries import (
    CODE_OF_HTTP,
    RETRYABLE_HTTP,
    Attempt,
    RetryPolicy,
    typed_error,
    with_retries,
)
from pipeline_components.errors import ServingClientError, ServingTimeoutError, ServingUnavailableError
from pipeline_components.serving_protos.examples import json_example

# Connection-level failures: nothing was processed, or the server went away mid-request (idempotent: retry).
_CONNECTION_ERRORS = (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError)


def model_path(route: Route, suffix: str) -> str:
    """``/v1/models/<model>[/versions/<n> | /labels/<label>]<suffix>``, names URL-quoted."""
    path = f"/v1/models/{urllib.parse.quote(route.model, safe='')}"
    if route.version is not None:
        path += f"/versions/{route.version}"
    elif route.label:
        path += f"/labels/{urllib.parse.quote(route.label, safe='')}"
    return path + suffix


class RestTransport:
    """TF Serving's REST API at one base URL.

    Each API method answers ``(what was asked, the version that answered if known, tries)``; REST's ``:predict``
    and ``:classify`` answers do not say which version answered, so that is the version asked for (or None).

    Args:
        base_url: e.g. ``http://127.0.0.1:8501`` (a path prefix is kept: ``http://lb/serving``).
        timeout_s: per attempt.
        retry: the retry policy for transient failures.
    """

    protocol: Protocol = "rest"

    def __init__(self, *, base_url: str, timeout_s: float, retry: RetryPolicy) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry = retry
        self._local = threading.local()

    # ------------------------------------------------------------------------------------------------ the API

    def predict(
        self, route: Route, signature: str, rows: Sequence[Mapping[str, Any]], dtypes: Mapping[str, str]
    ) -> tuple[list[Any], int | None, int]:
        """``:predict`` in the row form (``instances``); the server converts by the signature's dtypes."""
        del dtypes  # REST's JSON is converted by the server itself
        return self._predict(route, signature, [dict(row) for row in rows])

    def predict_examples(
        self, route: Route, signature: str, serialized: list[bytes]
    ) -> tuple[list[Any], int | None, int]:
        """``:predict`` with serialized tf.Examples as ``{"b64": ...}`` instances."""
        return self._predict(route, signature, [{"b64": base64.b64encode(data).decode()} for data in serialized])

    def _predict(self, route: Route, signature: str, instances: list[Any]) -> tuple[list[Any], int | None, int]:
        body = {"signature_name": signature, "instances": instances}
        document, attempts = self.request("POST", model_path(route, ":predict"), body)
        return document.get("predictions", []), route.version, attempts

    def classify(
        self, route: Route, signature: str, rows: Sequence[Mapping[str, Any]], dtypes: Mapping[str, str]
    ) -> tuple[list[list[tuple[str, float]]], int | None, int]:
        """``:classify``; JSON examples are typed by their JSON form (10 -> int64), so rows follow the dtypes."""
        body = {"signature_name": signature, "examples": [json_example(row, dtypes) for row in rows]}
        document, attempts = self.request("POST", model_path(route, ":classify"), body)
        return results.classes_of_rest(document), route.version, attempts

    def status(self, route: Route) -> list[VersionStatus]:
        """``GET /v1/models/<model>[...]``: the versions and their states."""
        document, _ = self.request("GET", model_path(route, ""), None)
        return results.statuses_of_rest(document)

    def metadata(self, route: Route) -> tuple[int | None, dict[str, dict[str, str]]]:
        """``GET .../metadata``: (the version that answered, signature -> input -> dtype name)."""
        document, _ = self.request("GET", model_path(route, "/metadata"), None)
        version = document.get("model_spec", {}).get("version")
        return (None if version is None else int(version)), results.signature_inputs_of_rest(document)

    # ------------------------------------------------------------------------------------------ the transport

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            parsed = urllib.parse.urlsplit(self.base_url)
            cls = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
            connection = cls(parsed.hostname or "127.0.0.1", parsed.port, timeout=self.timeout_s)
            self._local.connection = connection
        return connection

    def close(self) -> None:
        """Close this thread's connection (the next request opens a new one)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[dict[str, Any], int]:
        """Send ``method path`` with a JSON body (None: no body), retrying transient failures.

        Returns:
            (the JSON answer, the number of tries).

        Raises:
            ServingClientError: see ``retries``.
        """
        data = None if body is None else json.dumps(body).encode()
        target = self.base_url + path
        prefix = urllib.parse.urlsplit(self.base_url).path.rstrip("/")

        def once() -> tuple[dict[str, Any] | None, Attempt]:
            headers = {"Content-Type": "application/json"} if data is not None else {}
            try:
                connection = self._connection()
                connection.request(method, prefix + path, body=data, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                if response.will_close:
                    self.close()
            except TimeoutError:
                self.close()
                text = (
                    f"{method} {target}: no answer within {self.timeout_s:g} s; the server may be overloaded "
                    "(raise timeout_s, or send smaller batches)"
                )
                return None, Attempt(
                    error=ServingTimeoutError("DEADLINE_EXCEEDED", text, target=target, protocol="rest")
                )
            except (*_CONNECTION_ERRORS, OSError) as error:
                self.close()
                text = f"{method} {target}: {type(error).__name__}: {error}; is the fleet up (`runway fleet status`)?"
                unavailable = ServingUnavailableError("UNAVAILABLE", text, target=target, protocol="rest")
                return None, Attempt(error=unavailable, retryable=True)
            if 200 <= response.status < 300:
                try:
                    return json.loads(raw or b"{}"), Attempt()
                except json.JSONDecodeError:
                    text = f"{method} {target}: answer is not JSON: {raw[:200]!r}"
                    return None, Attempt(error=ServingClientError("INTERNAL", text, target=target))
            return None, _http_error(method, target, response.status, raw)

        return with_retries(once, self.retry)


def _http_error(method: str, target: str, http_status: int, raw: bytes) -> Attempt:
    """A non-2xx answer as a typed error, with the server's own message (TF Serving's ``{"error": ...}``)."""
    try:
        message = str(json.loads(raw).get("error", "")) or raw.decode(errors="replace")[:300]
    except (json.JSONDecodeError, AttributeError):
        message = raw.decode(errors="replace").strip()[:300] or f"HTTP {http_status}"
    code = CODE_OF_HTTP.get(http_status, "UNKNOWN")
    text = f"{method} {target}: HTTP {http_status}: {message}"
    return Attempt(
        error=typed_error(code, text, target=target, protocol="rest", http_status=http_status),
        retryable=http_status in RETRYABLE_HTTP,
    )
