"""Executor of DriftSkewValidator: TFDV's drift and skew comparators; one verdict and its page (gate.py)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tfx.types import artifact_utils

from pipeline_components.components.gate import Artifacts, GateExecutor, GateOutcome
from pipeline_components.reports.render import Verdict, render, status_cell

log = logging.getLogger("runway.drift")

TRAIN, EVAL = "train", "eval"
_COMPARATOR = {"categorical": "L-infinity distance", "numeric": "Jensen-Shannon divergence"}


@dataclass(frozen=True)
class Measurement:
    check: str  # drift | skew
    feature: str
    comparator: str
    observed: float | None  # None: the feature is absent from one side's statistics
    threshold: float
    compared: str  # what against what, e.g. "span 7 train vs span 6 train"

    @property
    def failed(self) -> bool:
        return self.observed is None or self.observed > self.threshold

    def line(self) -> str:
        observed = "not measured (feature absent)" if self.observed is None else f"{self.observed:.4f}"
        return (
            f"{self.check} of {self.feature}: {self.comparator} {observed} > threshold {self.threshold:g} "
            f"({self.compared})"
        )


class Pair(NamedTuple):
    """Two sets of statistics to compare (``compare``'s arguments but the schema and the categorical features)."""

    kind: str  # drift | skew
    thresholds: dict[str, float]
    statistics: Any
    other: Any
    compared: str


def _span(artifact: Any) -> int:
    return int(artifact.span or artifact.get_int_custom_property("span"))


def load_split_statistics(artifact: Any, split: str) -> Any | None:
    """One split's DatasetFeatureStatisticsList of a StatisticsGen artifact, or None if it has no such split."""
    import tensorflow_data_validation as tfdv

    try:
        path = Path(artifact_utils.get_split_uri([artifact], split)) / "FeatureStats.pb"
    except ValueError:
        return None
    return tfdv.load_stats_binary(str(path)) if path.is_file() else None


def _schema_with_comparators(schema: Any, thresholds: dict[str, float], categorical: set[str], kind: str) -> Any:
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    copy = schema_pb2.Schema()
    copy.CopyFrom(schema)
    present = {feature.name for feature in copy.feature}
    for name, threshold in thresholds.items():
        if name not in present:
            continue  # reported as "not measured"
        feature = tfdv.get_feature(copy, name)
        comparator = feature.drift_comparator if kind == "drift" else feature.skew_comparator
        if name in categorical:
            comparator.infinity_norm.threshold = threshold
        else:
            comparator.jensen_shannon_divergence.threshold = threshold
    return copy


def compare(
    *,
    kind: str,
    schema: Any,
    thresholds: dict[str, float],
    categorical: set[str],
    statistics: Any,
    other: Any,
    compared: str,
) -> list[Measurement]:
    """TFDV's comparators for ``thresholds``' features: drift (``other`` = previous statistics) or skew
    (``statistics`` = training, ``other`` = serving/evaluation statistics)."""
    import tensorflow_data_validation as tfdv

    with_comparators = _schema_with_comparators(schema, thresholds, categorical, kind)
    if kind == "drift":
        anomalies = tfdv.validate_statistics(statistics, with_comparators, previous_statistics=other)
    else:
        anomalies = tfdv.validate_statistics(statistics, with_comparators, serving_statistics=other)
    observed: dict[str, float] = {}
    for info in anomalies.drift_skew_info:
        measurements = info.drift_measurements if kind == "drift" else info.skew_measurements
        for measurement in measurements:
            name = ".".join(info.path.step)
            observed[name] = max(observed.get(name, 0.0), float(measurement.value))
    return [
        Measurement(
            check=kind,
            feature=name,
            comparator=_COMPARATOR["categorical" if name in categorical else "numeric"],
            observed=observed.get(name),
            threshold=threshold,
            compared=compared,
        )
        for name, threshold in sorted(thresholds.items())
    ]


def pick_history(current: Any, history: list[Any], window_spans: int) -> tuple[Any | None, list[Any]]:
    """The previous span's statistics (the newest artifact of the highest span below this one) and the earlier
    spans of the training window (newest artifact per span, up to ``window_spans - 1`` spans below this one)."""
    span = _span(current)
    newest: dict[int, Any] = {}
    for artifact in history:
        if artifact.id == current.id:
            continue
        other_span = _span(artifact)
        if other_span < span and (other_span not in newest or artifact.id > newest[other_span].id):
            newest[other_span] = artifact
    earlier = [newest[s] for s in sorted(newest, reverse=True)]
    return (earlier[0] if earlier else None), earlier[: max(window_spans - 1, 0)]


def drift_page(
    *, span: int | None, verdict: Verdict, notes: list[str], measurements: list[Measurement], title: str | None = None
) -> str:
    """The page: the verdict, what was not compared and why, a chart of observed / threshold, every comparison.

    ``title`` defaults to the gate's ("Drift and skew — span N"); the monitoring of served traffic names its window.
    """
    from pipeline_components.reports.charts import Bar, threshold_bars

    bars = [
        Bar(f"{m.check}: {m.feature} ({m.compared.split(' vs ')[0]})", m.observed / m.threshold)
        for m in measurements
        if m.observed is not None
    ]
    chart = threshold_bars(bars, xlabel="observed / threshold (above 1 fails)")
    rows = [
        [
            m.check,
            m.feature,
            m.comparator,
            "absent" if m.observed is None else f"{m.observed:.4f}",
            f"{m.threshold:g}",
            m.compared,
            status_cell(not m.failed, "ok", "FAIL"),
        ]
        for m in measurements
    ]
    return render(
        "drift.html",
        title=title or f"Drift and skew — span {span}",
        verdict=verdict,
        notes=notes,
        chart=chart,
        rows=rows,
    )


class Executor(GateExecutor):
    PAGE_SUFFIX = "drift"

    def judge(self, inputs: Artifacts, outputs: Artifacts, properties: dict[str, Any]) -> GateOutcome:
        import tensorflow_data_validation as tfdv

        current = inputs["statistics"][0]
        schema_uri = Path(inputs["schema"][0].uri) / "schema.pbtxt"
        schema = tfdv.load_schema_text(str(schema_uri))
        drift = {k: float(v) for k, v in json.loads(properties["drift"]).items()}
        skew = {k: float(v) for k, v in json.loads(properties["skew"]).items()}
        categorical = set(json.loads(properties["categorical"]))
        window_spans = int(properties["window_spans"])
        out = Path(outputs["report"][0].uri)
        out.mkdir(parents=True, exist_ok=True)

        span = _span(current)
        previous, window = pick_history(current, list(inputs.get("statistics_history") or []), window_spans)
        notes: list[str] = []
        pairs: list[Pair] = []  # what to compare, then compared in one go
        current_train = load_split_statistics(current, TRAIN)
        current_eval = load_split_statistics(current, EVAL)

        if not drift:
            notes.append("drift: no features configured (validation.drift)")
        elif previous is None:
            notes.append(f"drift: span {span} is the first span ingested (no earlier span): nothing to compare")
        elif current_train is None or (previous_train := load_split_statistics(previous, TRAIN)) is None:
            notes.append("drift: no 'train' split statistics to compare")
        else:
            compared = f"span {span} train vs span {_span(previous)} train"
            pairs.append(Pair("drift", drift, current_train, previous_train, compared))
        if not skew:
            notes.append("skew: no features configured (validation.skew)")
        elif current_eval is None:
            notes.append("skew: this span has no 'eval' split")
        else:
            for member in [current, *window]:
                train = load_split_statistics(member, TRAIN)
                if train is None:
                    notes.append(f"skew: span {_span(member)} has no 'train' split statistics")
                    continue
                compared = f"span {_span(member)} train vs span {span} eval"
                pairs.append(Pair("skew", skew, train, current_eval, compared))
        measurements = [m for pair in pairs for m in compare(schema=schema, categorical=categorical, **pair._asdict())]

        failed = [m for m in measurements if m.failed]
        passed = not failed
        verdict = (
            f"drift and skew within thresholds ({len(measurements)} comparisons)"
            if passed
            else f"{len(failed)} of {len(measurements)} drift/skew comparisons above threshold"
        )
        document = {
            "span": span,
            "previous_span": _span(previous) if previous is not None else None,
            "window_spans": [span, *(_span(a) for a in window)],
            "notes": notes,
            "measurements": [{**asdict(m), "failed": m.failed} for m in measurements],
        }
        (out / "drift_skew.json").write_text(json.dumps(document, indent=2))
        for note in notes:
            log.info("%s", note)
        failures = [m.line() for m in failed]
        return GateOutcome(
            out,
            passed=passed,
            summary=verdict,
            failures=failures,
            figures={
                "drift_previous_span": document["previous_span"],
                "drift_max": max((m.observed or 0.0 for m in measurements if m.check == "drift"), default=None),
                "skew_max": max((m.observed or 0.0 for m in measurements if m.check == "skew"), default=None),
                "validation_notes": notes,
            },
            page=drift_page(
                span=span, verdict=Verdict(passed, verdict, failures), notes=notes, measurements=measurements
            ),
        )
