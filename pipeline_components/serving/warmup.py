"""Warmup replay: the requests in ``assets.extra/tf_serving_warmup_requests`` run before a version serves.

The file is a TFRecord file of ``PredictionLog`` records, as TF Serving reads it
(tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc): at most 1000 records, each replayed once;
any failure fails the load, so a version whose warmup breaks never becomes available.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from pipeline_components.errors import ServingError
from pipeline_components.serving import inference, status
from pipeline_components.serving.protos import arrays_from_inputs, serialized_examples
from pipeline_components.serving.servable import DEFAULT_SIGNATURE, Servable

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000


def warmup(servable: Servable) -> int:
    """Replay a version's warmup requests, if it has any.

    Args:
        servable: the freshly loaded version.

    Returns:
        The number of records replayed (0 without a warmup file).

    Raises:
        ServingError: a record that does not parse, an unsupported log type, too many records, or a failing
            request.
    """
    path = servable.path / WARMUP_FILE
    if not path.exists():
        return 0
    count = 0
    try:
        records = [record.numpy() for record in tf.data.TFRecordDataset(str(path))]
    except tf.errors.OpError as error:
        raise ServingError(status.DATA_LOSS, f"Failed to read warmup file {path}: {error.message}") from None
    for record in records:
        count += 1
        if count > MAX_RECORDS:
            raise status.invalid_argument(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(record)
        except Exception:
            raise ServingError(status.DATA_LOSS, f"Failed to parse PredictionLog record {count} of {path}") from None
        kind = log.WhichOneof("log_type")
        try:
            if kind == "predict_log":
                request = log.predict_log.request
                signature = servable.signature(request.model_spec.signature_name)
                if signature is None:
                    raise status.failed_precondition(
                        f'Serving signature key "{request.model_spec.signature_name or DEFAULT_SIGNATURE}" not found.'
                    )
                inference.predict(
                    servable,
                    request.model_spec.signature_name,
                    arrays_from_inputs(request.inputs, signature),
                    list(request.output_filter),
                )
            elif kind == "classify_log":
                request_c = log.classify_log.request
                inference.classify(servable, request_c.model_spec.signature_name, serialized_examples(request_c.input))
            elif kind == "regress_log":
                request_r = log.regress_log.request
                inference.regress(servable, request_r.model_spec.signature_name, serialized_examples(request_r.input))
            else:
                raise status.ServingError(
                    status.UNIMPLEMENTED, f"Unsupported log_type for warmup: {kind} (record {count} of {path})"
                )
        except ServingError as error:
            raise ServingError(error.code, f"Warmup request {count} of {path} failed: {error.message}") from None
    return count
