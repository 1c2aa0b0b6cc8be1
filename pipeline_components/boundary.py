"""What the two environments agree on: exit codes, the result line, run parameters, where configurations live.

The orchestrator side (Airflow, the ``runway`` command) and the runtime side (TFX, TensorFlow) never import each
other; both import this module, which imports neither (only the typed configuration and the errors).

- **The runtime's process settings** (``RUNTIME_ENV``), **exit codes and the result line** of a runtime
  command (``python -m pipeline_components.runtime ...``): the runtime prints one ``RUNWAY_RESULT {json}`` line
  and exits 0, ``EXIT_GATE_FAILED`` (a data or model gate refused the run: fail, never retry),
  ``EXIT_NOT_RETRYABLE`` (the configuration or an input is wrong: a retry cannot succeed) or ``EXIT_SKIPPED``
  (nothing to do: dry run, not blessed); any other code is a failure that may be retried. An error message starts
  on an ``error: `` line and runs to the end of the output (``error_message``).
- **Typed run parameters**: what an operator may change per run, in Airflow's trigger form, without recompiling.
  Each has a JSON-schema type, a default taken from the pipeline configuration, and a description; the DAG turns
  them into Airflow ``Param``s (validated by the trigger form), the ``check_params`` task validates them again
  against the data on disk, and each TFX node task passes them to the runtime, which applies them to the node in
  the compiled IR just before TFX's launcher runs it (``pipeline_components.runtime.overrides``). TFX's own
  ``RuntimeParameter`` cannot reach inside ``TrainArgs``, ``custom_config`` or ``eval_config``, hence this
  mechanism; the values end up in the execution's properties in ML Metadata.
- **Locating a pipeline configuration** by name or path (``locate_pipeline_config``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_components.config import (
    STRATEGIES,
    TFLITE_VARIANTS,
    PipelineConfig,
    fill_span,
    find_pipeline_configs,
    span_folder_regex,
)
from pipeline_components.errors import ConfigError

RESULT_PREFIX = "RUNWAY_RESULT "  # the one line of JSON a runtime command prints for its caller
ERROR_PREFIX = "error: "  # a runtime command's error message starts on a line with this prefix (see error_message)
EXIT_GATE_FAILED = 3  # a data or model gate refused the run: fail, do not retry
EXIT_NOT_RETRYABLE = 4  # the configuration or an input file is wrong (ConfigError, DataError): fail, do not retry
EXIT_SKIPPED = 99  # nothing to do (dry run, not blessed): skip the task

# The runtime environment's process settings: legacy Keras 2 for TFX/tfmot, TensorFlow's C++ logs kept to
# warnings, unbuffered output so that lines reach the task log as they are written.
RUNTIME_ENV = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "1",
    "PYTHONUNBUFFERED": "1",
}


def error_message(lines: list[str]) -> str | None:
    """A runtime command's error message, every line of it: from its last ``error: `` line to the end.

    A configuration error lists one problem per line after its first; a caller that kept only the first line would
    show "... is not a valid pipeline configuration:" and nothing else.
    """
    starts = [index for index, line in enumerate(lines) if line.startswith(ERROR_PREFIX)]
    if not starts:
        return None
    first, *rest = lines[starts[-1] :]
    return "\n".join([first[len(ERROR_PREFIX) :], *rest]).rstrip()


def locate_pipeline_config(config_dir: Path, name: str) -> Path:
    """The configuration file of pipeline ``name`` in ``config_dir``, or ``name`` itself when it is a YAML path.

    Raises:
        ConfigError: no pipeline of that name, with the names there are.
    """
    if name.endswith((".yaml", ".yml")):
        return Path(name)
    configs = find_pipeline_configs(config_dir)
    if name not in configs:
        known = ", ".join(sorted(configs)) or "none"
        raise ConfigError(f"no pipeline named '{name}' in {config_dir} (known: {known})")
    return configs[name]


@dataclass(frozen=True)
class RunParameter:
    name: str
    schema: dict[str, Any]
    description: str
    section: str

    def default(self, config: PipelineConfig) -> Any:
        return _DEFAULTS[self.name](config)


_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

PARAMETERS: tuple[RunParameter, ...] = (
    RunParameter(
        "span",
        {"type": ["null", "integer"], "minimum": 0},
        "Span to ingest this run (the month, for flights). Empty: the newest span in the data folder.",
        "Data",
    ),
    RunParameter(
        "window_spans",
        {"type": "integer", "minimum": 1, "maximum": 120},
        "How many of the newest ingested spans Transform and Trainer see.",
        "Data",
    ),
    RunParameter("train_steps", {"type": "integer", "minimum": 1}, "Training steps (batches).", "Training"),
    RunParameter("eval_steps", {"type": "integer", "minimum": 1}, "Validation steps during training.", "Training"),
    RunParameter(
        "learning_rate", {"type": "number", "exclusiveMinimum": 0, "maximum": 1}, "Adam learning rate.", "Training"
    ),
    RunParameter(
        "strategy",
        {"type": "string", "enum": list(STRATEGIES)},
        "tf.distribute strategy of the Trainer (docs/training.md): default, one_device, mirrored, central_storage, "
        "multi_worker_mirrored, parameter_server, tpu.",
        "Training",
    ),
    RunParameter(
        "workers",
        {"type": "integer", "minimum": 1, "maximum": 64},
        "Worker processes of multi_worker_mirrored and parameter_server.",
        "Training",
    ),
    RunParameter(
        "eval_lower_bound",
        {"type": "number", "minimum": 0, "maximum": 1},
        "Value threshold: the candidate's metric must reach at least this to be blessed.",
        "Evaluation",
    ),
    RunParameter(
        "eval_max_regression",
        {"type": "number", "minimum": 0, "maximum": 1},
        "Change threshold: how much worse than the current blessed model the candidate may be.",
        "Evaluation",
    ),
    RunParameter(
        "serving_model_name",
        {"type": "string", "pattern": _NAME_PATTERN},
        "Model name in the model store: the push goes to <store>/<name>/<version>.",
        "Serving",
    ),
    RunParameter(
        "dry_run",
        {"type": "boolean"},
        "Do everything except the push: Pusher is skipped, nothing is served.",
        "Serving",
    ),
    RunParameter(
        "repush",
        {"type": "boolean"},
        "Push even if this span is already served by an earlier run's model (a retrain of the same month, e.g. "
        "after a code or configuration change); without it, Pusher skips and says which version serves the span.",
        "Serving",
    ),
    RunParameter(
        "allow_breaking_change",
        {"type": "boolean"},
        "Push even if the candidate breaks the serving contract of the version currently served (removed or "
        "renamed input, dtype change, removed output): ModelInspector reports the changes and records this choice.",
        "Serving",
    ),
    RunParameter(
        "ingest_only",
        {"type": "boolean"},
        "Ingest and validate the span, then stop: no training, nothing pushed (what `runway run --history` does "
        "for each older span before the first training run, oldest first).",
        "Data",
    ),
    RunParameter(
        "tflite_variants",
        # An array with `examples`: Airflow's trigger form renders it as a multiple choice over the known variants;
        # `items.enum` refuses any other name when the run is triggered.
        {
            "type": ["array", "null"],
            "items": {"type": "string", "enum": list(TFLITE_VARIANTS)},
            "uniqueItems": True,
            "examples": list(TFLITE_VARIANTS),
        },
        "TFLite variants to build, measure and publish this run (docs/tflite.md); none chosen: none this run. "
        "Default: the configuration's list. Only for pipelines whose configuration enables TFLite. From the command "
        "line: --param tflite_variants=int8,float16 (or none).",
        "TFLite",
    ),
)

_DEFAULTS = {
    "span": lambda c: None,
    "window_spans": lambda c: c.data.window_spans,
    "train_steps": lambda c: c.model.train_steps,
    "eval_steps": lambda c: c.model.eval_steps,
    "learning_rate": lambda c: c.model.learning_rate,
    "strategy": lambda c: c.training.strategy,
    "workers": lambda c: c.training.workers,
    "eval_lower_bound": lambda c: c.evaluation.lower_bound,
    "eval_max_regression": lambda c: c.evaluation.max_regression,
    "serving_model_name": lambda c: c.serving.model_name,
    "dry_run": lambda c: False,
    "tflite_variants": lambda c: list(c.tflite.variants),
    "allow_breaking_change": lambda c: False,
    "repush": lambda c: False,
    "ingest_only": lambda c: False,
}
BY_NAME = {p.name: p for p in PARAMETERS}


def from_command_line(values: dict[str, Any], config: PipelineConfig) -> dict[str, Any]:
    """``--param`` values as the trigger form sends them: ``tflite_variants=int8,float16`` becomes a list.

    Raises:
        ConfigError: an unknown or repeated variant name.
    """
    if isinstance(values.get("tflite_variants"), str):
        names = tflite_variant_list(values["tflite_variants"])
        values = {**values, "tflite_variants": list(config.tflite.variants) if names is None else names}
    return values


def defaults(config: PipelineConfig) -> dict[str, Any]:
    return {p.name: p.default(config) for p in PARAMETERS}


def _type_ok(value: Any, types: str | list[str]) -> bool:
    allowed = [types] if isinstance(types, str) else types
    checks = {
        "null": value is None,
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "array": isinstance(value, list),
    }
    return any(checks[t] for t in allowed)


def validate(values: dict[str, Any], config: PipelineConfig) -> dict[str, Any]:
    """Check each value against its schema; return the full set (defaults filled in).

    Raises:
        ConfigError: naming the parameter, the value and what is allowed.
    """
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise ConfigError(f"unknown run parameter(s) {unknown}; known: {sorted(BY_NAME)}")
    resolved = defaults(config) | values
    for name, value in resolved.items():
        schema = BY_NAME[name].schema
        if not _type_ok(value, schema["type"]):
            raise ConfigError(f"run parameter '{name}' = {value!r}: expected {schema['type']}")
        if value is None:
            continue
        if "minimum" in schema and value < schema["minimum"]:
            raise ConfigError(f"run parameter '{name}' = {value!r}: must be >= {schema['minimum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise ConfigError(f"run parameter '{name}' = {value!r}: must be > {schema['exclusiveMinimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise ConfigError(f"run parameter '{name}' = {value!r}: must be <= {schema['maximum']}")
        if "pattern" in schema and not re.match(schema["pattern"], value):
            raise ConfigError(f"run parameter '{name}' = {value!r}: must match {schema['pattern']}")
        if "enum" in schema and value not in schema["enum"]:
            raise ConfigError(f"run parameter '{name}' = {value!r}: must be one of {schema['enum']}")
    tflite_variant_list(resolved.get("tflite_variants"))  # names checked here, not first in the node
    if resolved.get("strategy") != config.training.strategy or resolved.get("workers") != config.training.workers:
        # the strategy's own rules (e.g. tpu needs an address): checked here, not first in the Trainer
        config.with_overrides({"training.strategy": resolved["strategy"], "training.workers": resolved["workers"]})
    return resolved


def tflite_variant_list(value: str | list[str] | None) -> list[str] | None:
    """The run parameter ``tflite_variants`` as a list of names: [] for none (nothing chosen, null, or 'none'),
    None for the configuration's list (an empty string: the command line's "not set").

    Raises:
        ConfigError: an unknown or repeated variant name.
    """
    if value is None:
        return []
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, str) and value.strip() == "none":
        return []
    listed = value.split(",") if isinstance(value, str) else value
    names = [str(name).strip() for name in listed if str(name).strip()]
    unknown = [name for name in names if name not in TFLITE_VARIANTS]
    if unknown or len(set(names)) != len(names):
        raise ConfigError(
            f"run parameter 'tflite_variants' = {value!r}: expected distinct names from {list(TFLITE_VARIANTS)}, "
            "or 'none'"
        )
    return names


def span_folder_glob(config: PipelineConfig, span: int | None) -> str:
    """The span pattern's folder part with ``{SPAN}`` filled in (or a wildcard for every span)."""
    return fill_span(config.data.span_pattern.split("/")[0], span)


def available_spans(config: PipelineConfig, data_dir: Path) -> list[int]:
    """Span numbers present in the data folder (folder names that match the pattern)."""
    regex = span_folder_regex(config.data.span_pattern)
    root = data_dir / config.data.folder
    if not root.is_dir():
        return []
    return sorted(int(m.group("span")) for c in root.iterdir() if c.is_dir() and (m := regex.match(c.name)))


def check_against_data(resolved: dict[str, Any], config: PipelineConfig, data_dir: Path) -> list[int]:
    """The span to ingest must exist; return the spans present.

    Raises:
        ConfigError: no span at all, or the requested one is missing.
    """
    spans = available_spans(config, data_dir)
    root = data_dir / config.data.folder
    if not spans:
        raise ConfigError(
            f"no spans under {root} (pattern {config.data.span_pattern}); run `runway data prepare {config.name}`"
        )
    span = resolved.get("span")
    if span is not None and span not in spans:
        raise ConfigError(
            f"run parameter 'span' = {span}: no folder {span_folder_glob(config, span)} under {root}; "
            f"prepared spans: {spans}"
        )
    return spans
