"""GreatExpectationsValidator: a versioned Great Expectations suite run on each new span's raw CSV, as a gate."""

from pipeline_components.components.great_expectations_validator.component import (
    ExpectationsResult,
    GreatExpectationsValidator,
)

__all__ = ["ExpectationsResult", "GreatExpectationsValidator"]
