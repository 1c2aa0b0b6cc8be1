"""TensorProto <-> Python lists, without NumPy or TensorFlow.

Only the dtypes a tabular model's signatures use are supported: float, double, int32, int64, bool, string.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from pipeline_components.serving_protos.messages import message

# dtype name -> (DataType enum value, TensorProto field of its values, struct format of tensor_content)
DTYPES: dict[str, tuple[int, str, str]] = {
    "DT_FLOAT": (1, "float_val", "f"),
    "DT_DOUBLE": (2, "double_val", "d"),
    "DT_INT32": (3, "int_val", "i"),
    "DT_STRING": (7, "string_val", ""),
    "DT_INT64": (9, "int64_val", "q"),
    "DT_BOOL": (10, "bool_val", "?"),
}
_BY_NUMBER = {number: (name, field, fmt) for name, (number, field, fmt) in DTYPES.items()}


def _shape_and_flat(values: Any) -> tuple[list[int], list[Any]]:
    """Shape and row-major flat values of a nested list (all rows of one length)."""
    if not isinstance(values, list | tuple):
        return [], [values]
    if not values:
        return [0], []
    shapes_and_flats = [_shape_and_flat(value) for value in values]
    inner = shapes_and_flats[0][0]
    if any(shape != inner for shape, _ in shapes_and_flats):
        raise ValueError("a tensor's rows must all have the same shape")
    return [len(values), *inner], [item for _, flat in shapes_and_flats for item in flat]


def _infer_dtype(flat: Sequence[Any]) -> str:
    if flat and all(isinstance(value, bool) for value in flat):
        return "DT_BOOL"
    if flat and all(isinstance(value, int) and not isinstance(value, bool) for value in flat):
        return "DT_INT64"
    if flat and all(isinstance(value, str | bytes) for value in flat):
        return "DT_STRING"
    return "DT_FLOAT"


def make_tensor_proto(values: Any, dtype: str | None = None) -> Any:
    """A ``tensorflow.TensorProto`` of a scalar or a nested list.

    Args:
        values: a scalar or a (nested) list of numbers, booleans, strings or bytes.
        dtype: the TensorFlow dtype name (``DT_FLOAT``, ``DT_INT64``, ``DT_STRING``...); inferred when omitted
            (ints -> DT_INT64, strings -> DT_STRING, anything else -> DT_FLOAT).

    Raises:
        ValueError: an unsupported dtype, ragged rows, or a value that does not convert to the dtype.
    """
    shape, flat = _shape_and_flat(values)
    dtype = dtype or _infer_dtype(flat)
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype} is not supported; use one of {', '.join(DTYPES)}")
    number, field, _ = DTYPES[dtype]
    proto = message("tensorflow.TensorProto")()
    proto.dtype = number
    for size in shape:
        proto.tensor_shape.dim.add().size = size
    try:
        if dtype == "DT_STRING":
            converted: list[Any] = [value.encode() if isinstance(value, str) else bytes(value) for value in flat]
        elif dtype in ("DT_FLOAT", "DT_DOUBLE"):
            converted = [float(value) for value in flat]
        elif dtype == "DT_BOOL":
            converted = [bool(value) for value in flat]
        else:
            converted = [int(value) for value in flat]
    except (TypeError, ValueError) as error:
        raise ValueError(f"values do not convert to {dtype}: {error}") from None
    getattr(proto, field).extend(converted)
    return proto


def _reshape(flat: list[Any], shape: list[int]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def tensor_to_list(proto: Any) -> Any:
    """A ``tensorflow.TensorProto`` as a (nested) list, a scalar for a rank-0 tensor; strings stay bytes.

    Raises:
        ValueError: a dtype other than those of ``DTYPES``.
    """
    if proto.dtype not in _BY_NUMBER:
        raise ValueError(f"TensorProto dtype {proto.dtype} is not supported; supported: {', '.join(DTYPES)}")
    name, field, fmt = _BY_NUMBER[proto.dtype]
    shape = [dim.size for dim in proto.tensor_shape.dim]
    count = 1
    for size in shape:
        count *= size
    if proto.tensor_content and fmt:
        flat = list(struct.unpack(f"<{count}{fmt}", proto.tensor_content))
    else:
        flat = list(getattr(proto, field))
        if len(flat) == 1 and count > 1:  # TF's shorthand: one value fills the tensor
            flat = flat * count
    if len(flat) != count:
        raise ValueError(f"{name} tensor of shape {shape} has {len(flat)} values")
    return _reshape(flat, shape)
