"""DriftSkewValidator: TFDV drift (new span vs the previous one) and skew (training window vs evaluation split)."""

from __future__ import annotations

from pipeline_components.components.artifacts import DriftSkewReport
from pipeline_components.components.drift_skew_validator.component import DriftSkewValidator

__all__ = ["DriftSkewReport", "DriftSkewValidator"]
