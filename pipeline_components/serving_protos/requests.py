"""Requests to TF Serving's PredictionService, built one way for the client and the fleet's rollout."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline_components.serving_protos.dtypes import EncodingError
from pipeline_components.serving_protos.examples import make_example
from pipeline_components.serving_protos.messages import message
from pipeline_components.serving_protos.tensors import make_tensor_proto, tensor_to_list


def fill_model_spec(
    spec: Any, *, model: str, version: int | None = None, label: str | None = None, signature: str | None = None
) -> None:
    """Name the model, then a version or else a label (a ``oneof``: a version wins), and the signature if any."""
    spec.name = model
    if version is not None:
        spec.version.value = version
    elif label:
        spec.version_label = label
    if signature:
        spec.signature_name = signature


def columns_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Rows of features (one dict per example) as one column per feature, named by the first row.

    Raises:
        EncodingError: a feature that some rows lack.
    """
    columns: dict[str, list[Any]] = {}
    for name in rows[0] if rows else ():
        column = [row.get(name) for row in rows]
        if any(value is None for value in column):
            raise EncodingError(f"feature {name!r} is missing from some instances; every row needs it")
        columns[name] = column
    return columns


def predict_request(
    *,
    model: str,
    columns: Mapping[str, Sequence[Any]],
    dtypes: Mapping[str, str | int] | None = None,
    version: int | None = None,
    label: str | None = None,
    signature: str = "serving_default",
) -> Any:
    """A ``PredictRequest`` with one tensor per feature, a batch along the first dimension (TF Serving's columns).

    Args:
        model, version, label, signature: the model spec (see ``fill_model_spec``).
        columns: feature name -> its values, one per example.
        dtypes: feature name -> dtype, e.g. the signature's; a feature without one is typed by its values.

    Raises:
        EncodingError (a ``ValueError``): a value that does not convert to its feature's dtype, named.
    """
    request = message("tensorflow.serving.PredictRequest")()
    fill_model_spec(request.model_spec, model=model, version=version, label=label, signature=signature)
    for name, values in columns.items():
        try:
            make_tensor_proto(list(values), (dtypes or {}).get(name), into=request.inputs[name])
        except EncodingError as error:
            raise EncodingError(f"feature {name!r}: {error}") from None
    return request


def classification_request(
    *,
    model: str,
    rows: Sequence[Mapping[str, Any]],
    dtypes: Mapping[str, str | int] | None = None,
    version: int | None = None,
    label: str | None = None,
    signature: str = "serving_classify",
) -> Any:
    """A ``ClassificationRequest`` of one tf.Example per row (``Input.example_list``)."""
    request = message("tensorflow.serving.ClassificationRequest")()
    fill_model_spec(request.model_spec, model=model, version=version, label=label, signature=signature)
    for row in rows:
        request.input.example_list.examples.add().CopyFrom(make_example(row, dtypes))
    return request


def outputs_as_rows(outputs: Mapping[str, Any]) -> list[Any]:
    """A PredictResponse's outputs in REST's row form: a single output's rows, or one dict per row for several.

    Strings come back as text (UTF-8), as REST's ``predictions`` carry them.
    """
    columns = {name: tensor_to_list(proto) for name, proto in outputs.items()}
    columns = {
        name: [v.decode() if isinstance(v, bytes) else v for v in value] if isinstance(value, list) else value
        for name, value in columns.items()
    }
    if len(columns) == 1:
        (only,) = columns.values()
        return only if isinstance(only, list) else [only]
    length = min(len(value) for value in columns.values() if isinstance(value, list))
    return [{name: value[i] for name, value in columns.items()} for i in range(length)]
