"""GreatExpectationsValidator: a versioned Great Expectations suite run on each new span's raw CSV, as a gate."""

from __future__ import annotations

from pipeline_components.components.artifacts import ExpectationsResult
from pipeline_components.components.great_expectations_validator.component import GreatExpectationsValidator

__all__ = ["ExpectationsResult", "GreatExpectationsValidator"]
