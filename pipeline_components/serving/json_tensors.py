"""TF Serving's JSON encoding of tensors and tf.Examples (tensorflow_serving/util/json_tensor.cc).

Request side: the row (``instances``) and columnar (``inputs``) forms of ``:predict``, with ``{"b64": ...}`` for
binary strings, checked the way TF Serving checks them (same messages where it matters); ``examples`` and
``context`` of ``:classify``/``:regress`` become ``tf.Example`` protos. Response side: ``predictions`` (row) or
``outputs`` (columnar), with a string output whose alias ends in ``_bytes`` written as ``{"b64": ...}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import types_pb2

from pipeline_components.serving import status

B64 = "b64"
_FLOAT_TYPES = {types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF, types_pb2.DT_BFLOAT16}
_INT_RANGES = {
    types_pb2.DT_INT8: (-(2**31), 2**31 - 1),  # rapidjson IsInt: any int32
    types_pb2.DT_INT16: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT32: (-(2**31), 2**31 - 1),
    types_pb2.DT_UINT8: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT64: (-(2**63), 2**63 - 1),
    types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
}
NUMPY_TYPES: dict[int, Any] = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_HALF: np.float16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_STRING: object,
}


def _debug(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def dtype_name(dtype: int) -> str:
    """TensorFlow's name of a DataType enum value (``float``, ``int64``, ``string``...)."""
    return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()


