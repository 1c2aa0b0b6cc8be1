"""Request log records joined from serialized parts are the records the protobuf message API makes, and cheaper.

The reference is how the request log's writer made a record before ``log_records``: TensorProtos from
``protos.array_to_tensor`` copied into a ``PredictRequest``, request and response copied into a ``PredictionLog``.
The requests are real December flights (``tests/fleet/data/flights_span_12_sample.csv``) decoded from their JSON
body by the server's own ``json_tensors``, with the flights model's 20 serving inputs.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
from tensorflow_serving.config import logging_config_pb2

from pipeline_components.serving import json_tensors, log_records, request_log, rest
from pipeline_components.serving.metrics import Metrics
from pipeline_components.serving.model_config import parse_model_server_config
from pipeline_components.serving.protos import array_to_tensor
from pipeline_components.serving.request_log import RequestLogger, RequestLogOptions
from pipeline_components.serving.request_log_reader import closed_files, read_prediction_logs
from pipeline_components.serving.servable import Servable
from tests.fleet.tiny_models import FLIGHTS_INPUTS, save_flights_shaped

SAMPLE = Path(__file__).parents[2] / "fleet" / "data" / "flights_span_12_sample.csv"
TEXT = ("carrier", "origin", "dest", "month_name")
INPUT_TYPES = {name: dtype.as_datatype_enum for name, dtype in FLIGHTS_INPUTS.items()}


def _rows() -> list[dict[str, Any]]:
    """The sample's flights as a client sends them (the flights model's serving inputs)."""

    def value(name: str, text: str) -> Any:
        return text if name in TEXT else float(text) if INPUT_TYPES[name] == tf.float32 else int(float(text))

    with SAMPLE.open(newline="") as handle:
        return [{k: value(k, v) for k, v in row.items() if k in INPUT_TYPES} for row in csv.DictReader(handle)]


def _flights(batch: int) -> list[dict[str, np.ndarray]]:
    """The sample's flights as the server decodes a REST predict body of ``batch`` rows (row form)."""
    rows = _rows()
    bodies = [json.dumps({"instances": rows[i : i + batch]}).encode() for i in range(0, len(rows), batch)]
    return [json_tensors.predict_inputs(json_tensors.parse_body(body), INPUT_TYPES)[0] for body in bodies]


def _spec(signature_name: str) -> model_pb2.ModelSpec:
    return model_pb2.ModelSpec(name="flights_delay", signature_name=signature_name)


def _message_record(
    inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray], timestamp: int, version: int = 7
) -> Any:
    """A PredictionLog made with the message API, as the writer made it before log_records."""
    request = predict_pb2.PredictRequest()
    request.model_spec.CopyFrom(_spec(""))
    for alias, array in inputs.items():
        request.inputs[alias].CopyFrom(array_to_tensor(array))
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(_spec("serving_default"))
    response.model_spec.version.value = version
    for alias, array in outputs.items():
        response.outputs[alias].CopyFrom(array_to_tensor(array))
    record = prediction_log_pb2.PredictionLog()
    metadata = record.log_metadata
    metadata.model_spec.CopyFrom(_spec("serving_default"))
    metadata.model_spec.version.value = version
    metadata.sampling_config.sampling_rate = 1.0
    metadata.saved_model_tags.append("serve")
    metadata.timestamp_secs = timestamp
    record.predict_log.request.CopyFrom(request)
    record.predict_log.response.CopyFrom(response)
    return record


def _joined_record(inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray], timestamp: int) -> bytes:
    """The same record as the writer makes it now."""
    answered = _spec("serving_default")
    answered.version.value = 7
    sampling = logging_config_pb2.SamplingConfig(sampling_rate=1.0).SerializeToString()
    return log_records.prediction_log(
        metadata=log_records.metadata_without_time("flights_delay", 7, "serving_default", sampling, ("serve",)),
        timestamp_secs=timestamp,
        log_field="predict_log",
        request=log_records.predict_request(_spec(""), inputs),
        response=log_records.predict_response(answered, outputs),
    )


ARRAYS = [
    pytest.param(np.array(0.5, np.float32), id="float32-scalar"),
    pytest.param(np.array([-1.25], np.float32), id="float32-one"),
    pytest.param(np.array([[1.0, float("inf")], [-0.0, 3.5]], np.float32), id="float32-packed"),
    pytest.param(np.zeros((0, 3), np.float32), id="float32-empty"),
    pytest.param(np.array([1e300], np.float64), id="float64-one"),
    pytest.param(np.array([1.5, 2.5], np.float64), id="float64-packed"),
    pytest.param(np.array([-7], np.int32), id="int32-negative"),
    pytest.param(np.array([0], np.int64), id="int64-zero"),
    pytest.param(np.array([2**63 - 1], np.int64), id="int64-max"),
    pytest.param(np.array([-(2**40)], np.int64), id="int64-negative"),
    pytest.param(np.array([[3], [4]], np.int64), id="int64-packed"),
    pytest.param(np.array([True, False, True]), id="bool-field"),
    pytest.param(np.array([b"JFK"], object), id="string-one"),
    pytest.param(np.array([[b"", "É".encode()], [b"x" * 200, b"B6"]], object), id="string-long-and-empty"),
    pytest.param(np.array([1.0, 2.0], np.float16), id="half-through-array_to_tensor"),
    pytest.param(np.array([255], np.uint8), id="uint8-through-array_to_tensor"),
    pytest.param(np.array([1.5], ">f4"), id="big-endian-through-array_to_tensor"),
    pytest.param(np.array(["text"], object), id="str-items-through-array_to_tensor"),
]


