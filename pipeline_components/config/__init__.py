"""Pipeline configuration: one versioned YAML file per pipeline, validated on load.

The file says *what* the pipeline does (data layout, features, label, model, thresholds, serving target); the
machine settings (``settings.py``) say *where*. ``configs/flights.yaml`` is the annotated reference.

- ``sections.py``: one strict model per section of the file (``serving.py``: the serving section's);
- ``pipeline.py``: ``PipelineConfig`` (the whole file), ``load_pipeline_config``, ``find_pipeline_configs``;
- ``spans.py``: TFX's ``{SPAN}`` placeholders in span patterns.
"""

from __future__ import annotations

from pipeline_components.config.pipeline import PipelineConfig, find_pipeline_configs, load_pipeline_config
from pipeline_components.config.sections import (
    STRATEGIES,
    TFLITE_VARIANTS,
    DataConfig,
    DeliveryConfig,
    EvaluationConfig,
    FeaturesConfig,
    LabelConfig,
    LabelValidationConfig,
    ModelConfig,
    ScheduleConfig,
    StrategyName,
    TFLiteConfig,
    TFLiteVariant,
    TrainingClusterConfig,
    TrainingConfig,
    ValidationConfig,
)
from pipeline_components.config.serving import (
    CanaryConfig,
    InfraValidationConfig,
    RequestLoggingConfig,
    ServingConfig,
    ServingContract,
    SignatureContract,
    SignatureDtype,
)
from pipeline_components.config.spans import fill_span, span_folder_regex

__all__ = [
    "STRATEGIES",
    "TFLITE_VARIANTS",
    "CanaryConfig",
    "DataConfig",
    "DeliveryConfig",
    "EvaluationConfig",
    "FeaturesConfig",
    "InfraValidationConfig",
    "LabelConfig",
    "LabelValidationConfig",
    "ModelConfig",
    "PipelineConfig",
    "RequestLoggingConfig",
    "ScheduleConfig",
    "ServingConfig",
    "ServingContract",
    "SignatureContract",
    "SignatureDtype",
    "StrategyName",
    "TFLiteConfig",
    "TFLiteVariant",
    "TrainingClusterConfig",
    "TrainingConfig",
    "ValidationConfig",
    "fill_span",
    "find_pipeline_configs",
    "load_pipeline_config",
    "span_folder_regex",
]
