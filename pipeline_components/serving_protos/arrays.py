"""TensorProto <-> NumPy arrays, without TensorFlow: the model server's side of ``tensors.py``.

Same table (``dtypes.py``) and the same decoding rules as ``tensors.py``; arrays are encoded the way TensorFlow's
``make_tensor_proto`` encodes an array (packed ``tensor_content`` for numeric arrays of more than one element,
the repeated field otherwise), so answers are byte-for-byte what they were with TensorFlow. Needs NumPy, which the
runtime environment has; nothing on the orchestrator side imports this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline_components.serving_protos.dtypes import BY_NAME, BY_NUMBER, DType, EncodingError, resolve
from pipeline_components.serving_protos.messages import message
from pipeline_components.serving_protos.tensors import element_count, field_values, fill_values

# DataType enum value -> NumPy type, for every dtype runway encodes (strings are object arrays of bytes).
NUMPY_TYPES: dict[int, Any] = {number: np.dtype(spec.numpy).type for number, spec in BY_NUMBER.items()}
_BY_NUMPY: dict[str, DType] = {spec.numpy: spec for spec in BY_NAME.values() if spec.numpy != "object"}


def tensor_to_array(proto: Any) -> np.ndarray:
    """A TensorProto (vendored or TensorFlow's class) as an array, as ``tf.make_ndarray`` gives it.

    Raises:
        EncodingError (a ``ValueError``): an unsupported dtype, a malformed ``tensor_content``, or too many values.
    """
    spec = resolve(proto.dtype)
    shape, count = element_count(proto)
    numpy_type = np.dtype(spec.numpy)
    if proto.tensor_content:
        if spec.kind == "string":
            raise EncodingError(f"a {spec.name} tensor cannot use tensor_content")
        if len(proto.tensor_content) != count * numpy_type.itemsize:
            raise EncodingError(
                f"{spec.name} tensor of shape {shape} has {len(proto.tensor_content)} bytes of tensor_content, "
                f"expected {count * numpy_type.itemsize}"
            )
        little = np.frombuffer(proto.tensor_content, dtype=numpy_type.newbyteorder("<"))
        return little.astype(numpy_type).reshape(shape)
    flat = field_values(proto, spec, count, shape)
    return np.array(flat, dtype=numpy_type).reshape(shape)


def _dtype_of(array: np.ndarray) -> DType:
    if array.dtype == object or array.dtype.kind in "SU":
        return BY_NAME["DT_STRING"]
    spec = _BY_NUMPY.get(array.dtype.name)
    if spec is None:
        raise EncodingError(f"arrays of {array.dtype} cannot be encoded; supported: {', '.join(_BY_NUMPY)}")
    return spec


def array_to_tensor(array: Any, *, into: Any = None) -> Any:
    """An array as a TensorProto, as ``tf.make_tensor_proto(array)`` writes it.

    Args:
        array: a NumPy array (or anything ``np.asarray`` takes; its NumPy dtype decides the tensor's).
        into: an empty TensorProto to fill (e.g. TensorFlow's own class for a response); default: a new vendored one.

    Raises:
        EncodingError (a ``ValueError``): a NumPy dtype without a TensorFlow counterpart here.
    """
    array = np.asarray(array)
    spec = _dtype_of(array)
    proto = message("tensorflow.TensorProto")() if into is None else into
    proto.dtype = spec.number
    proto.tensor_shape.SetInParent()  # a scalar's shape is present and empty, as TensorFlow writes it
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    if spec.content and array.size > 1:
        proto.tensor_content = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    elif spec.kind == "string":
        proto.string_val.extend(
            item if isinstance(item, bytes) else str(item).encode() for item in array.ravel().tolist()
        )
    else:
        fill_values(proto, array.ravel().tolist(), spec)
    return proto
