"""TensorFlow Serving's protos and gRPC stubs, without TensorFlow, tensorflow-serving-api or protoc.

``tf_serving.binpb`` holds the descriptors of TF Serving's PredictionService and ModelService messages and of
everything they import (regenerated on purpose by ``scripts/vendor_serving_protos.py``). This module builds the
message classes from it, in a private descriptor pool, with whichever protobuf runtime is installed (protobuf 6 in
the pipeline runtime environment, 7 in the orchestrator environment), so that it never clashes with the real
``tensorflow_serving`` modules when both are imported in one process. Messages travel as bytes, so these classes
talk to any TF Serving server (``tensorflow_model_server`` or runway's own).

    from pipeline_components import serving_protos as sp

    request = sp.message("tensorflow.serving.PredictRequest")()   # or sp.PredictRequest()
    request.model_spec.name = "flights_delay"
    request.inputs["distance"].CopyFrom(sp.make_tensor_proto([1617.0], dtype="DT_FLOAT"))
    response = sp.PredictionServiceStub(grpc.insecure_channel("localhost:8500")).Predict(request, timeout=5)
    sp.tensor_to_list(response.outputs["probabilities"])   # [[0.278]]
"""

from __future__ import annotations

from typing import Any

from pipeline_components.serving_protos.messages import SHORT_NAMES, message, pool
from pipeline_components.serving_protos.stubs import ModelServiceStub, PredictionServiceStub
from pipeline_components.serving_protos.tensors import DTYPES, make_tensor_proto, tensor_to_list

__all__ = [
    "DTYPES",
    "SHORT_NAMES",
    "ModelServiceStub",
    "PredictionServiceStub",
    "make_tensor_proto",
    "message",
    "pool",
    "tensor_to_list",
]


def __getattr__(name: str) -> Any:
    """``serving_protos.PredictRequest`` and the other names of ``SHORT_NAMES``."""
    if name in SHORT_NAMES:
        return message(SHORT_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
