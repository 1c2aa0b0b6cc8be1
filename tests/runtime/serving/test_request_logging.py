"""Request logging on a real model server: sampled requests and answers as PredictionLog files, read back.

One server is started in this process (it imports TensorFlow once) with a tiny real SavedModel that answers
Predict, Classify and Regress, served as three models whose model config says how each is logged.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from pipeline_components.ports import free_ports
from pipeline_components.serving.flags import parse_flags
from pipeline_components.serving.metrics import Metrics
from pipeline_components.serving.model_config import parse_model_server_config
from pipeline_components.serving.request_log import RequestLogger, RequestLogOptions
from pipeline_components.serving.request_log_reader import closed_files, read_prediction_logs, read_rows
from pipeline_components.serving.servable import Servable
from pipeline_components.serving.server import ModelServer
from tests.fleet.tiny_models import Tiny

QUEUE_SIZE = 8
FILE_SECONDS = 1


class TinyWithExamples(Tiny):
    """The fleet's tiny model (``y = w * x + n``) with Classify and Regress signatures over tf.Examples."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        x = tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([], tf.float32)})["x"]
        score = tf.sigmoid(self.w * x)
        count = tf.shape(x)[0]
        return {
            "classes": tf.tile(tf.constant([["late", "on_time"]]), [count, 1]),
            "scores": tf.stack([score, 1.0 - score], axis=1),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        x = tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([], tf.float32)})["x"]
        return {"outputs": self.w * x}


def _config(base: Path, logs: Path, *, later_logged: bool = False, later_type: str = "tfrecord") -> str:
    def model(name: str, logging: str) -> str:
        return f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" {logging} }}'

    def logging(name: str, rate: float, kind: str = "tfrecord") -> str:
        return (
            f'logging_config {{ log_collector_config {{ type: "{kind}" filename_prefix: "{logs / name}" }} '
            f"sampling_config {{ sampling_rate: {rate} }} }}"
        )

    models = [
        model("tiny", logging("tiny", 1.0)),
        model("quiet", logging("quiet", 0.0)),
        model("later", logging("later", 1.0, later_type) if later_logged else ""),
    ]
    return "model_config_list { " + " ".join(models) + " }"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    root = tmp_path_factory.mktemp("request_logging")
    module = TinyWithExamples(2.0)
    tf.saved_model.save(
        module,
        str(root / "models" / "1"),
        signatures={"serving_default": module.serve, "classify": module.classify, "regress": module.regress},
    )
    (root / "models.config").write_text(_config(root / "models", root / "logs"))
    (rest_port,) = free_ports(1)
    flags = parse_flags(
        [
            "--port=0",
            f"--rest_api_port={rest_port}",
            f"--model_config_file={root / 'models.config'}",
            "--file_system_poll_wait_seconds=0",
            "--enable_model_warmup=false",
            f"--runway_request_log_queue_size={QUEUE_SIZE}",
            f"--runway_request_log_max_file_seconds={FILE_SECONDS}",
        ]
    )
    model_server = ModelServer(flags)
    model_server.start()
    yield model_server
    model_server.stop()


def _logs(server: ModelServer) -> Path:
    return Path(server.flags.model_config_file).parent / "logs"


def _rest(server: ModelServer, model: str, verb: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.rest_port}/v1/models/{model}:{verb}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _stub(server: ModelServer, kind: Callable[[grpc.Channel], Any]) -> Any:
    return kind(grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))


def _examples_request(message: Any, model: str, signature: str, xs: list[float]) -> Any:
    request = message()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for x in xs:
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(x)
    return request


def _metric(server: ModelServer, model: str, outcome: str) -> float:
    wanted = f'runway_serving_request_log_count{{model_name="{model}",version="1",outcome="{outcome}"}} '
    for line in server.metrics.render().splitlines():
        if line.startswith(wanted):
            return float(line.split()[-1])
    return 0.0


