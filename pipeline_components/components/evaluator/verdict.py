"""The evaluation stage's verdict: the new span's evaluation and the trusted set's, together, and the page.

``decide`` is pure: it takes the two evaluations as ``evaluation_summary`` reads them and the thresholds, and says
whether the candidate is blessed, which evaluation refused it, and, when the served model collapses on the new span
while it holds on the trusted set, that this is evidence against the new span.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline_components.components.gate import checks_page
from pipeline_components.reports.render import Verdict, cell

NEW_SPAN, TRUSTED, EVIDENCE = "new span", "trusted set", "evidence against the new span"


@dataclass(frozen=True)
class Thresholds:
    """The gated metric and its thresholds, as the eval config (after run parameters) has them."""

    metric: str
    lower_bound: float | None
    max_regression: float | None
    max_baseline_drop: float | None
    trusted_max_regression: float | None = None  # None: max_regression on the trusted set too
    label_ratio: tuple[float | None, float | None] = (None, None)  # evaluation.min_label_ratio / max_label_ratio

    @property
    def trusted_regression(self) -> float | None:
        return self.max_regression if self.trusted_max_regression is None else self.trusted_max_regression


def thresholds_of(
    eval_config_json: str,
    max_baseline_drop: float | None,
    trusted_max_regression: float | None = None,
    label_ratio: tuple[float | None, float | None] = (None, None),
) -> Thresholds:
    """The one metric with a threshold in TFMA's eval config (JSON, as the executor receives it), and the
    evaluation stage's own thresholds (``evaluation.max_baseline_drop``, ``evaluation.trusted_max_regression``,
    ``evaluation.min_label_ratio`` and ``max_label_ratio``)."""
    own: dict[str, Any] = {
        "max_baseline_drop": max_baseline_drop,
        "trusted_max_regression": trusted_max_regression,
        "label_ratio": label_ratio,
    }
    config = json.loads(eval_config_json or "{}")
    for spec in config.get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            threshold = metric.get("threshold")
            if not threshold:
                continue
            name = metric_name(metric)
            lower = threshold.get("value_threshold", {}).get("lower_bound")
            change = threshold.get("change_threshold", {}).get("absolute")
            return Thresholds(
                metric=name,
                lower_bound=float(lower) if lower is not None else None,
                max_regression=-float(change) if change is not None else None,
                **own,
            )
    return Thresholds(metric="", lower_bound=None, max_regression=None, **own)


def _snake(class_name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in class_name).lstrip("_")


# A metric's name where TFMA's default (the snake case of its class: "a_u_c") is not the usual one. The pipeline's
# eval config names no metric itself (a `config` JSON inside the eval config's JSON needs backslashes, which ML
# Metadata 1.21 cannot store on PostgreSQL); the executor gives TFMA these names (``with_metric_names``).
METRIC_NAMES = {"AUC": "auc"}


def metric_name(metric: dict[str, Any]) -> str:
    """The name TFMA reports a metric of the eval config (JSON form) under, as the executor runs it."""
    named = json.loads(metric.get("config") or "{}").get("name")
    class_name = metric.get("class_name", "")
    return str(named or METRIC_NAMES.get(class_name) or _snake(class_name))


def with_metric_names(eval_config_json: str) -> str:
    """The eval config with ``{"name": ...}`` for each metric of ``METRIC_NAMES`` that names none (what TFMA
    receives; ML Metadata records the config without it)."""
    config = json.loads(eval_config_json or "{}")
    for spec in config.get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            if not metric.get("config") and metric.get("class_name") in METRIC_NAMES:
                metric["config"] = json.dumps({"name": METRIC_NAMES[metric["class_name"]]})
    return json.dumps(config)


@dataclass
class EvaluationVerdict:
    """What the evaluation stage decided (``verdict.json`` in the blessing; figures of the task)."""

    blessed: bool
    metric: str
    span: int | None
    trusted_spans: list[int]
    new_span: dict[str, Any]
    trusted: dict[str, Any] | None
    refused_by: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    baseline_drop: float | None = None
    label_ratio: float | None = None  # the new span's positive rate / the served model's mean prediction on it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _where(name: str, span: int | None, trusted_spans: list[int]) -> str:
    if name == NEW_SPAN:
        return f"new span {span}" if span is not None else "new span"
    return "trusted set (spans " + ", ".join(str(s) for s in trusted_spans) + ")"


def _threshold_lines(where: str, summary: dict[str, Any], limits: Thresholds, *, trusted: bool = False) -> list[str]:
    """Why this evaluation fails the gated metric's thresholds (none: an empty list)."""
    name = limits.metric
    candidate = summary.get("metrics", {}).get(name)
    baseline = summary.get("baseline_metrics", {}).get(name)
    lines = []
    if candidate is not None and limits.lower_bound is not None and candidate < limits.lower_bound:
        lines.append(f"{where}: {name} {candidate:.4f} is below the value threshold {limits.lower_bound:g}")
    regression = limits.trusted_regression if trusted else limits.max_regression
    key = "evaluation.trusted_max_regression" if trusted and limits.trusted_max_regression is not None else ""
    if candidate is not None and baseline is not None and regression is not None and candidate < baseline - regression:
        lines.append(
            f"{where}: {name} {candidate:.4f} is {baseline - candidate:.4f} below the served model's {baseline:.4f} "
            f"(change threshold {regression:g}{', ' + key if key else ''})"
        )
    return lines


