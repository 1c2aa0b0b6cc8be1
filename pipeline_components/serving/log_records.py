"""A request log record's bytes, put together from serialized parts (protobuf's wire format).

A serialized message is the concatenation of its serialized fields, and a message-typed field is its tag, its
length and the field's own serialized bytes. So the request log's writer never copies a request and a response
into one ``PredictionLog`` message to serialize it: it joins the ``LogMetadata`` (serialized once per model
version and signature, the timestamp appended), the request and the response. A gRPC request and response are
serialized as they are; a REST Predict's request is encoded here straight from the arrays the server decoded from
the JSON body, which takes a tenth of the time building its ``TensorProto`` messages took (about 10 us instead of
115 us for a flights request of 20 inputs), CPU the writer would otherwise take from the request threads
(``benchmarks/results/request_logging.md``).

Every map is written in key order, as protobuf's deterministic serialization writes it, so a record is byte for
byte ``SerializeToString(deterministic=True)`` of the ``PredictionLog`` the message API would build, and parses to
an equal message (``tests/runtime/serving/test_log_records.py`` compares them for every dtype runway encodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from google.protobuf.message import Message
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import logging_pb2, model_pb2, predict_pb2, prediction_log_pb2

from pipeline_components.serving.protos import array_to_tensor

_VARINT, _LENGTH = 0, 2  # protobuf wire types


def _number(message: type[Message], field: str) -> int:
    return int(message.DESCRIPTOR.fields_by_name[field].number)


_ONE_BYTE = [bytes((value,)) for value in range(0x80)]


def _varint(value: int) -> bytes:
    """A varint; a negative integer is written as its 64-bit two's complement (10 bytes), as for int32 and int64."""
    if 0 <= value < 0x80:  # most lengths and small values: one byte
        return _ONE_BYTE[value]
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a message, bytes or a string, a packed repeated field) with its tag."""
    return _tag(number, _LENGTH) + _varint(len(payload)) + payload


def _tagged(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field of a tag computed once."""
    size = len(payload)
    return tag + (_ONE_BYTE[size] if size < 0x80 else _varint(size)) + payload


_TENSOR = tensor_pb2.TensorProto
_DTYPE, _SHAPE, _CONTENT = (_number(_TENSOR, name) for name in ("dtype", "tensor_shape", "tensor_content"))
_DIM, _DIM_SIZE = 2, 1  # TensorShapeProto.dim, TensorShapeProto.Dim.size
_STRING_VAL = _tag(_number(_TENSOR, "string_val"), _LENGTH)
_OBJECT = np.dtype(object)
# The NumPy types encoded here, as array_to_tensor encodes them: (DataType, the tag of the repeated field, whether
# an array of more than one element goes in tensor_content, whether the repeated field holds the values'
# little-endian bytes rather than varints). Any other type (a big-endian array too) goes through array_to_tensor.
_FAST: dict[np.dtype[Any], tuple[int, bytes, bool, bool]] = {
    np.dtype("<f4"): (1, _tag(_number(_TENSOR, "float_val"), _LENGTH), True, True),
    np.dtype("<f8"): (2, _tag(_number(_TENSOR, "double_val"), _LENGTH), True, True),
    np.dtype("<i4"): (3, _tag(_number(_TENSOR, "int_val"), _LENGTH), True, False),
    np.dtype("<i8"): (9, _tag(_number(_TENSOR, "int64_val"), _LENGTH), True, False),
    np.dtype("bool"): (10, _tag(_number(_TENSOR, "bool_val"), _LENGTH), False, False),
}
_CONTENT_TAG = _tag(_CONTENT, _LENGTH)


@lru_cache(maxsize=256)
def _header(dtype: int, shape: tuple[int, ...]) -> bytes:
    """A TensorProto's dtype and shape (a scalar's shape present and empty, as TensorFlow writes it)."""
    dims = b"".join(field(_DIM, _tag(_DIM_SIZE, _VARINT) + _varint(size) if size else b"") for size in shape)
    return _tag(_DTYPE, _VARINT) + _varint(dtype) + field(_SHAPE, dims)


