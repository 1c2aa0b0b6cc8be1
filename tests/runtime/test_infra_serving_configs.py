"""The TF Serving config files of the production fleet (infra/serving/) parse as the protos tensorflow_model_server
reads them as, and pass the checks it makes before serving.

Runtime environment: the ModelServerConfig proto comes from tensorflow-serving-api.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

from pipeline_components.fleet import CANARY_LABEL, STABLE_LABEL
from pipeline_components.serving.model_config import (
    DEFAULT_PROMETHEUS_PATH,
    parse_model_server_config,
    read_monitoring_config,
    validate_model_config_list,
)
from pipeline_components.settings import CHECKOUT

SERVING = CHECKOUT / "infra" / "serving"


def batching_parameters_class() -> Any:
    """``tensorflow.serving.BatchingParameters`` (session_bundle_config.proto), the fields this project sets.

    tensorflow-serving-api does not ship that proto, so the message is built here with the same names and types
    (text format matches fields by name, so an unknown or misspelt key in the file fails to parse).
    """
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    file = descriptor_pb2.FileDescriptorProto(
        name="runway/tests/session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[wrappers.name],
    )
    message = file.message_type.add(name="BatchingParameters")
    int64_value = ".google.protobuf.Int64Value"
    for number, name in enumerate(
        ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"), start=1
    ):
        message.field.add(name=name, number=number, type=11, label=1, type_name=int64_value)
    message.field.add(name="allowed_batch_sizes", number=6, type=3, label=3)  # repeated int64
    message.field.add(name="pad_variable_length_inputs", number=7, type=8, label=1)  # bool
    pool = descriptor_pool.DescriptorPool()
    pool.Add(wrappers)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def test_example_model_config_is_what_the_rollout_writes() -> None:
    config = parse_model_server_config((SERVING / "models.config").read_text(), source="infra/serving/models.config")
    validate_model_config_list(config)
    (model,) = config.model_config_list.config
    assert model.base_path == f"/var/lib/runway/models/{model.name}"
    versions = set(model.model_version_policy.specific.versions)
    assert set(model.version_labels) == {STABLE_LABEL, CANARY_LABEL}
    assert set(model.version_labels.values()) == versions, "every label names a loaded version, and only those load"


def test_monitoring_config_enables_prometheus_where_prometheus_scrapes() -> None:
    monitoring = read_monitoring_config(str(SERVING / "monitoring.config"))
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == DEFAULT_PROMETHEUS_PATH


def test_batching_parameters_are_valid_for_tf_serving() -> None:
    batching = text_format.Parse((SERVING / "batching.config").read_text(), batching_parameters_class()())
    assert batching.max_batch_size.value >= 64, "the benchmarks send batches of 64"
    assert 0 < batching.batch_timeout_micros.value <= 10_000
    assert batching.num_batch_threads.value >= 1 and batching.max_enqueued_batches.value >= 1
    # TF Serving refuses allowed sizes that are not increasing or whose last one is not max_batch_size.
    sizes = list(batching.allowed_batch_sizes)
    assert sizes == sorted(set(sizes)) and sizes[-1] == batching.max_batch_size.value