def _wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_rate_one_logs_every_request_and_answer_of_both_apis(server: ModelServer) -> None:
    prefix = _logs(server) / "tiny"
    assert _rest(server, "tiny", "predict", {"instances": [{"x": 0.5, "n": 1}, {"x": 1.5, "n": 2}]}) == {
        "predictions": [2.0, 5.0]
    }
    grpc_predict = predict_pb2.PredictRequest()
    grpc_predict.model_spec.name = "tiny"
    grpc_predict.inputs["x"].CopyFrom(tf.make_tensor_proto([3.0], tf.float32))
    grpc_predict.inputs["n"].CopyFrom(tf.make_tensor_proto([4], tf.int64))
    prediction = _stub(server, prediction_service_pb2_grpc.PredictionServiceStub)
    assert list(prediction.Predict(grpc_predict, timeout=30).outputs["y"].float_val) == [10.0]
    classified = prediction.Classify(
        _examples_request(classification_pb2.ClassificationRequest, "tiny", "classify", [0.0]), timeout=30
    )
    assert [c.label for c in classified.result.classifications[0].classes] == ["late", "on_time"]
    assert _rest(server, "tiny", "regress", {"signature_name": "regress", "examples": [{"x": 1.25}]}) == {
        "results": [2.5]
    }
    regressed = prediction.Regress(
        _examples_request(regression_pb2.RegressionRequest, "tiny", "regress", [0.75]), timeout=30
    )
    assert [r.value for r in regressed.result.regressions] == [1.5]
    assert _rest(server, "tiny", "classify", {"signature_name": "classify", "examples": [{"x": 0.0}]}) == {
        "results": [[["late", 0.5], ["on_time", 0.5]]]
    }

    # No flush: the time rotation closes the file (renamed *.tfrecord) about FILE_SECONDS after it was opened.
    files = _wait_for(lambda: closed_files(prefix), FILE_SECONDS + 10, "a closed request log file")
    rows = _wait_for(
        lambda: len(read_rows(closed_files(prefix))) == 7 and read_rows(closed_files(prefix)), 10, "7 rows"
    )
    assert all((r.model_name, r.version) == ("tiny", 1) for r in rows)
    assert [(r.api, r.signature_name, r.features, r.predictions) for r in rows] == [
        ("predict", "serving_default", {"x": 0.5, "n": 1}, {"y": 2.0}),
        ("predict", "serving_default", {"x": 1.5, "n": 2}, {"y": 5.0}),
        ("predict", "serving_default", {"x": 3.0, "n": 4}, {"y": 10.0}),
        ("classify", "classify", {"x": 0.0}, {"classes": ["late", "on_time"], "scores": [0.5, 0.5]}),
        ("regress", "regress", {"x": 1.25}, {"value": 2.5}),
        ("regress", "regress", {"x": 0.75}, {"value": 1.5}),
        ("classify", "classify", {"x": 0.0}, {"classes": ["late", "on_time"], "scores": [0.5, 0.5]}),
    ]
    records = list(read_prediction_logs(files))
    assert {r.log_metadata.sampling_config.sampling_rate for r in records} == {1.0}
    assert all(list(r.log_metadata.saved_model_tags) == ["serve"] for r in records)
    assert records[0].predict_log.request.model_spec.name == "tiny"  # the request as sent, the answer as given
    assert records[0].predict_log.response.model_spec.version.value == 1
    assert _metric(server, "tiny", "logged") == 6
    assert "runway_serving_request_log_bytes" in server.metrics.render()
    assert not list(prefix.parent.glob("*.partial"))


def test_rate_zero_logs_nothing(server: ModelServer) -> None:
    for i in range(20):
        assert _rest(server, "quiet", "predict", {"instances": [{"x": float(i), "n": i}]})["predictions"]
    assert server.request_log.flush()
    assert closed_files(_logs(server) / "quiet") == []
    assert _metric(server, "quiet", "logged") == 0


