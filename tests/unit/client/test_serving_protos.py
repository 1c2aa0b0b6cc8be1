"""The vendored TF Serving protos: built without TensorFlow, wire-compatible, tensors round-trip without NumPy."""

from __future__ import annotations

import sys

import pytest
from google.protobuf import text_format

from pipeline_components import serving_protos as sp


def test_messages_build_without_tensorflow_or_tensorflow_serving() -> None:
    request = sp.PredictRequest()
    request.model_spec.name = "flights_delay"
    request.model_spec.version_label = "stable"
    assert "tensorflow_serving" not in sys.modules  # the real stubs are not needed
    again = sp.message("tensorflow.serving.PredictRequest").FromString(request.SerializeToString())
    assert again.model_spec.version_label == "stable"


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        pytest.param([[1.5], [2.0]], None, [[1.5], [2.0]], id="float-matrix"),
        pytest.param([1, 2, 3], None, [1, 2, 3], id="int64"),
        pytest.param(["JFK", "LGA"], None, [b"JFK", b"LGA"], id="string"),
        pytest.param([2008, 1999], "DT_FLOAT", [2008.0, 1999.0], id="ints-as-float"),
        pytest.param(7, "DT_INT64", 7, id="scalar"),
    ],
)
def test_tensors_round_trip(values: object, dtype: str | None, expected: object) -> None:
    assert sp.tensor_to_list(sp.make_tensor_proto(values, dtype=dtype)) == expected


def test_packed_tensor_content_and_fill_shorthand_decode() -> None:
    import struct

    packed = sp.TensorProto(dtype=sp.DTYPES["DT_FLOAT"][0], tensor_content=struct.pack("<4f", 1, 2, 3, 4))
    packed.tensor_shape.dim.add().size = 2
    packed.tensor_shape.dim.add().size = 2
    assert sp.tensor_to_list(packed) == [[1.0, 2.0], [3.0, 4.0]]
    filled = sp.TensorProto(dtype=sp.DTYPES["DT_INT64"][0], int64_val=[5])
    filled.tensor_shape.dim.add().size = 3
    assert sp.tensor_to_list(filled) == [5, 5, 5]


def test_ragged_rows_and_unconvertible_values_are_refused() -> None:
    with pytest.raises(sp.EncodingError, match="same shape"):
        sp.make_tensor_proto([[1.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="DT_FLOAT"):
        sp.make_tensor_proto(["far"], dtype="DT_FLOAT")
    with pytest.raises(sp.EncodingError, match="out of range for DT_UINT8"):
        sp.make_tensor_proto([256], dtype="DT_UINT8")
    with pytest.raises(sp.EncodingError, match="not supported"):
        sp.make_tensor_proto([1], dtype="DT_COMPLEX64")


def test_a_tensor_with_more_values_than_its_shape_is_refused_and_an_empty_one_is_zeros() -> None:
    crowded = sp.TensorProto(dtype=sp.DTYPES["DT_FLOAT"][0], float_val=[1, 2, 3])
    crowded.tensor_shape.dim.add().size = 2
    with pytest.raises(sp.EncodingError, match="3 values, more than it holds"):
        sp.tensor_to_list(crowded)
    empty = sp.TensorProto(dtype=sp.DTYPES["DT_STRING"][0])
    empty.tensor_shape.dim.add().size = 2
    assert sp.tensor_to_list(empty) == [b"", b""]


def test_a_dtype_is_named_either_way() -> None:
    by_name = sp.make_tensor_proto([1, 2], dtype="DT_FLOAT")
    by_number = sp.make_tensor_proto([1, 2], dtype=1)
    assert by_name == by_number and list(by_name.float_val) == [1.0, 2.0]


def test_examples_follow_the_signature_dtypes_when_given() -> None:
    example = sp.make_example({"precip": 0, "year": 2008.0, "carrier": "B6", "known": True}, {
        "precip": "DT_FLOAT", "year": "DT_INT64", "carrier": "DT_STRING", "known": "DT_INT64",
    })  # fmt: skip
    features = example.features.feature
    assert list(features["precip"].float_list.value) == [0.0]
    assert list(features["year"].int64_list.value) == [2008]
    assert list(features["carrier"].bytes_list.value) == [b"B6"]
    assert list(features["known"].int64_list.value) == [1]
    with pytest.raises(sp.EncodingError, match="feature 'year'"):
        sp.make_example({"year": "soon"}, {"year": "DT_INT64"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            {"mixed": [1, "x"]}, "Unexpected element type in feature: mixed expecting type: int64", id="mixed"
        ),
        pytest.param({"n": None}, "Feature: n has element with unexpected JSON type: Null", id="null"),
        pytest.param({"big": 2**63}, "Feature: big has uint64_t element", id="uint64"),
        pytest.param({"b": {"b64": "!!"}}, "Unable to base64 decode", id="bad-b64"),
        pytest.param([1], "Example must be JSON object but got JSON Array", id="not-an-object"),
    ],
)
def test_json_examples_are_refused_with_tf_servings_messages(value: object, message: str) -> None:
    with pytest.raises(sp.EncodingError) as raised:
        sp.json_to_example(value)
    assert message in str(raised.value)


def test_json_examples_are_typed_by_their_json_form() -> None:
    example = sp.json_to_example({"f": 1.5, "i": [1, 2], "s": "x", "b": {"b64": "eQ=="}, "t": True})
    features = example.features.feature
    assert list(features["f"].float_list.value) == [1.5]
    assert list(features["i"].int64_list.value) == [1, 2]
    assert list(features["s"].bytes_list.value) == [b"x"]
    assert list(features["b"].bytes_list.value) == [b"y"]
    assert list(features["t"].int64_list.value) == [1]


def test_a_rest_json_example_encodes_as_the_grpc_example_of_the_same_row() -> None:
    from pipeline_components.serving_protos.examples import json_example

    row = {"distance": 1617, "plane_year": 2008.0, "carrier": "B6"}
    dtypes = {"distance": "DT_FLOAT", "plane_year": "DT_INT64", "carrier": "DT_STRING"}
    assert sp.json_to_example(json_example(row, dtypes)) == sp.make_example(row, dtypes)


def test_the_fleet_builds_its_verification_request_with_the_same_encoder() -> None:
    from pipeline_components.fleet import protos

    ours = protos.predict_request(
        "tiny", {"x": [1.0], "n": [0]}, {"x": protos.DT_FLOAT, "n": protos.DT_INT64}, label="canary"
    )
    shared = sp.predict_request(
        model="tiny", columns={"x": [1.0], "n": [0]}, dtypes={"x": "DT_FLOAT", "n": "DT_INT64"}, label="canary"
    )
    assert ours == shared
    assert ours.model_spec.version_label == "canary" and list(ours.inputs["x"].float_val) == [1.0]
    assert protos.tensor_values(ours.inputs["n"]) == ([1], [0])


def test_a_row_missing_a_feature_is_named() -> None:
    with pytest.raises(sp.EncodingError, match="feature 'carrier' is missing from some instances"):
        sp.columns_of([{"carrier": "B6"}, {"distance": 1.0}])


def test_a_model_server_config_file_parses() -> None:
    config = text_format.Parse(
        'model_config_list { config { name: "flights_delay" base_path: "/models/flights_delay" '
        'model_platform: "tensorflow" model_version_policy { specific { versions: 1 versions: 2 } } '
        'version_labels { key: "stable" value: 1 } } }',
        sp.ModelServerConfig(),
    )
    (model,) = config.model_config_list.config
    assert list(model.model_version_policy.specific.versions) == [1, 2]
    assert model.version_labels["stable"] == 1
