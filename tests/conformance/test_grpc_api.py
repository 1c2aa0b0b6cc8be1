"""TF Serving's gRPC services, called with the unmodified tensorflow-serving-api stubs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from tests.conformance.fixtures import MODEL_NAME
from tests.conformance.harness import ServerProcess
from tests.conformance.samples import CLASS_NAMES, NUM_CLASSES, ROWS, example, predict_request

T = TypeVar("T")


def _predict_request(version: int | None = None, label: str | None = None) -> predict_pb2.PredictRequest:
    return predict_request(MODEL_NAME, version=version, label=label, signature_name="serving_default")


def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    return raised.value.code()


@pytest.mark.parametrize(
    ("version", "label", "answered"),
    [
        pytest.param(None, None, 2, id="latest"),
        pytest.param(1, None, 1, id="version"),
        pytest.param(None, "stable", 1, id="label"),
    ],
)
def test_predict(shared_server: ServerProcess, version: int | None, label: str | None, answered: int) -> None:
    response = shared_server.prediction_stub().Predict(_predict_request(version, label), timeout=30)
    assert response.model_spec.name == MODEL_NAME
    assert response.model_spec.version.value == answered
    assert response.model_spec.signature_name == "serving_default"
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    assert probabilities.shape == (len(ROWS), NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)


def test_predict_matches_rest(shared_server: ServerProcess) -> None:
    response = shared_server.prediction_stub().Predict(_predict_request(), timeout=30)
    rest = shared_server.post(f"/v1/models/{MODEL_NAME}:predict", {"instances": ROWS}).json()["predictions"]
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), rest, rtol=1e-5)


def test_predict_output_filter(shared_server: ServerProcess) -> None:
    request = _predict_request()
    request.output_filter.append("probabilities")
    assert list(shared_server.prediction_stub().Predict(request, timeout=30).outputs) == ["probabilities"]
    request.output_filter.append("nosuchoutput")
    assert (
        _code(lambda: shared_server.prediction_stub().Predict(request, timeout=30)) == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_predict_errors(shared_server: ServerProcess) -> None:
    stub = shared_server.prediction_stub()
    unknown_model = _predict_request()
    unknown_model.model_spec.name = "nosuchmodel"
    assert _code(lambda: stub.Predict(unknown_model, timeout=30)) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: stub.Predict(_predict_request(version=999), timeout=30)) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: stub.Predict(_predict_request(label="nosuch"), timeout=30)) == grpc.StatusCode.INVALID_ARGUMENT
    missing = _predict_request()
    del missing.inputs["island"]
    assert _code(lambda: stub.Predict(missing, timeout=30)) == grpc.StatusCode.INVALID_ARGUMENT
    wrong_type = _predict_request()
    wrong_type.inputs["bill_length_mm"].CopyFrom(tf.make_tensor_proto([1, 2, 3], dtype=tf.int64))
    assert _code(lambda: stub.Predict(wrong_type, timeout=30)) == grpc.StatusCode.INVALID_ARGUMENT
    signature = _predict_request()
    signature.model_spec.signature_name = "nosuchsignature"
    assert _code(lambda: stub.Predict(signature, timeout=30)) == grpc.StatusCode.FAILED_PRECONDITION


def _examples_request(message: Callable[..., T], signature_name: str = "") -> T:
    """A Classify or Regress request for the model's latest version over every sample row as a tf.Example."""
    request = message(model_spec=model_pb2.ModelSpec(name=MODEL_NAME, signature_name=signature_name))
    request.input.example_list.examples.extend(example(row) for row in ROWS)  # type: ignore[attr-defined]
    return request


def test_classify(shared_server: ServerProcess) -> None:
    request = _examples_request(classification_pb2.ClassificationRequest, "serving_classify")
    response = shared_server.prediction_stub().Classify(request, timeout=30)
    assert response.model_spec.version.value == 2
    assert len(response.result.classifications) == len(ROWS)
    for classification in response.result.classifications:
        assert [c.label for c in classification.classes] == CLASS_NAMES
        assert sum(c.score for c in classification.classes) == pytest.approx(1.0, rel=1e-4)


def test_regress(shared_server: ServerProcess) -> None:
    request = _examples_request(regression_pb2.RegressionRequest, "serving_regress")
    response = shared_server.prediction_stub().Regress(request, timeout=30)
    assert len(response.result.regressions) == len(ROWS)
    assert all(0.0 < r.value <= 1.0 for r in response.result.regressions)


def test_classify_on_a_predict_signature_is_invalid(shared_server: ServerProcess) -> None:
    request = _examples_request(classification_pb2.ClassificationRequest)  # no signature: serving_default
    code = _code(lambda: shared_server.prediction_stub().Classify(request, timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_get_model_metadata(shared_server: ServerProcess) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL_NAME
    response = shared_server.prediction_stub().GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 2
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert signatures.signature_def["serving_default"].outputs["probabilities"].dtype == tf.float32.as_datatype_enum
    assert set(signatures.signature_def["serving_tf_example"].inputs) == {"examples"}
    bad = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["nosuchfield"])
    bad.model_spec.name = MODEL_NAME
    assert _code(lambda: shared_server.prediction_stub().GetModelMetadata(bad, timeout=30)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


def test_get_model_status(shared_server: ServerProcess) -> None:
    response = shared_server.grpc_status(MODEL_NAME)
    assert [v.version for v in response.model_version_status] == [2, 1]
    assert all(v.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE for v in response.model_version_status)
    assert all(v.status.error_code == 0 for v in response.model_version_status)
    assert _code(lambda: shared_server.grpc_status("nosuchmodel")) == grpc.StatusCode.NOT_FOUND
