"""TF Serving's JSON tensor encoding (json_tensor.cc): shapes, types, b64, row and columnar forms."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2

from pipeline_components.errors import ServingError
from pipeline_components.serving import json_tensors

F, S, I64 = types_pb2.DT_FLOAT, types_pb2.DT_STRING, types_pb2.DT_INT64


def test_row_form_batches_named_instances() -> None:
    inputs, form = json_tensors.predict_inputs(
        {"instances": [{"a": 1.5, "s": "x"}, {"a": 2, "s": {"b64": "eQ=="}}]}, {"a": F, "s": S}
    )
    assert form == "row"
    np.testing.assert_array_equal(inputs["a"], np.array([1.5, 2.0], np.float32))
    assert list(inputs["s"]) == [b"x", b"y"]


def test_columnar_form_keeps_shapes() -> None:
    inputs, form = json_tensors.predict_inputs({"inputs": {"a": [[1, 2], [3, 4]]}}, {"a": I64})
    assert form == "columnar"
    assert inputs["a"].shape == (2, 2) and inputs["a"].dtype == np.int64


@pytest.mark.parametrize(
    ("document", "types", "message"),
    [
        pytest.param({"instances": [[1, 2], [3]]}, {"a": F}, "Expecting tensor size", id="ragged-instances"),
        pytest.param({"inputs": [[1, 2], 3]}, {"a": F}, "found at incorrect level", id="ragged-inputs"),
        pytest.param({"inputs": [1.5]}, {"a": I64}, "is not of expected type: int64", id="float-for-int"),
        pytest.param({"inputs": [True]}, {"a": F}, "is not of expected type: float", id="bool-for-float"),
        pytest.param({"inputs": [{"b64": "!!"}]}, {"a": S}, "Unable to base64 decode", id="bad-b64"),
        pytest.param({"instances": [1]}, {"a": F, "b": F}, "plain list", id="plain-list-many-inputs"),
        pytest.param({}, {"a": F}, "Missing 'inputs' or 'instances' key", id="no-key"),
    ],
)
def test_refused(document: dict, types: dict[str, int], message: str) -> None:
    with pytest.raises(ServingError, match=message) as raised:
        json_tensors.predict_inputs(document, types)
    assert raised.value.code == "INVALID_ARGUMENT"


def test_responses() -> None:
    outputs = {"p": np.array([[0.1, 0.9]], np.float32), "id_bytes": np.array([b"\x00"], dtype=object)}
    assert json_tensors.predict_response(outputs, "row") == {
        "predictions": [{"id_bytes": {"b64": "AA=="}, "p": [0.1, 0.9]}]
    }
    assert json_tensors.predict_response({"p": outputs["p"]}, "columnar") == {"outputs": [[0.1, 0.9]]}


def test_examples_from_json() -> None:
    example = json_tensors.json_to_example({"f": 1.5, "i": [1, 2], "s": "x", "b": {"b64": "eQ=="}})
    features = example.features.feature
    assert list(features["f"].float_list.value) == [1.5]
    assert list(features["i"].int64_list.value) == [1, 2]
    assert list(features["s"].bytes_list.value) == [b"x"]
    assert list(features["b"].bytes_list.value) == [b"y"]
    with pytest.raises(ServingError, match="Unexpected element type"):
        json_tensors.json_to_example({"mixed": [1, "x"]})