def tensor(array: np.ndarray) -> bytes:
    """An array as the serialized TensorProto ``protos.array_to_tensor`` makes of it."""
    array = np.asarray(array)
    if array.dtype == _OBJECT:
        items = array.ravel().tolist()
        if all(type(item) is bytes for item in items):
            return _header(7, array.shape) + b"".join([_tagged(_STRING_VAL, item) for item in items])  # DT_STRING
    fast = _FAST.get(array.dtype)
    if fast is None:
        return array_to_tensor(array).SerializeToString()
    dtype, tag, packs, raw = fast
    header, size = _header(dtype, array.shape), array.size
    if size == 1:  # a batch of one scalar input: the common case, in the repeated field
        return header + _tagged(tag, array.tobytes() if raw else _varint(int(array.item())))
    if not size:
        return header
    if packs:  # make_tensor_proto packs an array of more than one element
        return header + _tagged(_CONTENT_TAG, array.tobytes())
    if raw:  # packed floats or doubles: their little-endian bytes
        return header + _tagged(tag, array.tobytes())
    return header + _tagged(tag, b"".join([_varint(int(value)) for value in array.ravel().tolist()]))


_MAP_VALUE = _tag(2, _LENGTH)  # a map entry: key = 1, value = 2


@lru_cache(maxsize=1024)
def _map_key(name: str) -> bytes:
    return field(1, name.encode())


def tensor_map(number: int, tensors: Mapping[str, np.ndarray]) -> bytes:
    """A ``map<string, TensorProto>`` field, entries in key order (whatever order the mapping has)."""
    tag = _tag(number, _LENGTH)
    return b"".join(
        [_tagged(tag, _map_key(name) + _tagged(_MAP_VALUE, tensor(tensors[name]))) for name in sorted(tensors)]
    )


_REQUEST_SPEC, _REQUEST_INPUTS = (_number(predict_pb2.PredictRequest, name) for name in ("model_spec", "inputs"))


def predict_request(model_spec: model_pb2.ModelSpec, inputs: Mapping[str, np.ndarray]) -> bytes:
    """A serialized ``PredictRequest`` of a model spec and input arrays."""
    return field(_REQUEST_SPEC, model_spec.SerializeToString()) + tensor_map(_REQUEST_INPUTS, inputs)


_RESPONSE_OUTPUTS, _RESPONSE_SPEC = (_number(predict_pb2.PredictResponse, name) for name in ("outputs", "model_spec"))


def predict_response(model_spec: model_pb2.ModelSpec, outputs: Mapping[str, np.ndarray]) -> bytes:
    """A serialized ``PredictResponse`` of the model spec that answered and output arrays."""
    return tensor_map(_RESPONSE_OUTPUTS, outputs) + field(_RESPONSE_SPEC, model_spec.SerializeToString())


def serialized(message: Message | bytes) -> bytes:
    """A message's deterministic serialization (map entries in key order); bytes are taken as serialized."""
    return message if isinstance(message, bytes) else message.SerializeToString(deterministic=True)


_LOG = prediction_log_pb2.PredictionLog
_METADATA = _number(_LOG, "log_metadata")
_ENTRIES = {name: _number(_LOG, name) for name in ("predict_log", "classify_log", "regress_log")}
_TIMESTAMP = _number(logging_pb2.LogMetadata, "timestamp_secs")  # the last field runway sets: appended


@lru_cache(maxsize=256)
def metadata_without_time(
    model_name: str, version: int, signature_name: str, sampling: bytes, tags: tuple[str, ...]
) -> bytes:
    """The serialized ``LogMetadata`` of a model version's records, all but the timestamp.

    Args:
        model_name: the model that answered.
        version: its version.
        signature_name: the signature that ran.
        sampling: the serialized ``SamplingConfig``.
        tags: the SavedModel's tags.
    """
    metadata = logging_pb2.LogMetadata()
    metadata.model_spec.name = model_name
    metadata.model_spec.version.value = version
    metadata.model_spec.signature_name = signature_name
    metadata.sampling_config.ParseFromString(sampling)
    metadata.saved_model_tags.extend(tags)
    return metadata.SerializeToString(deterministic=True)


def prediction_log(*, metadata: bytes, timestamp_secs: int, log_field: str, request: bytes, response: bytes) -> bytes:
    """A serialized ``PredictionLog``.

    Args:
        metadata: ``metadata_without_time``.
        timestamp_secs: when the request was answered.
        log_field: ``predict_log``, ``classify_log`` or ``regress_log``.
        request: the serialized request.
        response: the serialized response.
    """
    if timestamp_secs:  # proto3 leaves a zero out
        metadata += _tag(_TIMESTAMP, _VARINT) + _varint(timestamp_secs)
    entry = field(1, request) + field(2, response)  # request = 1, response = 2 in PredictLog, ClassifyLog, RegressLog
    return field(_METADATA, metadata) + field(_ENTRIES[log_field], entry)