@pytest.mark.parametrize("array", ARRAYS)
def test_a_tensor_is_byte_for_byte_what_array_to_tensor_serializes(array: np.ndarray) -> None:
    assert log_records.tensor(array) == array_to_tensor(array).SerializeToString()


@pytest.mark.parametrize("batch", [pytest.param(1, id="batch-1"), pytest.param(8, id="batch-8")])
def test_a_rest_predict_record_is_the_prediction_log_the_message_api_makes(batch: int) -> None:
    for inputs in _flights(batch):
        outputs = {"probabilities": np.full((len(inputs["distance"]), 1), 0.25, np.float32)}
        joined = _joined_record(inputs, outputs, timestamp=1_790_000_000)
        expected = _message_record(inputs, outputs, timestamp=1_790_000_000)
        assert prediction_log_pb2.PredictionLog.FromString(joined) == expected
        # Map entries in key order: the same request gives the same bytes whatever the order of its JSON keys.
        assert _joined_record(dict(reversed(inputs.items())), outputs, timestamp=1_790_000_000) == joined


def test_a_message_is_serialized_deterministically_and_bytes_pass_through() -> None:
    request = predict_pb2.PredictRequest()
    for name in ("b", "a", "c"):
        request.inputs[name].CopyFrom(array_to_tensor(np.array([1.0], np.float32)))
    assert log_records.serialized(request) == request.SerializeToString(deterministic=True)
    assert log_records.serialized(b"\x0a\x00") == b"\x0a\x00"


def _cpu_us(make: Callable[[], Any], repeat: int = 200) -> float:
    """Median CPU time of one call, over rounds (thread CPU time: what other processes do does not count)."""
    rounds = []
    for _ in range(7):
        started = time.thread_time()
        for _ in range(repeat):
            make()
        rounds.append((time.thread_time() - started) / repeat * 1e6)
    return statistics.median(rounds)


@pytest.fixture(scope="module")
def flights_model(tmp_path_factory: pytest.TempPathFactory) -> Servable:
    path = save_flights_shaped(tmp_path_factory.mktemp("flights") / "1")
    return Servable.load(name="flights_delay", version=1, path=path)


def test_a_logged_rest_predict_reads_back_as_its_prediction_log_at_a_fraction_of_the_cost(
    flights_model: Servable, tmp_path: Path
) -> None:
    """Through the REST handler and the writer: what made REST logging miss issue 20's 5 % p99 goal was ~130 us of
    writer CPU per flights request, as much as making the record with the message API (now about a quarter)."""
    config = parse_model_server_config(
        f'model_config_list {{ config {{ name: "flights_delay" base_path: "{tmp_path}" logging_config {{ '
        f'log_collector_config {{ filename_prefix: "{tmp_path / "logs" / "flights"}" }} '
        "sampling_config { sampling_rate: 1.0 } } } }"
    )
    logger = RequestLogger(metrics=Metrics(), options=RequestLogOptions())
    logger.check(config)
    logger.apply(config)
    offered: list[dict[str, Any]] = []
    handler = object.__new__(rest._Handler)  # the handler's request processing, without a socket
    handler.server_state = SimpleNamespace(  # type: ignore[assignment]
        core=SimpleNamespace(
            servable=lambda *_ref: flights_model, request_log=SimpleNamespace(log=lambda **kw: offered.append(kw))
        )
    )
    body = json.dumps({"instances": [_rows()[0]]}).encode()
    handler._process("POST", "/v1/models/flights_delay:predict", body)
    sampling = config.model_config_list.config[0].logging_config.sampling_config
    record = request_log._Record(  # what RequestLogger.log queues for this request
        prefix=str(tmp_path / "logs" / "flights"),
        api="predict",
        model_name="flights_delay",
        version=1,
        signature_name="serving_default",
        sampling=sampling,
        timestamp_secs=1_790_000_000,
        build=offered[0]["build"],
    )
    try:
        logger._write(record)
        assert logger.flush()
        (read,) = read_prediction_logs(closed_files(tmp_path / "logs" / "flights"))  # the reader's own class
        logged = prediction_log_pb2.PredictionLog.FromString(read.SerializeToString())
        inputs = json_tensors.predict_inputs(json_tensors.parse_body(body), INPUT_TYPES)[0]
        answered = logged.predict_log.response.outputs["probabilities"].float_val[0]
        outputs = {"probabilities": np.array([[answered]], np.float32)}
        expected = _message_record(inputs, outputs, 1_790_000_000, version=1)
        assert logged == expected

        writer = _cpu_us(lambda: logger._write(record))
        messages = _cpu_us(lambda: _message_record(inputs, outputs, 1_790_000_000).SerializeToString())
        assert writer < 0.5 * messages, f"the writer took {writer:.1f} us a record, the message API {messages:.1f} us"
    finally:
        logger.stop()
