"""What the rollout sends to TF Serving, without TensorFlow: thin names over ``pipeline_components.serving_protos``.

The messages, tensors and requests come from the project's one vendored copy of TF Serving's API and its one
encoder (``serving_protos``); this module keeps the names the fleet's modules call (``protos.message``,
``protos.call``, ``protos.predict_request``...). The two gRPC services are called by method path, which is all a
stub does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import text_format

from pipeline_components import serving_protos
from pipeline_components.serving_protos.dtypes import BY_NAME
from pipeline_components.serving_protos.stubs import unary
from pipeline_components.serving_protos.tensors import tensor_values

MODEL_SERVICE = "/tensorflow.serving.ModelService/"
PREDICTION_SERVICE = "/tensorflow.serving.PredictionService/"

# tensorflow/core/framework/types.proto
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_STRING, DT_INT64 = (
    BY_NAME[name].number for name in ("DT_FLOAT", "DT_DOUBLE", "DT_INT32", "DT_STRING", "DT_INT64")
)

__all__ = [
    "DT_DOUBLE",
    "DT_FLOAT",
    "DT_INT32",
    "DT_INT64",
    "DT_STRING",
    "MODEL_SERVICE",
    "PREDICTION_SERVICE",
    "call",
    "message",
    "message_class",
    "model_server_config",
    "predict_request",
    "tensor_values",
    "to_text",
]


def message_class(full_name: str) -> Any:
    """The message class of e.g. ``tensorflow.serving.GetModelStatusRequest``."""
    return serving_protos.message(full_name)


def message(full_name: str, **fields: Any) -> Any:
    """A new message of that class, with ``fields`` set."""
    return message_class(full_name)(**fields)


def model_server_config(text: str = "") -> Any:
    """A ``tensorflow.serving.ModelServerConfig`` parsed from text (empty: a blank one)."""
    return text_format.Parse(text, message("tensorflow.serving.ModelServerConfig"))


def to_text(proto: Any) -> str:
    """A message in protobuf text format (how ``models.config`` is written)."""
    return text_format.MessageToString(proto)


def predict_request(
    model_name: str,
    columns: Mapping[str, Sequence[Any]],
    dtypes: Mapping[str, int],
    *,
    version: int | None = None,
    label: str | None = None,
    signature_name: str = "serving_default",
) -> Any:
    """A ``PredictRequest`` of one batch (``serving_protos.predict_request``), the dtypes from the signature."""
    return serving_protos.predict_request(
        model=model_name, columns=columns, dtypes=dtypes, version=version, label=label, signature=signature_name
    )


def call(channel: Any, method: str, request: Any, response_type: str, timeout_s: float) -> Any:
    """One unary gRPC call by method path, e.g. ``MODEL_SERVICE + "GetModelStatus"``."""
    return unary(channel, method, response_type)(request, timeout=timeout_s)