def _refusal(name: str, summary: dict[str, Any], limits: Thresholds, where: str) -> list[str]:
    """The lines that refuse one evaluation (none: it holds).

    The new span is judged by TFMA (its ``validation_ok``, the eval config's thresholds). The trusted set is judged
    here, on the gated metric, with its own change threshold: the served model was trained on the trusted spans'
    period (their eval rows share its days and weather) and a candidate's window moves on, so on a clean year the
    candidate trails it there by up to 0.17 AUC (benchmarks/results/data_gate_months.md), far more than the new
    span's threshold; a candidate that learned wrong labels trails it by 0.3 and more.
    """
    trusted = name == TRUSTED
    if trusted and summary.get("metrics", {}).get(limits.metric) is not None:
        return _threshold_lines(where, summary, limits, trusted=True)
    if summary.get("validation_ok"):
        return []
    lines = _threshold_lines(where, summary, limits, trusted=trusted)
    return lines or [f"{where}: {failure}" for failure in summary.get("failures", [])] or [f"{where}: not validated"]


def decide(
    *,
    span: int | None,
    new_span: dict[str, Any],
    trusted: dict[str, Any] | None,
    trusted_spans: list[int],
    limits: Thresholds,
    notes: list[str],
) -> EvaluationVerdict:
    """Bless only when the new span's evaluation and the trusted set's both passed TFMA's thresholds and the served
    model did not collapse on the new span while holding on the trusted set.

    Args:
        span: the new span.
        new_span: ``evaluation_summary`` of the new span's 'eval' split.
        trusted: ``evaluation_summary`` of the trusted set, or None without one.
        trusted_spans: the spans of the trusted set.
        limits: the gated metric's thresholds.
        notes: what was not evaluated and why (kept in the verdict).

    Returns:
        The verdict, with one line per refusal naming the evaluation that refused.
    """
    verdict = EvaluationVerdict(
        blessed=True,
        metric=limits.metric,
        span=span,
        trusted_spans=list(trusted_spans),
        new_span=new_span,
        trusted=trusted,
        notes=list(notes),
    )
    for name, summary in ((NEW_SPAN, new_span), (TRUSTED, trusted)):
        lines = _refusal(name, summary, limits, _where(name, span, trusted_spans)) if summary is not None else []
        if lines:
            verdict.refused_by.append(name)
            verdict.failures += lines
    served_new = new_span.get("baseline_metrics", {}).get(limits.metric)
    served_trusted = (trusted or {}).get("baseline_metrics", {}).get(limits.metric)
    if served_new is not None and served_trusted is not None:
        verdict.baseline_drop = served_trusted - served_new
        if limits.max_baseline_drop is not None and verdict.baseline_drop > limits.max_baseline_drop:
            verdict.refused_by.append(EVIDENCE)
            verdict.failures.append(
                f"evidence against new span {span}: the served model's {limits.metric} is {served_new:.4f} on it but "
                f"{served_trusted:.4f} on the {_where(TRUSTED, span, trusted_spans)}, a drop of "
                f"{verdict.baseline_drop:.4f} > {limits.max_baseline_drop:g} (evaluation.max_baseline_drop): the "
                "new span's labels or features are suspect, not the models"
            )
    _judge_labels(verdict, limits)
    verdict.blessed = not verdict.refused_by
    return verdict


