"""TF Serving's configuration files: ``--model_config_file`` (``ModelServerConfig``) and the monitoring config.

Both are text protos of tensorflow-serving-api's messages, read the way tensorflow_model_server reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeAlias

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from tensorflow_serving.config import model_server_config_pb2

from pipeline_components.serving import status

ModelServerConfig: TypeAlias = model_server_config_pb2.ModelServerConfig
ModelConfig: TypeAlias = model_server_config_pb2.ModelConfig


def _monitoring_config_class() -> Any:
    """``tensorflow.serving.MonitoringConfig`` (tensorflow_serving/config/monitoring_config.proto).

    The tensorflow-serving-api wheel does not ship this proto's module, so its two messages are built here from
    the same definition (same package, names and field numbers), in a private descriptor pool.
    """
    file = descriptor_pb2.FileDescriptorProto(
        name="runway/tensorflow_serving/config/monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=8, label=1, json_name="enable")  # bool
    prometheus.field.add(name="path", number=2, type=9, label=1, json_name="path")  # string
    monitoring = file.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=11,  # message
        label=1,
        type_name=".tensorflow.serving.PrometheusConfig",
        json_name="prometheusConfig",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


MonitoringConfig = _monitoring_config_class()

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath


def single_model_config(model_name: str, base_path: str) -> ModelServerConfig:
    """The config ``--model_name`` and ``--model_base_path`` stand for (``BuildSingleModelConfig``).

    Args:
        model_name: the model's name.
        base_path: its base path; made absolute, as TF Serving requires absolute base paths.

    Returns:
        A one-model ``ModelServerConfig`` with the default (latest) version policy.
    """
    config = ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = model_name
    model.base_path = str(Path(base_path).absolute())
    model.model_platform = "tensorflow"
    return config


def _parse_text_proto(text: str, message: Any, what: str) -> Any:
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise status.invalid_argument(f"{what} is not a valid text {message.DESCRIPTOR.name}: {error}") from None


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as error:
        raise status.not_found(f"cannot read {what} {path}: {error}") from None


def parse_model_server_config(text: str, *, source: str = "model config") -> ModelServerConfig:
    """Parse a text ``ModelServerConfig``.

    Args:
        text: the file's content.
        source: what to call it in an error.

    Returns:
        The parsed config.

    Raises:
        ServingError: INVALID_ARGUMENT when it does not parse.
    """
    return _parse_text_proto(text, ModelServerConfig(), source)


def read_model_server_config(path: str) -> ModelServerConfig:
    """Read ``--model_config_file``.

    Raises:
        ServingError: NOT_FOUND when the file is missing, INVALID_ARGUMENT when it does not parse.
    """
    return parse_model_server_config(_read_text(path, "model config file"), source=f"model config file {path}")


def read_monitoring_config(path: str) -> Any:
    """Read ``--monitoring_config_file`` (a text ``MonitoringConfig``).

    Raises:
        ServingError: NOT_FOUND when the file is missing, INVALID_ARGUMENT when it does not parse.
    """
    text = _read_text(path, "monitoring config file")
    return _parse_text_proto(text, MonitoringConfig(), f"monitoring config file {path}")


def validate_model_config_list(config: ModelServerConfig) -> None:
    """The checks TF Serving makes before accepting a config (``ValidateModelConfigList``, server_core.cc).

    Raises:
        ServingError: INVALID_ARGUMENT for a config that is not a model_config_list, a repeated model name, a
            relative base path or a platform other than tensorflow.
    """
    if config.WhichOneof("config") != "model_config_list":
        raise status.invalid_argument(
            "ServerModelConfig type not supported by HandleReloadConfigRequest. "
            "Only ModelConfigList is currently supported"
        )
    names: set[str] = set()
    for model in config.model_config_list.config:
        if model.name in names:
            raise status.invalid_argument(f"Illegal to list model {model.name} multiple times in config list")
        names.add(model.name)
        if not Path(model.base_path).is_absolute():
            raise status.invalid_argument(
                f"Expected model {model.name} to have an absolute path or URI; got base_path()={model.base_path}"
            )
        platform = model.model_platform or "tensorflow"
        if platform != "tensorflow":
            raise status.invalid_argument(f"Model {model.name} requests unsupported platform {platform}")
