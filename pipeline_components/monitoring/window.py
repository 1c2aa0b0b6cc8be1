"""Monitor one window of served traffic: skew against the training statistics, drift, the answers' distribution.

    result = monitor_window(config=config, reader=RunReader.for_pipeline(settings, "flights"),
                            log_prefix="/var/log/runway/flights_delay/flights_delay",
                            window=Window(since, until), out_dir=Path("monitoring/<run>"),
                            previous_dir=Path("monitoring/<previous run>"))
    result["alert"], result["evidence"]

The comparisons are the data gate's own (``drift_skew_validator.executor.compare``: TFDV's ``skew_comparator`` /
``drift_comparator``, L-infinity for categorical features, Jensen-Shannon for numeric ones, through
``tfdv.validate_statistics``), so a figure here means what it means in the gate.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tensorflow_data_validation as tfdv

from pipeline_components.components.drift_skew_validator.executor import Measurement, compare
from pipeline_components.config.pipeline import PipelineConfig
from pipeline_components.errors import NoTrafficError
from pipeline_components.metadata.reader import RunReader
from pipeline_components.monitoring.report import STATISTICS_FILE, write_outputs
from pipeline_components.monitoring.served import Window, features_frame, prediction_distribution, window_rows
from pipeline_components.monitoring.training import training_statistics

log = logging.getLogger("runway.monitoring")


def skew(
    config: PipelineConfig, *, schema: Any, statistics: Any, training: dict[int, Any], who: str
) -> list[Measurement]:
    """Per feature, the skew of ``statistics`` against the nearest of the training spans' statistics
    (``training``: span -> statistics), with the thresholds of ``config.monitoring``."""
    features = list(config.features.all)
    per_span: list[Measurement] = []
    for span, trained in training.items():
        per_span += compare(
            kind="skew",
            schema=schema,
            thresholds=config.monitoring.thresholds("skew", features),
            categorical=set(config.features.categorical),
            statistics=trained,
            other=statistics,
            compared=f"{who} vs its training span {span}",
        )
    return nearest_span(per_span, spans=list(training))


def drift(config: PipelineConfig, *, schema: Any, statistics: Any, previous: Any, compared: str) -> list[Measurement]:
    """Per feature, the drift of ``statistics`` against the previous window's, with ``config.monitoring``'s
    thresholds."""
    return compare(
        kind="drift",
        schema=schema,
        thresholds=config.monitoring.thresholds("drift", list(config.features.all)),
        categorical=set(config.features.categorical),
        statistics=statistics,
        other=previous,
        compared=compared,
    )


def nearest_span(per_span: list[Measurement], *, spans: list[int]) -> list[Measurement]:
    """Per feature, the skew against the training span the served traffic is nearest to.

    A version trained on a window of months has seen each of them: traffic like any one of them is not news. So
    the served features are skewed only when they are far from every span of the window; against the window's
    oldest month alone, a normal month would look seasonal (2013: benchmarks/results/monitoring_months.md).
    """
    nearest: dict[str, Measurement] = {}
    for measurement in per_span:
        known = nearest.get(measurement.feature)
        distance = float("inf") if measurement.observed is None else measurement.observed
        if known is None or distance < (float("inf") if known.observed is None else known.observed):
            nearest[measurement.feature] = measurement
    window = ", ".join(str(span) for span in sorted(spans))
    return [
        replace(m, compared=m.compared.replace("its training span", "its nearest training span") + f" of {window}")
        for m in nearest.values()
    ]


def _utc(secs: int) -> str:
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def monitor_window(
    *,
    config: PipelineConfig,
    reader: RunReader,
    log_prefix: str | Path,
    window: Window,
    out_dir: Path,
    previous_dir: Path | None = None,
) -> dict[str, Any]:
    """Compare the traffic served in ``window`` with what the answering versions were trained on, and with the
    previous window; write ``result.json``, ``report.md``, ``monitoring.png`` and the window's statistics.

    Args:
        config: the pipeline's configuration (features, schema, ``monitoring`` thresholds, model name).
        reader: the pipeline's ML Metadata (training statistics through lineage).
        log_prefix: the request log's ``filename_prefix`` (the model servers' ``logging_config``).
        window: [since, until) on the time each request was answered.
        out_dir: where the outputs go (created).
        previous_dir: the previous window's output folder; its statistics are the drift baseline. None, or a folder
            without statistics: drift is not measured (a note says so).

    Returns:
        The result, as written to ``result.json``: ``alert``, ``evidence`` (one line per crossed threshold), every
        measurement, the notes, the rows per version and the predictions' distribution.

    Raises:
        NoTrafficError: no logged row of the model in the window (nothing to judge; not an alert).
        NoTrainingStatisticsError: a version that answered has no training statistics in ML Metadata.
    """
    model_name = config.serving.model_name
    rows = window_rows(str(log_prefix), window, model_name=model_name)
    if not rows:
        raise NoTrafficError(
            f"no logged request of model '{model_name}' answered in [{_utc(window.since)}, {_utc(window.until)}) "
            f"under {log_prefix}: nothing to compare (not an alert); check that the fleet logs requests "
            "(serving.request_logging) and that traffic reached it"
        )
    schema = tfdv.load_schema_text(str(config.schema_path))
    features = list(config.features.all)
    served = tfdv.generate_statistics_from_dataframe(features_frame(rows, features))

    notes: list[str] = []
    measurements: list[Measurement] = []
    versions = sorted({row.version for row in rows})
    trained_on: dict[str, list[int]] = {}
    for version in versions:
        mine = [row for row in rows if row.version == version]
        statistics = (
            served if len(versions) == 1 else tfdv.generate_statistics_from_dataframe(features_frame(mine, features))
        )
        spans = training_statistics(reader, version)
        trained_on[str(version)] = [s.span for s in spans]
        training = {}
        for span in spans:
            path = span.split_path("train")
            if path.is_file():
                training[span.span] = tfdv.load_stats_binary(str(path))
            else:
                notes.append(f"skew: span {span.span}'s training statistics are gone from {path}")
        who = f"served version {version} ({len(mine)} rows)"
        measurements += skew(config, schema=schema, statistics=statistics, training=training, who=who)
    previous = previous_dir / STATISTICS_FILE if previous_dir is not None else None
    if previous is None or not previous.is_file():
        notes.append("drift: no previous window's statistics (the first window): nothing to compare")
    else:
        measurements += drift(
            config,
            schema=schema,
            statistics=served,
            previous=tfdv.load_stats_binary(str(previous)),
            compared=f"this window vs the previous one ({previous_dir})",
        )
    crossed = [m for m in measurements if m.failed]
    result: dict[str, Any] = {
        "pipeline": config.name,
        "model_name": model_name,
        "window": {
            "since": window.since,
            "until": window.until,
            "since_utc": _utc(window.since),
            "until_utc": _utc(window.until),
        },
        "rows": len(rows),
        "rows_per_version": {str(v): sum(1 for r in rows if r.version == v) for v in versions},
        "trained_on_spans": trained_on,
        "alert": bool(crossed),
        "evidence": [m.line() for m in crossed],
        "measurements": [{**asdict(m), "failed": m.failed} for m in measurements],
        "notes": notes,
        "predictions": prediction_distribution(rows),
        "previous": str(previous_dir) if previous is not None and previous.is_file() else None,
    }
    for line in [*result["evidence"], *notes]:
        log.info("%s", line)
    write_outputs(out_dir, result=result, statistics=served)
    return result
