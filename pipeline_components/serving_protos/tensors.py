"""TensorProto <-> Python values, without NumPy or TensorFlow: the project's one tensor encoder.

Works on any ``tensorflow.TensorProto`` message, the vendored class of this package or TensorFlow's own (pass it as
``into``), since both are built from the same ``tensor.proto``. Decoding follows TensorFlow (``Tensor::FromProto``,
``tf.make_ndarray``): values come from ``tensor_content`` when it is set, else from the dtype's repeated field; an
empty field means zeros, a shorter one is padded with its last value (TF's "fill" shorthand); more values than the
shape holds is an error. The NumPy side (the model server's arrays) is ``arrays.py``, on the same table
(``dtypes.py``).
"""

from __future__ import annotations

import struct
from typing import Any

from pipeline_components.serving_protos.dtypes import DType, EncodingError, resolve
from pipeline_components.serving_protos.messages import message

_ZERO = {"float": 0.0, "int": 0, "bool": False, "string": b""}
# Ranges of the narrow integer dtypes, whose values share int32's field and so are not range-checked by protobuf.
_INT_RANGES = {
    "DT_UINT8": (0, 255),
    "DT_INT8": (-128, 127),
    "DT_INT16": (-(2**15), 2**15 - 1),
    "DT_UINT16": (0, 2**16 - 1),
}


def _shape_and_flat(values: Any) -> tuple[list[int], list[Any]]:
    """Shape and row-major flat values of a nested list (all rows of one length)."""
    if not isinstance(values, list | tuple):
        return [], [values]
    if not values:
        return [0], []
    shapes_and_flats = [_shape_and_flat(value) for value in values]
    inner = shapes_and_flats[0][0]
    if any(shape != inner for shape, _ in shapes_and_flats):
        raise EncodingError("a tensor's rows must all have the same shape")
    return [len(values), *inner], [item for _, flat in shapes_and_flats for item in flat]


def infer_dtype(flat: list[Any]) -> str:
    """The dtype of values given without one: bools -> DT_BOOL, ints -> DT_INT64, strings -> DT_STRING, else float."""
    if flat and all(isinstance(value, bool) for value in flat):
        return "DT_BOOL"
    if flat and all(isinstance(value, int) and not isinstance(value, bool) for value in flat):
        return "DT_INT64"
    if flat and all(isinstance(value, str | bytes) for value in flat):
        return "DT_STRING"
    return "DT_FLOAT"


def convert(values: list[Any], spec: DType) -> list[Any]:
    """Python values as the dtype's values (str -> UTF-8 bytes, numbers -> float/int/bool).

    Raises:
        EncodingError: a value that does not convert, or an integer out of the dtype's range.
    """
    try:
        if spec.kind == "string":
            return [value.encode() if isinstance(value, str) else bytes(value) for value in values]
        if spec.kind == "float":
            return [float(value) for value in values]
        if spec.kind == "bool":
            return [bool(value) for value in values]
        converted = [int(value) for value in values]
    except (TypeError, ValueError) as error:
        raise EncodingError(f"values do not convert to {spec.name}: {error}") from None
    low, high = _INT_RANGES.get(spec.name, (None, None))
    if low is not None and any(not low <= value <= high for value in converted):  # type: ignore[operator]
        raise EncodingError(f"values out of range for {spec.name}: {converted}")
    return converted


def fill_values(proto: Any, flat: list[Any], spec: DType) -> None:
    """Append converted values to the dtype's repeated field (a half goes in as its 16 bits)."""
    if spec.name == "DT_HALF":
        flat = [struct.unpack("<H", struct.pack("<e", value))[0] for value in flat]
    getattr(proto, spec.field).extend(flat)


def make_tensor_proto(values: Any, dtype: str | int | None = None, *, into: Any = None) -> Any:
    """A ``tensorflow.TensorProto`` of a scalar or a nested list.

    Args:
        values: a scalar or a (nested) list of numbers, booleans, strings or bytes.
        dtype: ``DT_FLOAT``, ``DT_INT64``, ``DT_STRING``... or the enum value; inferred when omitted (ints ->
            DT_INT64, strings -> DT_STRING, bools -> DT_BOOL, anything else -> DT_FLOAT).
        into: an empty TensorProto to fill (e.g. TensorFlow's own class); default: a new vendored one.

    Raises:
        EncodingError (a ``ValueError``): an unsupported dtype, ragged rows, or a value that does not convert.
    """
    shape, flat = _shape_and_flat(values)
    spec = resolve(dtype if dtype is not None else infer_dtype(flat))
    proto = message("tensorflow.TensorProto")() if into is None else into
    proto.dtype = spec.number
    proto.tensor_shape.SetInParent()  # a scalar's shape is present and empty, as TensorFlow writes it
    for size in shape:
        proto.tensor_shape.dim.add().size = size
    fill_values(proto, convert(flat, spec), spec)
    return proto


def element_count(proto: Any) -> tuple[list[int], int]:
    """(shape, number of elements) of a TensorProto.

    Raises:
        EncodingError: a dimension of unknown (negative) size.
    """
    shape = [dim.size for dim in proto.tensor_shape.dim]
    count = 1
    for size in shape:
        if size < 0:
            raise EncodingError(f"tensor shape {shape} has a dimension of unknown size")
        count *= size
    return shape, count


def field_values(proto: Any, spec: DType, count: int, shape: list[int]) -> list[Any]:
    """The values of the dtype's repeated field, filled to ``count`` the way TensorFlow does.

    Raises:
        EncodingError: more values than the shape holds.
    """
    flat = list(getattr(proto, spec.field))
    if spec.name == "DT_HALF":
        flat = [struct.unpack("<e", struct.pack("<H", bits & 0xFFFF))[0] for bits in flat]
    if len(flat) > count:
        raise EncodingError(f"{spec.name} tensor of shape {shape} has {len(flat)} values, more than it holds")
    if len(flat) < count:  # TF's shorthand: the last value (or zero) fills the rest
        flat += [flat[-1] if flat else _ZERO[spec.kind]] * (count - len(flat))
    return flat


def tensor_values(proto: Any) -> tuple[list[int], list[Any]]:
    """(shape, row-major flat values) of a TensorProto; strings stay bytes.

    Raises:
        EncodingError: an unsupported dtype, a malformed ``tensor_content``, or too many values.
    """
    spec = resolve(proto.dtype)
    shape, count = element_count(proto)
    if proto.tensor_content:
        if not spec.packed:
            raise EncodingError(f"a {spec.name} tensor cannot use tensor_content")
        size = struct.calcsize("<" + spec.packed)
        if len(proto.tensor_content) != count * size:
            raise EncodingError(
                f"{spec.name} tensor of shape {shape} has {len(proto.tensor_content)} bytes of tensor_content, "
                f"expected {count * size}"
            )
        return shape, list(struct.unpack(f"<{count}{spec.packed}", proto.tensor_content))
    return shape, field_values(proto, spec, count, shape)


def _reshape(flat: list[Any], shape: list[int]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def tensor_to_list(proto: Any) -> Any:
    """A TensorProto as a (nested) list, a scalar for a rank-0 tensor; strings stay bytes.

    Raises:
        EncodingError (a ``ValueError``): see ``tensor_values``.
    """
    shape, flat = tensor_values(proto)
    return _reshape(flat, shape)