def test_a_full_queue_drops_and_counts_without_slowing_a_request(
    server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    write = server.request_log._write
    monkeypatch.setattr(server.request_log, "_write", lambda record: release.wait(60) and write(record))
    logged, dropped = _metric(server, "tiny", "logged"), _metric(server, "tiny", "dropped")
    sent = 3 * QUEUE_SIZE
    slowest = 0.0
    try:
        for i in range(sent):
            started = time.monotonic()
            assert _rest(server, "tiny", "predict", {"instances": [{"x": float(i), "n": i}]}) == {
                "predictions": [2.0 * i + i]
            }
            slowest = max(slowest, time.monotonic() - started)
        # The writer holds one record and the queue QUEUE_SIZE more: every other one was dropped, not waited for.
        assert _metric(server, "tiny", "dropped") - dropped >= sent - QUEUE_SIZE - 1
        assert slowest < 2.0, f"a request took {slowest:.2f} s while the request log's writer was blocked"
    finally:
        release.set()
    assert server.request_log.flush()
    now_logged = _metric(server, "tiny", "logged") - logged
    assert now_logged + _metric(server, "tiny", "dropped") - dropped == sent


def test_a_config_reload_turns_logging_on(server: ModelServer) -> None:
    root = Path(server.flags.model_config_file).parent
    models = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))

    def reload(text: str) -> model_management_pb2.ReloadConfigResponse:
        request = model_management_pb2.ReloadConfigRequest()
        request.config.CopyFrom(parse_model_server_config(text))
        return models.HandleReloadConfigRequest(request, timeout=30)

    assert _rest(server, "later", "predict", {"instances": [{"x": 1.0, "n": 1}]}) == {"predictions": [3.0]}
    assert server.request_log.flush()
    assert closed_files(root / "logs" / "later") == []

    with pytest.raises(grpc.RpcError) as refused:
        reload(_config(root / "models", root / "logs", later_logged=True, later_type="bigquery"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 'use type "tfrecord"' in str(refused.value.details())

    assert reload(_config(root / "models", root / "logs", later_logged=True)).status.error_code == 0
    assert _rest(server, "later", "predict", {"instances": [{"x": 2.0, "n": 1}]}) == {"predictions": [5.0]}
    assert server.request_log.flush()
    rows = read_rows(closed_files(root / "logs" / "later"))
    assert [(r.model_name, r.version, r.features, r.predictions) for r in rows] == [
        ("later", 1, {"x": 2.0, "n": 1}, {"y": 5.0})
    ]
    assert isinstance(server.manager.config(), model_server_config_pb2.ModelServerConfig)


def test_files_rotate_by_size_and_an_open_file_is_never_read(tmp_path: Path) -> None:
    def logger(max_file_bytes: int) -> RequestLogger:
        request_log = RequestLogger(
            metrics=Metrics(), options=RequestLogOptions(max_file_bytes=max_file_bytes, max_file_seconds=3600)
        )
        config = parse_model_server_config(_config(tmp_path / "models", tmp_path / f"logs-{max_file_bytes}"))
        request_log.check(config)
        request_log.apply(config)
        return request_log

    def log(request_log: RequestLogger, x: float) -> None:
        request = predict_pb2.PredictRequest()
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([x], tf.float32))
        response = predict_pb2.PredictResponse()
        response.outputs["y"].CopyFrom(tf.make_tensor_proto([2 * x], tf.float32))
        servable = Servable(name="tiny", version=7, path=tmp_path, signature_defs={}, loaded=None)
        request_log.log(api="predict", servable=servable, signature_name="s", build=lambda: (request, response))

    small = logger(max_file_bytes=1)  # every record fills its file
    for x in (1.0, 2.0, 3.0):
        log(small, x)
    files = _wait_for(lambda: len(closed_files(tmp_path / "logs-1" / "tiny")) == 3, 10, "three closed files")
    assert files
    rows = read_rows(closed_files(tmp_path / "logs-1" / "tiny"))
    assert [(r.version, r.features, r.predictions) for r in rows] == [
        (7, {"x": x}, {"y": 2 * x}) for x in (1.0, 2.0, 3.0)
    ]
    small.stop()

    large = logger(max_file_bytes=1 << 30)
    log(large, 4.0)
    folder = tmp_path / f"logs-{1 << 30}"
    _wait_for(lambda: list(folder.glob("tiny-*.tfrecord.partial")), 10, "the open file")
    assert closed_files(folder / "tiny") == []  # still being written: not for readers yet
    assert large.flush()
    assert [r.features for r in read_rows(closed_files(folder / "tiny"))] == [{"x": 4.0}]
    large.stop()


def test_records_logged_together_wake_the_writer_once_and_are_all_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wake-up per record (a system call on the request thread, a GIL hand-over) was most of what REST logging
    cost the request threads; a burst of records now wakes the writer once and still loses none."""
    request_log = RequestLogger(metrics=Metrics(), options=RequestLogOptions(max_file_seconds=3600))
    config = parse_model_server_config(_config(tmp_path / "models", tmp_path / "logs"))
    request_log.check(config)
    request_log.apply(config)
    assert request_log.flush()  # the writer is idle, waiting for the next record
    wakes = []
    wake = request_log._wake
    monkeypatch.setattr(wake, "set", lambda: wakes.append(1) or threading.Event.set(wake))
    request = predict_pb2.PredictRequest()
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0], tf.float32))
    response = predict_pb2.PredictResponse()
    response.outputs["y"].CopyFrom(tf.make_tensor_proto([2.0], tf.float32))
    servable = Servable(name="tiny", version=3, path=tmp_path, signature_defs={}, loaded=None)
    for _ in range(50):
        request_log.log(api="predict", servable=servable, signature_name="s", build=lambda: (request, response))
    assert len(wakes) == 1
    assert request_log.flush()
    rows = read_rows(closed_files(tmp_path / "logs" / "tiny"))
    assert [(r.version, r.features, r.predictions) for r in rows] == [(3, {"x": 1.0}, {"y": 2.0})] * 50
    request_log.stop()
