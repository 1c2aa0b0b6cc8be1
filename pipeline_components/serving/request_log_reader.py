"""Read the request log back: the closed ``<filename_prefix>-*.tfrecord`` files, as records or as rows.

A row is one example of a logged request: the features it was sent with and the predictions it got, with the
model version that answered. Predict requests are split along their first (batch) dimension; Classify and Regress
requests give one row per tf.Example (its context merged in). Files still being written (``*.tfrecord.partial``)
are never read: the server renames a file only once it is whole (``request_log``). Reading needs no TensorFlow
(``serving_protos``), so the orchestrator reads the logs too (the canary analysis, ``fleet.canary``).

    rows = read_rows(closed_files("/var/log/runway/flights_delay"), model_name="flights_delay")
    rows[0].version, rows[0].features["distance"], rows[0].predictions["probabilities"]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from google.protobuf.message import Message

from pipeline_components.serving_protos import arrays
from pipeline_components.serving_protos.messages import message
from pipeline_components.serving_protos.tfrecord import read_records

# A closed log file's suffix (the writer, request_log, imports it from here: the reader imports no TensorFlow).
FILE_SUFFIX = ".tfrecord"
PredictionLog: TypeAlias = Message  # tensorflow.serving.PredictionLog


@dataclass(frozen=True)
class LoggedRow:
    """One example of a logged request.

    Attributes:
        model_name: the model that answered.
        version: its version.
        features: input name -> value (a scalar, or a list for a value with several elements); strings as bytes.
        predictions: output name -> value (Predict); ``classes`` and ``scores`` (Classify); ``value`` (Regress).
        api: ``predict``, ``classify`` or ``regress``.
        signature_name: the signature that ran.
        timestamp_secs: when the request was answered (seconds since the epoch).
    """

    model_name: str
    version: int
    features: dict[str, Any]
    predictions: dict[str, Any]
    api: str
    signature_name: str
    timestamp_secs: int


def closed_files(filename_prefix: str | Path) -> list[Path]:
    """The closed log files of a ``filename_prefix``, oldest first (their names start with the UTC time)."""
    prefix = Path(filename_prefix).absolute()
    if not prefix.parent.is_dir():
        return []
    return sorted(prefix.parent.glob(f"{prefix.name}-*{FILE_SUFFIX}"))


def read_prediction_logs(paths: Iterable[str | Path]) -> Iterator[PredictionLog]:
    """Every ``PredictionLog`` of these files, in order."""
    parse = message("tensorflow.serving.PredictionLog").FromString
    for path in paths:
        for record in read_records(path):
            yield parse(record)


def read_rows(
    paths: Iterable[str | Path],
    *,
    model_name: str | None = None,
    version: int | None = None,
    since_secs: int | None = None,
) -> list[LoggedRow]:
    """The rows of these files' records, optionally only those of one model, one version, or since a time.

    Args:
        paths: log files (``closed_files``).
        model_name: keep only this model's records.
        version: keep only this version's records.
        since_secs: keep only records answered at or after this time (seconds since the epoch).

    Returns:
        One row per example, in the order they were logged.
    """
    rows: list[LoggedRow] = []
    for prediction_log in read_prediction_logs(paths):
        metadata = prediction_log.log_metadata
        spec = metadata.model_spec
        if model_name is not None and spec.name != model_name:
            continue
        if version is not None and spec.version.value != version:
            continue
        if since_secs is not None and metadata.timestamp_secs < since_secs:
            continue
        api = prediction_log.WhichOneof("log_type") or ""
        for features, predictions in _examples(prediction_log, api):
            rows.append(
                LoggedRow(
                    model_name=spec.name,
                    version=spec.version.value,
                    signature_name=spec.signature_name,
                    api=api.removesuffix("_log"),
                    timestamp_secs=metadata.timestamp_secs,
                    features=features,
                    predictions=predictions,
                )
            )
    return rows


def _examples(prediction_log: PredictionLog, api: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    if api == "predict_log":
        log = prediction_log.predict_log
        inputs = {name: arrays.tensor_to_array(t) for name, t in log.request.inputs.items()}
        outputs = {name: arrays.tensor_to_array(t) for name, t in log.response.outputs.items()}
        batch = _batch_size(inputs)
        return [
            ({n: _value(a, i, batch) for n, a in inputs.items()}, {n: _value(a, i, batch) for n, a in outputs.items()})
            for i in range(batch)
        ]
    if api == "classify_log":
        log = prediction_log.classify_log
        answers = [
            {"classes": [c.label for c in row.classes], "scores": [c.score for c in row.classes]}
            for row in log.response.result.classifications
        ]
        return list(zip(_example_features(log.request.input), answers, strict=False))
    if api == "regress_log":
        log = prediction_log.regress_log
        answers = [{"value": r.value} for r in log.response.result.regressions]
        return list(zip(_example_features(log.request.input), answers, strict=False))
    return []


def _batch_size(inputs: dict[str, Any]) -> int:
    sizes = [a.shape[0] for a in inputs.values() if a.ndim > 0]
    return max(sizes) if sizes else 1


def _value(array: Any, index: int, batch: int) -> Any:
    # A value without the batch dimension (a scalar, or a shape of another size) belongs to every row.
    value = array[index] if array.ndim > 0 and array.shape[0] == batch else array
    return value.tolist() if hasattr(value, "tolist") else value


def _example_features(model_input: Any) -> list[dict[str, Any]]:
    kind = model_input.WhichOneof("kind")
    if kind == "example_list_with_context":
        context = _features(model_input.example_list_with_context.context)
        examples = model_input.example_list_with_context.examples
    else:
        context, examples = {}, model_input.example_list.examples
    return [{**context, **_features(example)} for example in examples]


def _features(example: Any) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        features[name] = values[0] if len(values) == 1 else values
    return features
