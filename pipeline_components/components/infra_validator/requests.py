"""Requests built from real serialized tf.Examples: warmup records (TF Serving's format), REST and gRPC queries.

Warmup follows TF Serving (tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc): a TFRecord file
``assets.extra/tf_serving_warmup_requests`` of ``PredictionLog`` records, at most 1,000, each replayed once when a
version loads. The records alternate a ``predict`` on ``serving_default`` (raw features, what REST clients call)
and a ``classify`` on ``serving_classify`` (tf.Example, what gRPC clients call), so both paths are warm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving refuses more
PREDICT_SIGNATURE = "serving_default"
CLASSIFY_SIGNATURE = "serving_classify"

_DEFAULTS = {"DT_STRING": "", "DT_INT64": 0, "DT_INT32": 0, "DT_FLOAT": 0.0, "DT_DOUBLE": 0.0, "DT_BOOL": False}


def raw_features(serialized: bytes, inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One example's values for a raw-feature signature's inputs (JSON-able: strings decoded, one value each).

    Args:
        serialized: a serialized ``tf.Example``.
        inputs: the signature's inputs as the inspection report lists them (name -> dtype, shape).
    """
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(serialized)
    row: dict[str, Any] = {}
    for name, spec in inputs.items():
        feature = example.features.feature.get(name)
        kind = feature.WhichOneof("kind") if feature is not None else None
        values = list(getattr(feature, kind).value) if kind else []
        if not values:
            row[name] = _DEFAULTS.get(spec["dtype"], 0)
        elif spec["dtype"] == "DT_STRING":
            row[name] = values[0].decode("utf-8", "replace")
        elif spec["dtype"] in ("DT_FLOAT", "DT_DOUBLE"):
            row[name] = float(values[0])
        else:
            row[name] = int(values[0])
    return row


def _dtype(enum_name: str) -> Any:
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    return tf.dtypes.as_dtype(types_pb2.DataType.Value(enum_name))


def raw_tensors(rows: list[dict[str, Any]], inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Rows of raw features as a dict of 1-D tensors, for calling the signature in-process."""
    import tensorflow as tf

    return {
        name: tf.constant([row[name] for row in rows], dtype=_dtype(spec["dtype"])) for name, spec in inputs.items()
    }


def write_warmup(
    path: Path,
    serialized_examples: list[bytes],
    signatures: dict[str, Any],
    model_name: str,
    records: int,
) -> dict[str, int]:
    """Write the warmup file; return how many records of each kind it holds.

    Args:
        path: the file (``<SavedModel>/assets.extra/tf_serving_warmup_requests``).
        serialized_examples: real examples to build the requests from (reused round-robin).
        signatures: the model's serving signatures (inspection report).
        model_name: the model name the requests carry.
        records: how many records (at most 1,000).
    """
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2

    if not serialized_examples:
        raise ValueError("no examples to build warmup requests from")
    records = min(records, MAX_WARMUP_RECORDS)
    kinds = [k for k in (PREDICT_SIGNATURE, CLASSIFY_SIGNATURE) if k in signatures]
    if not kinds:
        raise ValueError(f"the model has neither {PREDICT_SIGNATURE} nor {CLASSIFY_SIGNATURE}: nothing to warm up")
    counts = {"predict_log": 0, "classify_log": 0}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for index in range(records):
            example = serialized_examples[index % len(serialized_examples)]
            kind = kinds[index % len(kinds)]
            log = prediction_log_pb2.PredictionLog()
            if kind == PREDICT_SIGNATURE:
                request = predict_pb2.PredictRequest()
                request.model_spec.name = model_name
                request.model_spec.signature_name = PREDICT_SIGNATURE
                inputs = signatures[PREDICT_SIGNATURE]["inputs"]
                row = raw_features(example, inputs)
                for name, spec in inputs.items():
                    request.inputs[name].CopyFrom(tf.make_tensor_proto([row[name]], dtype=_dtype(spec["dtype"])))
                log.predict_log.request.CopyFrom(request)
                counts["predict_log"] += 1
            else:
                classify = classification_pb2.ClassificationRequest()
                classify.model_spec.name = model_name
                classify.model_spec.signature_name = CLASSIFY_SIGNATURE
                classify.input.example_list.examples.add().ParseFromString(example)
                log.classify_log.request.CopyFrom(classify)
                counts["classify_log"] += 1
            writer.write(log.SerializeToString())
    return counts


def read_warmup(path: Path) -> list[Any]:
    """The ``PredictionLog`` records of a warmup file (raises if a record does not parse)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in tf.data.TFRecordDataset(str(path))
    ]
