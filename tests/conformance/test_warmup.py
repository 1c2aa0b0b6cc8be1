"""Warmup: ``assets.extra/tf_serving_warmup_requests`` is replayed before a version serves; a failing one fails it."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tests.conformance.harness import ServerProcess, add_version, make_base_path, wait_for
from tests.conformance.samples import columns, predict_request


def _write_warmup(version: Path, signature: str, records: int) -> None:
    folder = version / "assets.extra"
    folder.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(folder / "tf_serving_warmup_requests")) as writer:
        for _ in range(records):
            request = predict_request("m", signature_name=signature)
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def test_warmup_replayed_and_a_failing_warmup_fails_the_version(
    server_bin: str, exported_version: Path, tmp_path: Path
) -> None:
    base = make_base_path(tmp_path / "m", exported_version, {1: "good"})
    _write_warmup(base / "1", "serving_default", records=2)
    server = ServerProcess(
        server_bin,
        tmp_path,
        [
            "--model_name=m",
            f"--model_base_path={base}",
            "--enable_model_warmup=true",
            "--file_system_poll_wait_seconds=1",
            "--max_num_load_retries=0",
        ],
    )
    server.start()
    try:
        server.wait_available("m", versions={1})
        assert "Number of warmup records read: 2" in server.log()

        staged = tmp_path / "v2"
        add_version(tmp_path, exported_version, 2)  # build version 2 outside the base path first
        (tmp_path / "2").rename(staged)
        _write_warmup(staged, "nosuchsignature", records=1)
        staged.rename(base / "2")

        def failed() -> bool:
            state = server.status("m").get(2)
            return state is not None and state["state"] == "END"

        wait_for(failed, 120, "version 2 (broken warmup) to fail")
        assert server.status("m")[2]["status"]["error_code"] != "OK"
        assert server.status("m")[1]["state"] == "AVAILABLE"
        assert server.post("/v1/models/m:predict", {"inputs": columns()}).status == 200
    finally:
        server.stop()
