"""What the rollout sends to TF Serving, without TensorFlow: helpers over ``pipeline_components.serving_protos``.

The messages come from the project's one vendored copy of TF Serving's API (``serving_protos``: a descriptor set in
a private pool, no generated-code version checks, no clash with the real protos). The two gRPC services are called
by method path, which is all a stub does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import text_format

from pipeline_components import serving_protos

MODEL_SERVICE = "/tensorflow.serving.ModelService/"
PREDICTION_SERVICE = "/tensorflow.serving.PredictionService/"

# tensorflow/core/framework/types.proto
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_STRING, DT_INT64 = 1, 2, 3, 7, 9


@functools.cache
def message_class(full_name: str) -> Any:
    """The message class of e.g. ``tensorflow.serving.GetModelStatusRequest``."""
    return serving_protos.message(full_name)


def message(full_name: str, **fields: Any) -> Any:
    return message_class(full_name)(**fields)


def model_server_config(text: str = "") -> Any:
    """A ``tensorflow.serving.ModelServerConfig`` parsed from text (empty: a blank one)."""
    return text_format.Parse(text, message("tensorflow.serving.ModelServerConfig"))


def to_text(proto: Any) -> str:
    return text_format.MessageToString(proto)


def tensor(values: Sequence[Any], dtype: int) -> Any:
    """A one-dimensional ``TensorProto`` of ``values`` (a batch of scalars, TF Serving's columnar form)."""
    proto = message("tensorflow.TensorProto", dtype=dtype)
    proto.tensor_shape.dim.add(size=len(values))
    if dtype == DT_FLOAT:
        proto.float_val.extend(float(v) for v in values)
    elif dtype == DT_DOUBLE:
        proto.double_val.extend(float(v) for v in values)
    elif dtype == DT_INT32:
        proto.int_val.extend(int(v) for v in values)
    elif dtype == DT_INT64:
        proto.int64_val.extend(int(v) for v in values)
    elif dtype == DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in values)
    else:
        raise ValueError(f"dtype {dtype} is not supported by the rollout's verification requests")
    return proto


def tensor_values(proto: Any) -> tuple[list[int], list[Any]]:
    """(shape, flat values) of a ``TensorProto``, from its typed fields or its packed ``tensor_content``."""
    import struct

    shape = [dim.size for dim in proto.tensor_shape.dim]
    count = 1
    for size in shape:
        count *= size
    if proto.tensor_content:
        formats = {DT_FLOAT: "f", DT_DOUBLE: "d", DT_INT32: "i", DT_INT64: "q"}
        fmt = formats.get(proto.dtype)
        if fmt is None:
            raise ValueError(f"cannot decode tensor_content of dtype {proto.dtype}")
        return shape, list(struct.unpack(f"<{count}{fmt}", proto.tensor_content))
    for name in ("float_val", "double_val", "int_val", "int64_val", "string_val", "bool_val"):
        values = list(getattr(proto, name))
        if values:
            if len(values) == 1 and count > 1:  # TF's "fill" encoding
                values = values * count
            return shape, values
    return shape, []


def dtype_for_json_value(values: Sequence[Any]) -> int:
    """The dtype a column of JSON values is sent as (the SavedModel signature decides; see ``signature_dtypes``)."""
    if all(isinstance(v, bool | int) for v in values):
        return DT_INT64
    if all(isinstance(v, int | float) for v in values):
        return DT_FLOAT
    return DT_STRING


def predict_request(
    model_name: str,
    columns: Mapping[str, Sequence[Any]],
    dtypes: Mapping[str, int],
    *,
    version: int | None = None,
    label: str | None = None,
    signature_name: str = "serving_default",
) -> Any:
    request = message("tensorflow.serving.PredictRequest")
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    elif label is not None:
        request.model_spec.version_label = label
    for name, values in columns.items():
        request.inputs[name].CopyFrom(tensor(values, dtypes.get(name) or dtype_for_json_value(values)))
    return request


def call(channel: Any, method: str, request: Any, response_type: str, timeout_s: float) -> Any:
    """One unary gRPC call by method path, e.g. ``MODEL_SERVICE + "GetModelStatus"``."""
    stub = channel.unary_unary(
        method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=message_class(response_type).FromString,
    )
    return stub(request, timeout=timeout_s)
