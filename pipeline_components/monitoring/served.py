"""The served traffic of one window: request log rows as a table of features, and the answers' distribution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline_components.serving.request_log_reader import LoggedRow, closed_files, read_rows

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
HISTOGRAM_BINS = 10  # over [0, 1]: the answers are probabilities
PREDICTION_KEYS = ("probabilities", "scores")  # Predict's output of this product's models; Classify's scores


@dataclass(frozen=True)
class Window:
    """[since, until) in seconds since the epoch, on the time a request was answered."""

    since: int
    until: int

    def holds(self, row: LoggedRow) -> bool:
        return self.since <= row.timestamp_secs < self.until


def window_rows(log_prefix: str, window: Window, *, model_name: str) -> list[LoggedRow]:
    """The logged rows of ``model_name`` answered in ``window`` (closed files only: ``request_log_reader``)."""
    rows = read_rows(closed_files(log_prefix), model_name=model_name, since_secs=window.since)
    return [row for row in rows if window.holds(row)]


def _scalar(value: Any) -> Any:
    # A feature sent with shape [batch, 1] comes back as a one-element list; strings come back as bytes.
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def features_frame(rows: Sequence[LoggedRow], features: Sequence[str]) -> pd.DataFrame:
    """The rows' values of ``features`` as columns (a feature a row lacks is missing there, as TFDV counts it)."""
    return pd.DataFrame([{name: _scalar(row.features.get(name)) for name in features} for row in rows])


def _probability(predictions: dict[str, Any]) -> float | None:
    for key in PREDICTION_KEYS:
        if key in predictions:
            values = np.ravel(np.asarray(predictions[key], dtype=float))
            # A binary model answers one probability; a two-column answer's positive class is the last.
            return float(values[-1]) if values.size in (1, 2) else None
    return None


def prediction_distribution(rows: Sequence[LoggedRow]) -> dict[str, Any]:
    """Count, mean, quantiles and a 10-bin histogram over [0, 1] of the served probabilities.

    Rows without a probability (a multiclass answer, a regression) are counted in ``without_probability``.
    """
    values = [p for p in (_probability(row.predictions) for row in rows) if p is not None]
    summary: dict[str, Any] = {"count": len(values), "without_probability": len(rows) - len(values)}
    if not values:
        return summary
    array = np.asarray(values)
    counts, edges = np.histogram(array, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    summary.update(
        mean=float(array.mean()),
        quantiles={f"{q:g}": float(np.quantile(array, q)) for q in QUANTILES},
        histogram={"edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]},
    )
    return summary
