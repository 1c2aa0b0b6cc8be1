"""The ``monitoring`` section: thresholds of served traffic's skew and drift (docs/monitoring.md).

Beside ``sections.py`` (which is at its size limit); the same metrics and the same range check as the data gate's
``validation.drift`` / ``validation.skew``: L-infinity distance for categorical features, Jensen-Shannon divergence
for numeric ones, both in [0, 1].
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from pipeline_components.config.sections import StrictModel, ValidationConfig


def _per_feature(between: str) -> Any:
    return Field(default_factory=dict, description=f"Feature -> threshold {between}.")


class MonitoringConfig(StrictModel):
    """Per-feature thresholds of the monitoring of served traffic; every feature not listed gets ``threshold``."""

    schedule: str | None = Field(
        default=None,
        description="Cron (UTC) of the monitoring DAG <name>_monitoring, e.g. '0 * * * *'; none: by hand only.",
    )
    threshold: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Threshold of every feature not listed under skew / drift (L-infinity for categorical "
        "features, Jensen-Shannon for numeric ones).",
    )
    skew: dict[str, float] = _per_feature(
        "between the served traffic of a window and the training statistics ('train' split of each span) of the "
        "version that answered"
    )
    drift: dict[str, float] = _per_feature("between the served traffic of a window and the previous window's")

    # The data gate's own check of the same metrics' range.
    _thresholds_in_range = field_validator("skew", "drift")(ValidationConfig._thresholds_in_range.__func__)  # type: ignore[attr-defined]

    def thresholds(self, kind: Literal["skew", "drift"], features: list[str]) -> dict[str, float]:
        """Feature -> threshold for ``features``: the listed value, else the default ``threshold``."""
        listed = self.skew if kind == "skew" else self.drift
        return {name: listed.get(name, self.threshold) for name in features}
