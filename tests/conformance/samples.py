"""Real penguins (Palmer Station data) as requests to the penguins model, in each of TF Serving's forms."""

from __future__ import annotations

import base64
from typing import Any

import tensorflow as tf
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

ROWS: list[dict[str, Any]] = [
    {
        "island": "Torgersen",
        "sex": "male",
        "bill_length_mm": 39.1,
        "bill_depth_mm": 18.7,
        "flipper_length_mm": 181.0,
        "body_mass_g": 3750.0,
    },
    {
        "island": "Biscoe",
        "sex": "female",
        "bill_length_mm": 46.1,
        "bill_depth_mm": 13.2,
        "flipper_length_mm": 211.0,
        "body_mass_g": 4500.0,
    },
    {
        "island": "Dream",
        "sex": "female",
        "bill_length_mm": 46.5,
        "bill_depth_mm": 17.9,
        "flipper_length_mm": 192.0,
        "body_mass_g": 3500.0,
    },
]
CLASS_NAMES = ["Adelie", "Chinstrap", "Gentoo"]  # configs/penguins.yaml label.classes, in index order
NUM_CLASSES = len(CLASS_NAMES)


def columns(rows: list[dict[str, Any]] = ROWS) -> dict[str, list[Any]]:
    """The columnar (``inputs``) form of rows."""
    return {key: [row[key] for row in rows] for key in rows[0]}


def b64(text: str) -> dict[str, str]:
    """TF Serving's JSON form of a binary string."""
    return {"b64": base64.b64encode(text.encode()).decode()}


def example(row: dict[str, Any]) -> example_pb2.Example:
    """A row as a tf.Example, as the pipeline's serving_tf_example signature parses it."""
    message = example_pb2.Example()
    for key, value in row.items():
        feature = message.features.feature[key]
        if isinstance(value, str):
            feature.bytes_list.value.append(value.encode())
        else:
            feature.float_list.value.append(value)
    return message


def predict_request(
    model: str, *, version: int | None = None, label: str | None = None, signature_name: str = ""
) -> predict_pb2.PredictRequest:
    """A gRPC PredictRequest for every sample row (columnar tensors: strings, and floats as float32)."""
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model, signature_name=signature_name))
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:  # even an empty label would be a (wrong) choice of version
        request.model_spec.version_label = label
    for key, values in columns().items():
        dtype = tf.string if isinstance(values[0], str) else tf.float32
        request.inputs[key].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
    return request
