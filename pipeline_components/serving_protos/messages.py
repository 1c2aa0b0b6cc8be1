"""Message classes built from the vendored descriptor set, in a private pool."""

from __future__ import annotations

from functools import cache
from importlib import resources

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

DESCRIPTOR_SET = "tf_serving.binpb"

# Short names for the messages clients use most, e.g. ``serving_protos.PredictRequest``.
SHORT_NAMES = {
    name.rsplit(".", 1)[1]: name
    for name in (
        "tensorflow.serving.PredictRequest",
        "tensorflow.serving.PredictResponse",
        "tensorflow.serving.ClassificationRequest",
        "tensorflow.serving.ClassificationResponse",
        "tensorflow.serving.RegressionRequest",
        "tensorflow.serving.RegressionResponse",
        "tensorflow.serving.GetModelMetadataRequest",
        "tensorflow.serving.GetModelMetadataResponse",
        "tensorflow.serving.SignatureDefMap",
        "tensorflow.serving.GetModelStatusRequest",
        "tensorflow.serving.GetModelStatusResponse",
        "tensorflow.serving.ModelVersionStatus",
        "tensorflow.serving.ReloadConfigRequest",
        "tensorflow.serving.ReloadConfigResponse",
        "tensorflow.serving.ModelServerConfig",
        "tensorflow.serving.ModelConfigList",
        "tensorflow.serving.ModelConfig",
        "tensorflow.serving.PredictionLog",
        "tensorflow.TensorProto",
        "tensorflow.Example",
        "tensorflow.Features",
        "tensorflow.Feature",
    )
}


@cache
def pool() -> descriptor_pool.DescriptorPool:
    """The private descriptor pool holding TF Serving's API (built once per process)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(
        resources.files(__package__).joinpath(DESCRIPTOR_SET).read_bytes()
    )
    private = descriptor_pool.DescriptorPool()
    for file in files.file:  # stored dependencies first
        private.Add(file)
    return private


@cache
def message(full_name: str) -> type[Message]:
    """The class of a TF Serving (or TensorFlow) message by its full name, e.g. ``tensorflow.serving.PredictRequest``.

    Raises:
        KeyError: no such message in TF Serving's API.
    """
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(full_name))
