"""The ``monitoring`` section: per-feature skew / drift thresholds of served traffic, with a default."""

from __future__ import annotations

import pytest

from pipeline_components.config import load_pipeline_config
from pipeline_components.errors import ConfigError
from tests.conftest import CONFIGS


def test_every_feature_gets_its_listed_threshold_or_the_default() -> None:
    flights = load_pipeline_config(CONFIGS / "flights.yaml")
    assert flights.monitoring.schedule == "0 5 1 * *" and flights.monitoring.threshold == 0.1  # configs/flights.yaml
    tuned = flights.with_overrides({"monitoring.skew": {"precip": 0.3}, "monitoring.threshold": 0.2})
    skew = tuned.monitoring.thresholds("skew", list(flights.features.all))
    assert skew["precip"] == 0.3 and skew["carrier"] == 0.2 and set(skew) == set(flights.features.all)
    # drift keeps flights' own list (precip 0.6); the rest gets the new default
    assert tuned.monitoring.thresholds("drift", ["precip", "carrier"]) == {"precip": 0.6, "carrier": 0.2}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"monitoring.skew": {"no_such_feature": 0.1}}, "monitoring.skew: names features", id="unknown"),
        pytest.param({"monitoring.drift": {"carrier": 1.5}}, "thresholds must be in", id="above-1"),
        pytest.param({"monitoring.threshold": 0}, "greater than 0", id="default-zero"),
    ],
)
def test_bad_monitoring_thresholds_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_pipeline_config(CONFIGS / "flights.yaml").with_overrides(overrides)
