"""TensorFlow Serving's protos and gRPC stubs, without TensorFlow, tensorflow-serving-api or protoc; and the one
encoder of the project for tensors, tf.Examples and requests.

``tf_serving.binpb`` holds the descriptors of TF Serving's PredictionService and ModelService messages and of
everything they import (regenerated on purpose by ``scripts/vendor_serving_protos.py``). This module builds the
message classes from it, in a private descriptor pool, with whichever protobuf runtime is installed (protobuf 6 in
the pipeline runtime environment, 7 in the orchestrator environment), so that it never clashes with the real
``tensorflow_serving`` modules when both are imported in one process. Messages travel as bytes, so these classes
talk to any TF Serving server (``tensorflow_model_server`` or runway's own).

    from pipeline_components import serving_protos as sp

    request = sp.predict_request(model="flights_delay", label="stable", columns={"distance": [1617.0]},
                                 dtypes={"distance": "DT_FLOAT"})
    response = sp.PredictionServiceStub(grpc.insecure_channel("localhost:8500")).Predict(request, timeout=5)
    sp.tensor_to_list(response.outputs["probabilities"])   # [[0.278]]

Who encodes what (one implementation each, used by the client, the fleet and the model server alike):

- ``tensors``: Python values <-> ``TensorProto`` (no NumPy); ``arrays``: NumPy arrays <-> ``TensorProto`` (the
  model server; imported on its own, since the orchestrator environment has no NumPy);
- ``examples``: feature dicts and TF Serving's JSON examples -> ``tensorflow.Example``;
- ``requests``: model specs, Predict and Classify requests, a response's outputs as REST rows;
- ``dtypes``: the dtype table behind all of them, and ``EncodingError`` (a ``ValueError``) for what does not encode.
"""

from __future__ import annotations

from typing import Any

from pipeline_components.serving_protos.dtypes import DTYPES, EncodingError
from pipeline_components.serving_protos.examples import json_to_example, make_example
from pipeline_components.serving_protos.messages import SHORT_NAMES, message, pool
from pipeline_components.serving_protos.requests import (
    classification_request,
    columns_of,
    fill_model_spec,
    outputs_as_rows,
    predict_request,
)
from pipeline_components.serving_protos.stubs import ModelServiceStub, PredictionServiceStub
from pipeline_components.serving_protos.tensors import make_tensor_proto, tensor_to_list, tensor_values

__all__ = [
    "DTYPES",
    "SHORT_NAMES",
    "EncodingError",
    "ModelServiceStub",
    "PredictionServiceStub",
    "classification_request",
    "columns_of",
    "fill_model_spec",
    "json_to_example",
    "make_example",
    "make_tensor_proto",
    "message",
    "outputs_as_rows",
    "pool",
    "predict_request",
    "tensor_to_list",
    "tensor_values",
]


def __getattr__(name: str) -> Any:
    """``serving_protos.PredictRequest`` and the other names of ``SHORT_NAMES``."""
    if name in SHORT_NAMES:
        return message(SHORT_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
