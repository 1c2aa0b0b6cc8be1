"""TF Serving's JSON encoding of tensors (tensorflow_serving/util/json_tensor.cc), and the bodies of its REST API.

Request side: the row (``instances``) and columnar (``inputs``) forms of ``:predict``, with ``{"b64": ...}`` for
binary strings, checked the way TF Serving checks them (same messages where it matters); ``examples`` and
``context`` of ``:classify``/``:regress`` become ``tf.Example`` protos through the project's one Example encoder
(``serving_protos.examples``). Response side: ``predictions`` (row) or ``outputs`` (columnar), with a string
output whose alias ends in ``_bytes`` written as ``{"b64": ...}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline_components.serving import status
from pipeline_components.serving_protos import examples as json_examples
from pipeline_components.serving_protos.arrays import NUMPY_TYPES
from pipeline_components.serving_protos.dtypes import BY_NAME, EncodingError, type_name
from pipeline_components.serving_protos.examples import B64, is_b64, json_text, json_type

__all__ = [
    "classify_regress_examples",
    "is_b64",
    "json_to_array",
    "json_to_example",
    "parse_body",
    "predict_inputs",
    "predict_response",
    "signature_name_of",
]

DT_FLOAT, DT_DOUBLE, DT_HALF, DT_STRING, DT_BOOL = (
    BY_NAME[name].number for name in ("DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_STRING", "DT_BOOL")
)
DT_BFLOAT16 = 14  # not encoded by runway, but a float type for TF Serving's JSON checks
DT_INT8, DT_INT16, DT_INT32, DT_UINT8, DT_INT64, DT_UINT32, DT_UINT64 = (
    BY_NAME[name].number
    for name in ("DT_INT8", "DT_INT16", "DT_INT32", "DT_UINT8", "DT_INT64", "DT_UINT32", "DT_UINT64")
)
_FLOAT_TYPES = {DT_FLOAT, DT_DOUBLE, DT_HALF, DT_BFLOAT16}
_INT_RANGES = {
    DT_INT8: (-(2**31), 2**31 - 1),  # rapidjson IsInt: any int32
    DT_INT16: (-(2**31), 2**31 - 1),
    DT_INT32: (-(2**31), 2**31 - 1),
    DT_UINT8: (-(2**31), 2**31 - 1),
    DT_INT64: (-(2**63), 2**63 - 1),
    DT_UINT32: (0, 2**32 - 1),
    DT_UINT64: (0, 2**64 - 1),
}


def _invalid(error: EncodingError) -> status.ServingError:
    return status.invalid_argument(str(error))


def _malformed(document: Mapping[str, Any], what: str) -> status.ServingError:
    """TF Serving's message for a body whose shape is wrong: the body, then what is wrong with it."""
    return status.invalid_argument(f"JSON Value: {json_text(dict(document))} {what}")


def _type_error(value: Any, dtype: int) -> status.ServingError:
    return status.invalid_argument(
        f"JSON Value: {json_text(value)} Type: {json_type(value)} is not of expected type: {type_name(dtype)}"
    )


def _decode_b64(value: Any) -> bytes:
    try:
        return json_examples.decode_b64(value)
    except EncodingError as error:
        raise _invalid(error) from None


def _scalar(value: Any, dtype: int) -> Any:
    if isinstance(value, dict):
        if dtype == DT_STRING:
            return _decode_b64(value)
        raise _type_error(value, dtype)
    if dtype == DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode()
    if dtype == DT_BOOL:
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
        f"Conversion of JSON Value: {json_text(value)} to type: {type_name(dtype)} is not supported yet",
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
                f"JSON Value: {json_text(value)} found at incorrect level: {level + 1} in the JSON DOM. "
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
        raise status.invalid_argument(
            f"JSON Value: {json_text(value)} is out of range for {type_name(dtype)}"
        ) from None
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
        raise status.invalid_argument(f"JSON Value: {json_text(document)} Is not object")
    return document


def signature_name_of(document: Mapping[str, Any]) -> str:
    """The optional ``signature_name`` of a request (empty when absent)."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise _malformed(document, "not formatted correctly. 'signature_name' key must be a string value.")
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
                    f"Failed to process element: {index} of 'instances' list. JSON object: {json_text(item)} keys must "
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
        raise _malformed(
            document, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        items = document["instances"]
        if not isinstance(items, list):
            raise _malformed(document, "Expecting 'instances' to be an list/array")
        if not items:
            raise _malformed(document, "No values in 'instances' array")
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


def json_to_example(value: Any) -> Any:
    """One JSON object of ``examples`` (or ``context``) as a ``tf.Example`` (``MakeExampleFromJsonObject``).

    Raises:
        ServingError: INVALID_ARGUMENT for values that are not a feature's type.
    """
    try:
        return json_examples.json_to_example(value)
    except EncodingError as error:
        raise _invalid(error) from None


def classify_regress_examples(
    document: Mapping[str, Any],
) -> tuple[list[Any], Any | None]:
    """The examples (and optional context) of a ``:classify``/``:regress`` body.

    Raises:
        ServingError: INVALID_ARGUMENT for a missing, non-list or empty ``examples``, or bad features.
    """
    context = json_to_example(document["context"]) if "context" in document else None
    if "examples" not in document:
        raise _malformed(document, "When method is classify, key 'examples' is expected and was not found")
    examples = document["examples"]
    if not isinstance(examples, list):
        raise _malformed(document, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _malformed(document, "'examples' value is an empty array")
    return [json_to_example(example) for example in examples], context
