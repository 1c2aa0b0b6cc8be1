"""The tflite section of a pipeline configuration and the shipped configurations' choices."""

from __future__ import annotations

import pytest

from pipeline_components.config import TFLITE_VARIANTS, TFLiteConfig, load_pipeline_config
from pipeline_components.errors import ConfigError
from tests.conftest import CONFIGS


def test_no_section_means_no_variants() -> None:
    assert TFLiteConfig().variants == []
    assert (TFLiteConfig().ptq_budget, TFLiteConfig().qat_budget) == (0.01, 0.005)


def test_shipped_configurations() -> None:
    flights = load_pipeline_config(CONFIGS / "flights.yaml")
    assert flights.tflite.variants == list(TFLITE_VARIANTS)
    penguins = load_pipeline_config(CONFIGS / "penguins.yaml")
    assert set(penguins.tflite.variants) <= set(TFLITE_VARIANTS) and penguins.tflite.variants


@pytest.mark.parametrize(
    ("override", "message"),
    [
        pytest.param({"tflite.variants": ["int4"]}, "tflite.variants.0", id="unknown-variant"),
        pytest.param({"tflite.qat_budget": -0.1}, "tflite.qat_budget", id="negative-budget"),
        pytest.param({"tflite.fine_tune_steps": 0}, "tflite.fine_tune_steps", id="no-fine-tuning"),
        pytest.param({"tflite.target_sparsity": 1.0}, "tflite.target_sparsity", id="all-zero"),
    ],
)
def test_invalid_values_are_refused_with_the_key(override: dict[str, object], message: str) -> None:
    flights = load_pipeline_config(CONFIGS / "flights.yaml")
    with pytest.raises(ConfigError, match=message):
        flights.with_overrides(override)
