"""A whole pipeline configuration: its sections together, cross-section checks, loading and finding the files."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError, model_validator

from pipeline_components.config.monitoring import MonitoringConfig
from pipeline_components.config.sections import (
    NAME_PATTERN,
    DataConfig,
    EvaluationConfig,
    FeaturesConfig,
    LabelConfig,
    ModelConfig,
    ScheduleConfig,
    StrictModel,
    TFLiteConfig,
    TrainingConfig,
    ValidationConfig,
)
from pipeline_components.config.serving import (
    ServingConfig,
)
from pipeline_components.errors import ConfigError


class PipelineConfig(StrictModel):
    name: str = Field(pattern=NAME_PATTERN)
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
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
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
    def _sections_agree(self) -> PipelineConfig:
        # Every disagreement at once, one line each naming its keys (printed by _explain).
        problems = []
        if self.label.column in self.features.all:
            problems.append(f"label.column: '{self.label.column}' is also listed as a feature")
        for part in ("validation", "monitoring"):
            for section in ("drift", "skew"):
                unknown = sorted(set(getattr(getattr(self, part), section)) - set(self.features.all))
                if unknown:
                    problems.append(f"{part}.{section}: names features that are not features: {unknown}")
        column = self.data.span_column
        if column is not None and column in (*self.features.all, self.label.column):
            problems.append(f"data.span_column: '{column}' numbers the spans; it cannot also be a feature or the label")
        if self.data.preparer == "csv" and not self.data.source:
            problems.append("data.source: the csv preparer needs your CSV file (or folder of span folders)")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def source_path(self) -> Path | None:
        """``data.source`` resolved against this file's folder (the csv preparer's input)."""
        if not self.data.source:
            return None
        base = self.source.parent if self.source else Path.cwd()
        return (base / self.data.source).resolve()

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
    """One line per problem, each naming its key (a section's own checks may report several problems at once)."""
    lines = []
    for item in err.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        for line in message.split("\n"):
            # Cross-section checks name their keys themselves ("label.column: ..."); others get their location.
            lines.append(f"  - {where}: {line}" if where else f"  - {line}")
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
