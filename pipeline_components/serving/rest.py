"""TF Serving's REST API (api_rest.md) over ``rest_transport``'s limited threading HTTP server.

Paths, methods and error bodies follow tensorflow_serving/model_servers/http_rest_api_handler.cc and
http_rest_api_util.cc: errors are ``{"error": "<message>"}`` with the HTTP status of the status code
(``status.http_status``). The Prometheus endpoint, when the monitoring config enables it, is on this port too.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    regression_pb2,
)

from pipeline_components.errors import ServingError
from pipeline_components.serving import inference, json_tensors, log_records, status
from pipeline_components.serving.core import ServingCore, classification_response, regression_response
from pipeline_components.serving.metrics import Metrics
from pipeline_components.serving.protos import fill_model_spec
from pipeline_components.serving.rest_transport import LimitedHandler, LimitedHTTPServer, Limits
from pipeline_components.serving.servable import Servable

PREDICTION_API = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
MODEL_STATUS_API = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:\/(metadata))?"
)
REST_API = re.compile(r"(?i)/v1/.*")


class RestServer:
    """The REST API of one model server.

    Args:
        core: the serving APIs.
        metrics: where requests are counted.
        host: the address to listen on.
        port: the port to listen on (0 picks one).
        limits: connections, requests at once, the slow-client timeout and the body size limit.
        prometheus_path: the metrics path, None when monitoring is off.
        refresh_gauges: called before the metrics are rendered.
    """

    def __init__(
        self,
        *,
        core: ServingCore,
        metrics: Metrics,
        host: str,
        port: int,
        limits: Limits,
        prometheus_path: str | None,
        refresh_gauges: Callable[[], None] | None = None,
    ) -> None:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.core = core
        self.metrics = metrics
        self.prometheus_path = prometheus_path
        self.refresh_gauges = refresh_gauges
        self.httpd = LimitedHTTPServer((host, port), handler, limits=limits)
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rest", daemon=True)
        self._thread.start()

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop accepting, close idle connections and answer the requests in progress (up to ``drain_s``)."""
        self.httpd.drain(drain_s)


