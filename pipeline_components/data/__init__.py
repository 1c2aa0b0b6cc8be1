"""Dataset preparers: each turns a real public dataset into CSV spans that ExampleGen reads.

A preparer is named in a pipeline configuration (``data.preparer``) and run by ``runway data prepare``. They
need pandas and the dataset packages, so they run in the pipeline runtime environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline_components.data.spans import SpanReport
from pipeline_components.errors import ConfigError

PREPARERS = ("nycflights13", "palmerpenguins")


def prepare_dataset(preparer: str, out_dir: Path, **options: Any) -> list[SpanReport]:
    """Run the named preparer; ``options`` are its keyword arguments (``months``, ``sample_fraction`` ...)."""
    if preparer == "nycflights13":
        from pipeline_components.data import flights

        return flights.prepare(out_dir, **options)
    if preparer == "palmerpenguins":
        from pipeline_components.data import penguins

        return penguins.prepare(out_dir, **options)
    raise ConfigError(f"unknown data preparer '{preparer}'; known: {', '.join(PREPARERS)}")


__all__ = ["PREPARERS", "SpanReport", "prepare_dataset"]