def is_b64(value: Any) -> bool:
    """A ``{"b64": "<base64>"}`` object (exactly one string key ``b64``)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64), str)


def _type_error(value: Any, dtype: int) -> status.ServingError:
    return status.invalid_argument(
        f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: {dtype_name(dtype)}"
    )


def _decode_b64(value: Any) -> bytes:
    if not is_b64(value):
        raise status.invalid_argument(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value[B64], validate=True)
    except (binascii.Error, ValueError):
        raise status.invalid_argument("Unable to base64 decode") from None


def _scalar(value: Any, dtype: int) -> Any:
    if isinstance(value, dict):
        if dtype == types_pb2.DT_STRING:
            return _decode_b64(value)
        raise _type_error(value, dtype)
    if dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode()
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(value, dtype)
    if dtype in _FLOAT_TYPES:
        return value
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if not isinstance(value, int) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    raise status.ServingError(
        status.UNIMPLEMENTED,
        f"Conversion of JSON Value: {_debug(value)} to type: {dtype_name(dtype)} is not supported yet",
    )


def _dense_shape(value: Any) -> list[int]:
    """The shape implied by following the first element of each nested list (``GetDenseTensorShape``)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: int, out: list[Any]) -> None:
    if not isinstance(value, list):
        if level != len(shape):
            raise status.invalid_argument(
                f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {len(shape)}"
            )
        out.append(_scalar(value, dtype))
        return
    if level >= len(shape):
        raise status.invalid_argument(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise status.invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def json_to_array(value: Any, dtype: int) -> np.ndarray:
    """One JSON value (scalar, b64 object or nested lists) as a dense array of ``dtype``.

    Raises:
        ServingError: INVALID_ARGUMENT for ragged lists or values of the wrong type.
    """
    shape = _dense_shape(value)
    flat: list[Any] = []
    _fill(value, 0, shape, dtype, flat)
    try:
        array = np.array(flat, dtype=NUMPY_TYPES.get(dtype, object))
    except OverflowError:
        raise status.invalid_argument(f"JSON Value: {_debug(value)} is out of range for {dtype_name(dtype)}") from None
    return array.reshape(shape)


def parse_body(body: bytes) -> dict[str, Any]:
    """Parse a request body as a JSON object (``ParseJson``).

    Raises:
        ServingError: INVALID_ARGUMENT for an empty body, bad JSON or a top level that is not an object.
    """
    if not body:
        raise status.invalid_argument("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        offset = getattr(error, "pos", getattr(error, "start", 0))
        message = getattr(error, "msg", str(error))
        raise status.invalid_argument(f"JSON Parse error: {message} at offset: {offset}") from None
    except RecursionError:
        raise status.invalid_argument("JSON Parse error: nested too deeply") from None
    if not isinstance(document, dict):
        raise status.invalid_argument(f"JSON Value: {_debug(document)} Is not object")
    return document


def signature_name_of(document: Mapping[str, Any]) -> str:
    """The optional ``signature_name`` of a request (empty when absent)."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise status.invalid_argument(
            f"JSON Value: {_debug(dict(document))} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def _element_is_object(value: Any) -> bool:
    return isinstance(value, dict) and not is_b64(value)


def _instances(items: list[Any], input_types: Mapping[str, int]) -> dict[str, np.ndarray]:
    if not _element_is_object(items[0]) and len(input_types) > 1:
        raise status.invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    by_name = _element_is_object(items[0])
    names = sorted(input_types)
    columns: dict[str, list[np.ndarray]] = {}
    for index, item in enumerate(items):
        if by_name:
            if not _element_is_object(item):
                raise status.invalid_argument(f"Expecting object but got list at item {index} of input list")
            for key, value in item.items():
                if key not in input_types:
                    raise status.invalid_argument(
                        f"Failed to process element: {index} key: {key} of 'instances' list. Error: "
                        f"Invalid argument: JSON object: does not have named input: {key}"
                    )
                columns.setdefault(key, []).append(_instance_item(value, key, index, input_types, columns, True))
            if sorted(item) != names:
                raise status.invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: {_debug(item)} keys must "
                    f"be equal to: {','.join(names)}"
                )
        else:
            if _element_is_object(item):
                raise status.invalid_argument(f"Expecting value/list but got object at item {index} of input list")
            columns.setdefault(names[0], []).append(_instance_item(item, names[0], index, input_types, columns, False))
    return {name: np.stack(values) for name, values in columns.items()}


def _instance_item(
    value: Any,
    name: str,
    index: int,
    input_types: Mapping[str, int],
    columns: Mapping[str, list[np.ndarray]],
    by_name: bool,
) -> np.ndarray:
    try:
        array = json_to_array(value, input_types[name])
    except status.ServingError as error:
        key = f" key: {name}" if by_name else ""
        raise status.invalid_argument(
            f"Failed to process element: {index}{key} of 'instances' list. Error: Invalid argument: {error.message}"
        ) from None
    previous = columns.get(name)
    if previous:
        first = previous[0]
        if first.size != array.size:
            raise status.invalid_argument(
                f"Failed to process element: {index} of 'instances' list. Error: Invalid argument: "
                f"Expecting tensor size: {first.size} but got: {array.size}"
            )
        if first.shape != array.shape:
            raise status.invalid_argument(
                f"Failed to process element: {index} of 'instances' list. Error: Invalid argument: "
                f"Expecting shape {list(first.shape)} but got: {list(array.shape)}"
            )
    return array


def predict_inputs(document: Mapping[str, Any], input_types: Mapping[str, int]) -> tuple[dict[str, np.ndarray], str]:
    """The input tensors of a ``:predict`` body (``FillPredictRequestFromJson``).

    Args:
        document: the parsed body.
        input_types: the signature's input alias -> DataType.

    Returns:
        (input alias -> array, ``"row"`` or ``"columnar"``).

    Raises:
        ServingError: INVALID_ARGUMENT for any malformed body.
    """
    if not input_types:
        raise status.invalid_argument("Failed to get input map for signature")
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances and has_inputs:
        raise status.invalid_argument(
            f"JSON Value: {_debug(dict(document))} Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys to exist "
        )
    if has_instances:
        items = document["instances"]
        if not isinstance(items, list):
            raise status.invalid_argument(
                f"JSON Value: {_debug(dict(document))} Expecting 'instances' to be an list/array"
            )
        if not items:
            raise status.invalid_argument(f"JSON Value: {_debug(dict(document))} No values in 'instances' array")
        return _instances(items, input_types), "row"
    if has_inputs:
        value = document["inputs"]
        if not _element_is_object(value):
            if len(input_types) > 1:
                raise status.invalid_argument(
                    "inputs is a plain value/list, but expecting an object as multiple input tensors required as "
                    "per tensorinfo_map"
                )
            name = next(iter(input_types))
            return {name: json_to_array(value, input_types[name])}, "columnar"
        arrays = {}
        for name, dtype in input_types.items():
            if name not in value:
                raise status.invalid_argument(f"Missing named input: {name} in 'inputs' object.")
            arrays[name] = json_to_array(value[name], dtype)
        return arrays, "columnar"
    raise status.invalid_argument("Missing 'inputs' or 'instances' key")


# --- responses -----------------------------------------------------------------------------------------------------


def _to_json(array: np.ndarray, as_bytes: bool) -> Any:
    if array.dtype == object or array.dtype.kind in "SU":

        def convert(item: Any) -> Any:
            raw = item if isinstance(item, bytes) else str(item).encode()
            if as_bytes:
                return {B64: base64.b64encode(raw).decode()}
            return raw.decode("utf-8", errors="replace")

        return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else array.tolist()
    if array.dtype.kind == "f" and array.dtype != np.float64 and array.size:
        # float32 values print in their shortest float32 form (0.1, not 0.10000000149011612), as TF Serving does.
        return array.astype(str).astype(np.float64).tolist()
    return array.tolist()


def _is_bytes_output(name: str, array: np.ndarray) -> bool:
    return (array.dtype == object or array.dtype.kind == "S") and name.endswith("_bytes")


def predict_response(outputs: Mapping[str, np.ndarray], form: str) -> dict[str, Any]:
    """A ``:predict`` response body: ``predictions`` for the row form, ``outputs`` for the columnar one.

    Raises:
        ServingError: INVALID_ARGUMENT when a row response cannot be made (scalar output, batch sizes differ).
    """
    if not outputs:
        raise status.invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if form == "columnar":
        if len(names) == 1:
            return {"outputs": _to_json(outputs[names[0]], _is_bytes_output(names[0], outputs[names[0]]))}
        return {"outputs": {n: _to_json(outputs[n], _is_bytes_output(n, outputs[n])) for n in names}}
    batch = -1
    for name in names:
        if outputs[name].ndim == 0:
            raise status.invalid_argument(f"Tensor name: {name} has no shape information ")
        size = outputs[name].shape[0]
        if batch >= 0 and size != batch:
            raise status.invalid_argument(f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}")
        batch = size
    columns = {n: _to_json(outputs[n], _is_bytes_output(n, outputs[n])) for n in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{n: columns[n][i] for n in names} for i in range(batch)]}


# --- classify / regress ----------------------------------------------------------------------------------------------


def _add_feature_value(value: Any, name: str, feature: feature_pb2.Feature) -> None:
    kind = feature.WhichOneof("kind")

    def require(expected: str) -> None:
        if kind is not None and kind != expected:
            raise status.invalid_argument(
                f"Unexpected element type in feature: {name} expecting type: {kind.replace('_list', '')}"
            )

    if value is None or isinstance(value, list) or (isinstance(value, dict) and not is_b64(value)):
        raise status.invalid_argument(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
    if isinstance(value, bool):
        require("int64_list")
        feature.int64_list.value.append(int(value))
    elif isinstance(value, dict):
        require("bytes_list")
        feature.bytes_list.value.append(_decode_b64(value))
    elif isinstance(value, str):
        require("bytes_list")
        feature.bytes_list.value.append(value.encode())
    elif isinstance(value, float):
        require("float_list")
        feature.float_list.value.append(value)
    else:
        require("int64_list")
        if value >= 2**63:
            raise status.invalid_argument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        feature.int64_list.value.append(value)


def json_to_example(value: Any) -> example_pb2.Example:
    """One JSON object of ``examples`` (or ``context``) as a ``tf.Example`` (``MakeExampleFromJsonObject``).

    Raises:
        ServingError: INVALID_ARGUMENT for values that are not a feature's type.
    """
    if not isinstance(value, dict):
        raise status.invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    example = example_pb2.Example()
    for name, content in value.items():
        feature = feature_pb2.Feature()
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(item, name, feature)
        example.features.feature[name].CopyFrom(feature)
    return example


def classify_regress_examples(
    document: Mapping[str, Any],
) -> tuple[list[example_pb2.Example], example_pb2.Example | None]:
    """The examples (and optional context) of a ``:classify``/``:regress`` body.

    Raises:
        ServingError: INVALID_ARGUMENT for a missing, non-list or empty ``examples``, or bad features.
    """
    context = json_to_example(document["context"]) if "context" in document else None
    if "examples" not in document:
        raise status.invalid_argument(
            f"JSON Value: {_debug(dict(document))} When method is classify, key 'examples' is expected and was not "
            "found"
        )
    examples = document["examples"]
    if not isinstance(examples, list):
        raise status.invalid_argument(
            f"JSON Value: {_debug(dict(document))} Expecting 'examples' value to be an list/array"
        )
    if not examples:
        raise status.invalid_argument(f"JSON Value: {_debug(dict(document))} 'examples' value is an empty array")
    return [json_to_example(example) for example in examples], context
