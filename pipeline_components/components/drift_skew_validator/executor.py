"""Executor of DriftSkewValidator: TFDV's drift and skew comparators, one verdict through ``write_gate``."""

from __future__ import annotations

import html
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from pipeline_components.runtime.figures import write_gate

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


def _page(title: str, verdict: str, passed: bool, notes: list[str], measurements: list[Measurement]) -> str:
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(cell))}</td>"
            for cell in (
                m.check,
                m.feature,
                m.comparator,
                "absent" if m.observed is None else f"{m.observed:.4f}",
                f"{m.threshold:g}",
                m.compared,
            )
        )
        + f"<td class='{'bad' if m.failed else 'ok'}'>{'FAIL' if m.failed else 'ok'}</td></tr>"
        for m in measurements
    )
    css = (
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #d5d8dc;padding:4px 10px}.ok{color:#1e8449}.bad{color:#b03a2e;font-weight:bold}"
    )
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{css}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p class='{'ok' if passed else 'bad'}'>{html.escape(verdict)}</p>"
        f"<ul>{notes_html}</ul>{bar_chart_svg(measurements)}"
        "<table><tr><th>check</th><th>feature</th><th>comparator</th><th>observed</th><th>threshold</th>"
        f"<th>compared</th><th>verdict</th></tr>{rows}</table></body></html>\n"
    )


def bar_chart_svg(measurements: list[Measurement]) -> str:
    """Observed / threshold per comparison as an inline SVG bar chart (above the dashed line at 1 fails)."""
    measured = [m for m in measurements if m.observed is not None]
    if not measured:
        return ""
    label_w, bar_w, row_h = 330, 360, 18
    top = max(2.0, *(m.observed / m.threshold for m in measured if m.observed is not None))
    scale = bar_w / top
    rows = []
    for i, m in enumerate(measured):
        ratio = (m.observed or 0.0) / m.threshold
        y = 20 + i * row_h
        color = "#b03a2e" if ratio > 1 else "#1e8449"
        label = html.escape(f"{m.check}: {m.feature} ({m.compared.split(' vs ')[0]})")
        rows.append(
            f"<text x='{label_w - 6}' y='{y + 12}' text-anchor='end' font-size='11'>{label}</text>"
            f"<rect x='{label_w}' y='{y + 2}' width='{max(ratio * scale, 1):.1f}' height='{row_h - 5}' fill='{color}'/>"
            f"<text x='{label_w + max(ratio * scale, 1) + 4:.1f}' y='{y + 12}' font-size='10'>{ratio:.2f}</text>"
        )
    height = 30 + len(measured) * row_h
    one = label_w + scale
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{label_w + bar_w + 60}' height='{height}' "
        "font-family='sans-serif'><text x='4' y='12' font-size='11'>observed / threshold (above 1 fails)</text>"
        + "".join(rows)
        + f"<line x1='{one:.1f}' y1='16' x2='{one:.1f}' y2='{height}' stroke='black' stroke-dasharray='4 3'/></svg>"
    )


class Executor(base_executor.BaseExecutor):
    def Do(
        self,
        input_dict: dict[str, list[Any]],
        output_dict: dict[str, list[Any]],
        exec_properties: dict[str, Any],
    ) -> None:
        import tensorflow_data_validation as tfdv

        from pipeline_components.components.pages import publish_page

        current = input_dict["statistics"][0]
        schema_uri = Path(input_dict["schema"][0].uri) / "schema.pbtxt"
        schema = tfdv.load_schema_text(str(schema_uri))
        drift = {k: float(v) for k, v in json.loads(exec_properties["drift"]).items()}
        skew = {k: float(v) for k, v in json.loads(exec_properties["skew"]).items()}
        categorical = set(json.loads(exec_properties["categorical"]))
        window_spans = int(exec_properties["window_spans"])
        out = Path(output_dict["report"][0].uri)
        out.mkdir(parents=True, exist_ok=True)

        span = _span(current)
        previous, window = pick_history(current, list(input_dict.get("statistics_history") or []), window_spans)
        notes: list[str] = []
        measurements: list[Measurement] = []
        current_train = load_split_statistics(current, TRAIN)
        current_eval = load_split_statistics(current, EVAL)

        if not drift:
            notes.append("drift: no features configured (validation.drift)")
        elif previous is None:
            notes.append(f"drift: span {span} is the first span ingested (no earlier span): nothing to compare")
        elif current_train is None or (previous_train := load_split_statistics(previous, TRAIN)) is None:
            notes.append("drift: no 'train' split statistics to compare")
        else:
            measurements += compare(
                kind="drift",
                schema=schema,
                thresholds=drift,
                categorical=categorical,
                statistics=current_train,
                other=previous_train,
                compared=f"span {span} train vs span {_span(previous)} train",
            )
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
                measurements += compare(
                    kind="skew",
                    schema=schema,
                    thresholds=skew,
                    categorical=categorical,
                    statistics=train,
                    other=current_eval,
                    compared=f"span {_span(member)} train vs span {span} eval",
                )

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
        page = _page(f"Drift and skew — span {span}", verdict, passed, notes, measurements)
        (out / "index.html").write_text(page)
        published = publish_page(getattr(self, "_context", None), page, "drift")
        for note in notes:
            log.info("%s", note)
        write_gate(
            out,
            passed=passed,
            summary=verdict,
            failures=[m.line() for m in failed],
            report=str(published or out / "index.html"),
            figures={
                "drift_previous_span": document["previous_span"],
                "drift_max": max((m.observed or 0.0 for m in measurements if m.check == "drift"), default=None),
                "skew_max": max((m.observed or 0.0 for m in measurements if m.check == "skew"), default=None),
                "validation_notes": notes,
            },
        )