def _judge_labels(verdict: EvaluationVerdict, limits: Thresholds) -> None:
    """The new span's positive rate against what the served model expects of its features (binary labels).

    A label computed with another definition (late by more than an hour instead of 15 minutes) moves the rate and
    not the features, so the ratio leaves the band the clean spans keep, even when the rate itself stays inside the
    year's range. It works where the served model tracks the positive rate; on flights it does not (a clean
    September 0.49 x, June labelled "> 60 min" 0.46 x: benchmarks/results/label_ratio_2013.md), so flights leaves
    the bounds unset.
    """
    rate = verdict.new_span.get("metrics", {}).get("mean_label")
    expected = verdict.new_span.get("baseline_metrics", {}).get("mean_prediction")
    if rate is None or not expected:
        return
    verdict.label_ratio = rate / expected
    low, high = limits.label_ratio
    if (low is None or verdict.label_ratio >= low) and (high is None or verdict.label_ratio <= high):
        return
    band = f"below {low:g}" if low is not None and verdict.label_ratio < low else f"above {high:g}"
    if EVIDENCE not in verdict.refused_by:
        verdict.refused_by.append(EVIDENCE)
    verdict.failures.append(
        f"evidence against new span {verdict.span}: its positive rate {rate:.4f} is {verdict.label_ratio:.2f} x what "
        f"the served model expects from its features ({expected:.4f}), {band} "
        "(evaluation.min_label_ratio/max_label_ratio): the label's definition or computation may have changed"
    )


def _value(metrics: dict[str, float], name: str) -> str:
    return f"{metrics[name]:.4f}" if name in metrics else "-"


def _diff(summary: dict[str, Any], name: str) -> dict[str, Any] | str:
    metrics = summary.get("metrics", {})
    if f"{name}_diff" not in metrics:
        return "-"
    diff = metrics[f"{name}_diff"]
    return cell(f"{diff:+.4f}", "bad" if diff < 0 else "ok")


def evaluation_page(verdict: EvaluationVerdict, facts: dict[str, Any]) -> str:
    """Both evaluations side by side (candidate, served model, difference), the verdict first."""
    summaries = [("new", verdict.new_span), ("trusted", verdict.trusted or {})]
    names = sorted(
        {name for _, s in summaries for name in s.get("metrics", {}) if not name.endswith("_diff") and name != "loss"}
    )
    rows = []
    for name in names:
        row: list[Any] = [cell(name, "ok" if name == verdict.metric else "")]
        for _, summary in summaries:
            row += [
                _value(summary.get("metrics", {}), name),
                _value(summary.get("baseline_metrics", {}), name),
                _diff(summary, name),
            ]
        rows.append(row)
    where_new = _where(NEW_SPAN, verdict.span, verdict.trusted_spans)
    where_trusted = _where(TRUSTED, verdict.span, verdict.trusted_spans) if verdict.trusted else "trusted set (none)"
    who = ("candidate", "served", "diff")
    header = ["metric", *(f"{where}: {w}" for where in (where_new, where_trusted) for w in who)]
    headline = "blessed" if verdict.blessed else "not blessed: refused by the " + ", the ".join(verdict.refused_by)
    text = f"The gated metric is {verdict.metric}; the served model is the latest blessed one (the baseline)."
    table = {"heading": "Candidate and served model", "header": header, "rows": rows, "numeric": (1, 2, 3, 4, 5, 6)}
    return checks_page(
        title=f"Evaluation — {where_new}",
        verdict=Verdict(verdict.blessed, headline, verdict.failures),
        facts=facts,
        notes=verdict.notes,
        tables=[{**table, "text": text}],
    )
