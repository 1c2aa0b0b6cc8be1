"""The strategy settings as the Trainer sees them: the ``training`` entry of its custom_config.

Light (no TensorFlow): the factory writes the entry, the run parameters override it, the model's ``run_fn``
reads it back and validates it again (a run parameter may have changed it since the configuration was loaded).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from pipeline_components.config import PipelineConfig, TrainingConfig
from pipeline_components.errors import ConfigError


def trainer_training_config(config: PipelineConfig) -> dict[str, Any]:
    """The ``training`` entry of the Trainer's custom_config: the strategy and its settings (no cluster sizing)."""
    return config.training.model_dump(exclude={"cluster"})


def from_custom_config(custom_config: dict[str, Any] | None) -> TrainingConfig:
    """The validated settings in a Trainer's custom_config; none there: the default strategy.

    Raises:
        ConfigError: the entry does not validate (names the key and what is allowed).
    """
    entry = (custom_config or {}).get("training") or {}
    try:
        return TrainingConfig.model_validate(entry)
    except ValidationError as err:
        problems = "; ".join(
            f"training.{'.'.join(str(p) for p in item['loc']) or '(section)'}: {item['msg']}" for item in err.errors()
        )
        raise ConfigError(f"the Trainer's training settings are invalid: {problems}") from None
