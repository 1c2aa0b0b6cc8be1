"""Skew is judged against the training span the served traffic is nearest to: a version trained on January to March
has seen March, so March-like traffic is not news, however far it is from January."""

from __future__ import annotations

from pipeline_components.components.drift_skew_validator.executor import Measurement
from pipeline_components.monitoring.window import nearest_span


def _skew(feature: str, observed: float | None, span: int) -> Measurement:
    return Measurement(
        check="skew",
        feature=feature,
        comparator="Jensen-Shannon divergence",
        observed=observed,
        threshold=0.5,
        compared=f"served version 3 (600 rows) vs its training span {span}",
    )


def test_each_feature_keeps_its_nearest_span_and_an_absent_feature_stays_crossed() -> None:
    per_span = [
        _skew("temp", 0.9, 1),  # April traffic against January ...
        _skew("temp", 0.2, 3),  # ... and against March: near
        _skew("precip", None, 1),
        _skew("precip", None, 3),  # absent from the served traffic: crossed whatever the span
        _skew("distance", 0.6, 1),
        _skew("distance", 0.7, 3),  # far from every span: crossed
    ]
    nearest = {m.feature: m for m in nearest_span(per_span, spans=[3, 1, 2])}

    assert nearest["temp"].observed == 0.2 and not nearest["temp"].failed
    assert nearest["temp"].compared == "served version 3 (600 rows) vs its nearest training span 3 of 1, 2, 3"
    assert nearest["distance"].observed == 0.6 and nearest["distance"].failed
    assert nearest["precip"].observed is None and nearest["precip"].failed
