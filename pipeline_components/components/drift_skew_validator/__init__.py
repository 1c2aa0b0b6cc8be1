"""DriftSkewValidator: TFDV drift (new span vs the previous one) and skew (training window vs evaluation split)."""

from pipeline_components.components.drift_skew_validator.component import DriftSkewReport, DriftSkewValidator

__all__ = ["DriftSkewReport", "DriftSkewValidator"]