class _Handler(LimitedHandler):
    server_state: RestServer

    def record_refusal(self, error: ServingError) -> None:
        self.server_state.metrics.record_request(
            model_name="", version=None, api="", entrypoint="REST", code=error.code, seconds=0.0
        )

    # --- dispatch --------------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        path = urllib.parse.urlsplit(self.path).path
        state = self.server_state
        body = self.read_body()
        if body is None:
            return
        if state.prometheus_path is not None and path == state.prometheus_path and method == "GET":
            if state.refresh_gauges is not None:
                state.refresh_gauges()
            self.send_body(200, state.metrics.render().encode(), content_type="text/plain; version=0.0.4")
            return
        if not REST_API.fullmatch(path):
            self.send_body(
                404,
                b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n",
                content_type="text/html",
            )
            return
        started = time.monotonic()
        model_name, api, version = "", "", None
        error: ServingError | None = None
        try:
            with self.request_slot():
                model_name, api, version, payload = self._process(method, path, body)
        except ServingError as failure:
            error = failure
            model_name, api, version = failure.served or (model_name, api, version)
        # Counted before the reply, as TF Serving does, so a client that has its answer sees it counted.
        state.metrics.record_request(
            model_name=model_name,
            version=version,
            api=api,
            entrypoint="REST",
            code=error.code if error else status.OK,
            seconds=time.monotonic() - started,
        )
        if error is not None:
            self.send_error_json(error)
        else:
            self.send_body(200, payload)

    def _process(self, method: str, path: str, body: bytes) -> tuple[str, str, int | None, bytes]:
        malformed = status.invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST":
            match = PREDICTION_API.fullmatch(path)
            if match is None:
                raise malformed
            name, version_text, label_text, api = match.groups()
            name, version, label = self._model_ref(name, version_text, label_text)
            api = api.lower()
            # As in TF Serving, the body is parsed before the model is looked up: bad JSON is a 400 whatever the
            # model.
            document = json_tensors.parse_body(body)
            core = self.server_state.core
            servable = core.servable(name, version, label)
            handler = {"predict": _predict, "classify": _classify, "regress": _regress}[api]
            answer, result, make_request = handler(servable, document)
            if core.request_log is not None:

                def build() -> tuple[Any, Any]:
                    spec = model_pb2.ModelSpec()
                    _name_version(spec, name, version, label)
                    return make_request(spec), _RESPONSES[api](result)

                core.request_log.log(api=api, servable=servable, signature_name=result.signature_name, build=build)
            return name, api, servable.version, json.dumps(answer, indent=1).encode()
        if method == "GET":
            match = MODEL_STATUS_API.fullmatch(path)
            if match is None:
                raise malformed
            name, version_text, label_text, subresource = match.groups()
            if not name:
                raise status.invalid_argument("Missing model name in request.")
            name, version, label = self._model_ref(name, version_text, label_text)
            if subresource:
                return name, "GetModelMetadata", *self._metadata(name, version, label)
            return name, "GetModelStatus", None, self._status(name, version, label)
        raise malformed

    @staticmethod
    def _model_ref(name: str, version_text: str | None, label_text: str | None) -> tuple[str, int | None, str | None]:
        version = None
        if version_text:
            try:
                version = int(version_text)
            except ValueError:
                raise status.invalid_argument(f"Failed to convert version: {version_text} to numeric.") from None
            if version >= 2**63:
                raise status.invalid_argument(f"Failed to convert version: {version_text} to numeric.")
        label = urllib.parse.unquote(label_text) if label_text else None
        return urllib.parse.unquote(name), version, label

    def _status(self, name: str, version: int | None, label: str | None) -> bytes:
        request = get_model_status_pb2.GetModelStatusRequest()
        _name_version(request.model_spec, name, version, label)
        response = self.server_state.core.get_model_status(request)
        return json_format.MessageToJson(response, always_print_fields_with_no_presence=True, indent=1).encode()

    def _metadata(self, name: str, version: int | None, label: str | None) -> tuple[int, bytes]:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        _name_version(request.model_spec, name, version, label)
        response = self.server_state.core.get_model_metadata(request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        options: dict[str, Any] = {"always_print_fields_with_no_presence": True, "preserving_proto_field_name": True}
        # The shape TF Serving writes (ToJsonString in http_rest_api_util.cc): the model spec, then the signature
        # def map under metadata.signature_def.
        document = {
            "model_spec": json_format.MessageToDict(response.model_spec, **options),
            "metadata": {"signature_def": json_format.MessageToDict(signature_map, **options)},
        }
        return response.model_spec.version.value, json.dumps(document, indent=1).encode()


def _name_version(spec: Any, name: str, version: int | None, label: str | None) -> None:
    """Fill a ``ModelSpec`` from a REST path: the model, and its version or label when the path names one."""
    spec.name = name
    if version is not None:
        spec.version.value = version
    elif label is not None:
        spec.version_label = label


# What TF Serving logs for a REST call: the request its handler makes of the JSON body, and the answer as the
# gRPC API's response. Each handler gives its answer, the result, and how to make the request of the path's model
# spec; the request log makes the request and the response on its own thread, and only for the requests it samples.
# A Predict's are encoded straight from its arrays (log_records: a tenth of the CPU of building their messages).


def _predict_response(result: inference.Result) -> bytes:
    spec = model_pb2.ModelSpec()
    fill_model_spec(spec, result.servable, result.signature_name)
    return log_records.predict_response(spec, result.outputs or {})


_RESPONSES = {"predict": _predict_response, "classify": classification_response, "regress": regression_response}
_Answer = tuple[dict[str, Any], inference.Result, Callable[[model_pb2.ModelSpec], Any]]


def _predict(servable: Servable, document: dict[str, Any]) -> _Answer:
    signature_name = json_tensors.signature_name_of(document)
    key = signature_name or "serving_default"
    signature = servable.signature_defs.get(key)
    if signature is None:
        raise status.invalid_argument(f'Serving signature name: "{key}" not found in signature def')
    input_types = {alias: info.dtype for alias, info in signature.inputs.items()}
    inputs, form = json_tensors.predict_inputs(document, input_types)
    result = inference.predict(servable, key, inputs)

    def make_request(spec: model_pb2.ModelSpec) -> bytes:
        spec.signature_name = signature_name
        return log_records.predict_request(spec, inputs)

    return json_tensors.predict_response(result.outputs or {}, form), result, make_request


def _examples(message: Any, document: dict[str, Any]) -> tuple[list[bytes], Callable[[model_pb2.ModelSpec], Any]]:
    """The body's serialized examples, each merged with the context (serialized messages merge when
    concatenated, as TF Serving applies it), and how to make the Classify/Regress request of them."""
    examples, context = json_tensors.classify_regress_examples(document)
    serialized = [example.SerializeToString() for example in examples]
    prefix = context.SerializeToString() if context is not None else b""

    def make_request(spec: model_pb2.ModelSpec) -> Any:
        request = message()
        request.model_spec.CopyFrom(spec)
        request.model_spec.signature_name = json_tensors.signature_name_of(document)
        target = request.input.example_list_with_context if context is not None else request.input.example_list
        if context is not None:
            target.context.ParseFromString(prefix)
        for example in serialized:
            target.examples.add().ParseFromString(example)
        return request

    return [prefix + example for example in serialized], make_request


def _classify(servable: Servable, document: dict[str, Any]) -> _Answer:
    examples, make_request = _examples(classification_pb2.ClassificationRequest, document)
    result = inference.classify(servable, json_tensors.signature_name_of(document), examples)
    return {"results": [[[label, score] for label, score in row] for row in result.classes or []]}, result, make_request


def _regress(servable: Servable, document: dict[str, Any]) -> _Answer:
    examples, make_request = _examples(regression_pb2.RegressionRequest, document)
    result = inference.regress(servable, json_tensors.signature_name_of(document), examples)
    return {"results": result.values or []}, result, make_request
