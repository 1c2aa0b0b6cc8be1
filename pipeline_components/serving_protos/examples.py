"""Feature dicts and TF Serving's JSON examples -> ``tensorflow.Example``: the project's one Example encoder.

Two ways to decide each feature's list type, one function:

- **by dtype** (``make_example(row, dtypes)``, the client): the signature's dtype of the feature decides
  (``DT_STRING`` -> ``bytes_list``, integers and bools -> ``int64_list``, floats -> ``float_list``) and values are
  converted to it, so ``"precip": 0`` goes out as a float where the model wants one;
- **by JSON type** (no dtype; ``json_to_example``, the model server's ``:classify`` / ``:regress``): each value's
  JSON type decides, as TF Serving's ``MakeExampleFromJsonObject`` does (a string or ``{"b64": ...}`` -> bytes, a
  float -> float, an integer or a bool -> int64), with TF Serving's own messages for what it refuses.

``json_example`` goes the other way for the client's REST classify: the JSON object whose JSON-type encoding is
the same Example as ``make_example(row, dtypes)``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from pipeline_components.serving_protos.dtypes import EncodingError, resolve
from pipeline_components.serving_protos.messages import message
from pipeline_components.serving_protos.tensors import convert

B64 = "b64"
_LIST_OF_KIND = {"string": "bytes_list", "int": "int64_list", "bool": "int64_list", "float": "float_list"}


def json_text(value: Any) -> str:
    """A JSON value as TF Serving prints it in a message (compact)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


def json_type(value: Any) -> str:
    """The JSON type name TF Serving's messages use: Null, True, False, Object, Array, String or Number."""
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


def is_b64(value: Any) -> bool:
    """A ``{"b64": "<base64>"}`` object (exactly one string key ``b64``)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64), str)


def decode_b64(value: Any) -> bytes:
    """The bytes of a ``{"b64": ...}`` object.

    Raises:
        EncodingError: not such an object, or not valid base64 (TF Serving's messages).
    """
    if not is_b64(value):
        raise EncodingError(f"JSON Value: {json_text(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value[B64], validate=True)
    except (binascii.Error, ValueError):
        raise EncodingError("Unable to base64 decode") from None


def _json_value(value: Any, name: str, kind: str | None) -> tuple[str, Any]:
    """(list type, value) of one JSON element of feature ``name`` (``AddValueToFeature``)."""
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not is_b64(value)):
        raise EncodingError(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")
    converted: Any
    if isinstance(value, bool):
        found, converted = "int64_list", int(value)
    elif isinstance(value, dict):
        found, converted = "bytes_list", decode_b64(value)
    elif isinstance(value, str):
        found, converted = "bytes_list", value.encode()
    elif isinstance(value, bytes):
        found, converted = "bytes_list", value
    elif isinstance(value, float):
        found, converted = "float_list", value
    else:
        if value >= 2**63:
            raise EncodingError(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        found, converted = "int64_list", int(value)
    if kind is not None and kind != found:
        raise EncodingError(f"Unexpected element type in feature: {name} expecting type: {kind.replace('_list', '')}")
    return found, converted


def make_example(features: Mapping[str, Any], dtypes: Mapping[str, str | int] | None = None) -> Any:
    """A ``tensorflow.Example`` of one row of features (a scalar, or a list for several values).

    Args:
        features: feature name -> value(s).
        dtypes: feature name -> dtype (``DT_FLOAT``... or the enum value), e.g. from the ``serving_default``
            signature; a feature without one is encoded by its JSON type (see the module docstring).

    Raises:
        EncodingError (a ``ValueError``): a value that does not convert to its dtype, or JSON values of mixed or
            unexpected types (TF Serving's messages).
    """
    example = message("tensorflow.Example")()
    for name, content in features.items():
        values = list(content) if isinstance(content, list | tuple) else [content]
        feature = example.features.feature[name]
        dtype = (dtypes or {}).get(name)
        if dtype is not None:
            spec = resolve(dtype)
            try:
                converted = convert([decode_b64(v) if is_b64(v) else v for v in values], spec)
            except EncodingError as error:
                raise EncodingError(f"feature {name!r}: {error}") from None
            getattr(feature, _LIST_OF_KIND[spec.kind]).value.extend(
                int(v) if spec.kind == "bool" else v for v in converted
            )
            continue
        kind: str | None = None
        for value in values:
            kind, converted_value = _json_value(value, name, kind)
            getattr(feature, kind).value.append(converted_value)
    return example


def json_to_example(value: Any) -> Any:
    """One JSON object of a ``:classify`` / ``:regress`` body's ``examples`` (or ``context``) as an Example.

    Raises:
        EncodingError: not a JSON object, or a feature TF Serving would refuse (its messages).
    """
    if not isinstance(value, dict):
        raise EncodingError(f"Example must be JSON object but got JSON {json_type(value)}")
    return make_example(value)


def _kind(dtype: str | int | None) -> str | None:
    try:
        return resolve(dtype).kind if dtype is not None else None
    except EncodingError:  # a dtype runway does not encode: the value goes as it is, the server judges it
        return None


def json_example(row: Mapping[str, Any], dtypes: Mapping[str, str | int]) -> dict[str, Any]:
    """A row as the JSON object whose ``json_to_example`` is ``make_example(row, dtypes)``.

    A JSON example is typed by its JSON form (``10`` is an int64): a float feature's integers are written as
    floats (``10.0``) and an integer feature's floats and numeric strings as integers; other values are kept.
    """
    converted: dict[str, Any] = {}
    for name, value in row.items():
        kind = _kind(dtypes.get(name))
        if kind == "float" and isinstance(value, int | str) and not isinstance(value, bool):
            converted[name] = float(value)
        elif kind == "int" and isinstance(value, float | str):
            converted[name] = int(float(value))
        else:
            converted[name] = value
    return converted
