"""TensorFlow's ``DataType`` values that runway encodes: names, numbers, and where a TensorProto keeps each one.

One table for every encoder of the project (the client, the fleet's rollout, the model server): a dtype is named
either way (``"DT_FLOAT"`` or ``1``) and resolved here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_components.serving_protos.messages import pool


class EncodingError(ValueError):
    """A value, tensor or example that cannot be encoded or decoded as asked; the message says what and where.

    Callers turn it into their own typed error: the client into ``InvalidRequestError``, the model server into
    TF Serving's ``INVALID_ARGUMENT``.
    """


@dataclass(frozen=True)
class DType:
    """How one dtype is stored in a ``tensorflow.TensorProto``.

    Attributes:
        name: the enum name, e.g. ``DT_FLOAT``.
        number: the enum value, e.g. 1.
        field: the repeated field holding its values (``float_val``...).
        packed: the ``struct`` format of one value in ``tensor_content`` (little-endian); empty for strings.
        numpy: the NumPy type name (for the model server's arrays).
        content: whether TensorFlow's ``make_tensor_proto`` packs an array of it into ``tensor_content``.
    """

    name: str
    number: int
    field: str
    packed: str
    numpy: str
    content: bool

    @property
    def kind(self) -> str:
        """``float``, ``int``, ``bool`` or ``string``: which Python values it takes."""
        if self.field == "string_val":
            return "string"
        if self.field == "bool_val":
            return "bool"
        return "float" if self.packed in ("f", "d", "e") else "int"


# name, enum value, repeated field, struct format in tensor_content, NumPy type, packed by make_tensor_proto.
# half_val keeps an IEEE half's 16 bits in an int32, as TensorFlow writes it.
_ROWS = """
DT_FLOAT   1 float_val  f float32 packed | DT_DOUBLE 2 double_val d float64 packed | DT_INT32  3 int_val  i int32 packed
DT_UINT8   4 int_val    B uint8   packed | DT_INT16  5 int_val    h int16   packed | DT_INT8   6 int_val  b int8  packed
DT_STRING  7 string_val - object  field  | DT_INT64  9 int64_val  q int64   packed | DT_BOOL  10 bool_val ? bool  field
DT_UINT16 17 int_val    H uint16  field  | DT_HALF  19 half_val   e float16 packed
DT_UINT32 22 uint32_val I uint32  packed | DT_UINT64 23 uint64_val Q uint64 packed
"""


def _row(name: str, number: str, field: str, packed: str, numpy: str, content: str) -> DType:
    return DType(name, int(number), field, "" if packed == "-" else packed, numpy, content == "packed")


_TABLE = tuple(_row(*row.split()) for row in _ROWS.replace("\n", "|").split("|") if row.strip())
BY_NAME: dict[str, DType] = {dtype.name: dtype for dtype in _TABLE}
BY_NUMBER: dict[int, DType] = {dtype.number: dtype for dtype in _TABLE}

# Backwards-compatible view: dtype name -> (enum value, TensorProto field, struct format).
DTYPES: dict[str, tuple[int, str, str]] = {dtype.name: (dtype.number, dtype.field, dtype.packed) for dtype in _TABLE}


def resolve(value: str | int) -> DType:
    """The dtype named ``DT_FLOAT`` / ``float`` / ``1``.

    Raises:
        EncodingError: a dtype runway does not encode (names the ones it does).
    """
    found: DType | None
    if isinstance(value, int):
        found = BY_NUMBER.get(value)
    else:
        text = value.upper()
        found = BY_NAME.get(text if text.startswith("DT_") else f"DT_{text}")
    if found is None:
        raise EncodingError(f"dtype {type_name(value)} is not supported; use one of {', '.join(BY_NAME)}")
    return found


def type_name(value: str | int) -> str:
    """TensorFlow's short name of a dtype (``float``, ``int64``, ``string``: ``DataTypeString``), for messages."""
    if isinstance(value, str):
        return value.upper().removeprefix("DT_").lower()
    enum = pool().FindEnumTypeByName("tensorflow.DataType")
    known = enum.values_by_number.get(value)
    return known.name.removeprefix("DT_").lower() if known is not None else f"<dtype {value}>"
