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
    with pytest.raises(ValueError, match="same shape"):
        sp.make_tensor_proto([[1.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="DT_FLOAT"):
        sp.make_tensor_proto(["far"], dtype="DT_FLOAT")


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
