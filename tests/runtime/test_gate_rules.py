"""The rules behind DeliveryValidator and the Evaluator's verdict, on small frames and figures (seconds).

The pipeline tests (``test_data_gate.py``, ``test_trusted_evaluation.py``) run these rules inside the real nodes on
real months; here each rule's edges: what passes, what is refused, and the line a person reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tfx.utils import proto_utils

from pipeline_components.components.delivery_validator.profile import (
    Profile,
    check_calendar,
    check_label,
    check_rows,
    read_profile,
)
from pipeline_components.components.evaluator.verdict import EVIDENCE, NEW_SPAN, TRUSTED, decide, thresholds_of
from pipeline_components.config import DeliveryConfig, load_pipeline_config
from pipeline_components.pipeline.factory import eval_config
from tests.conftest import CONFIGS

pytestmark = pytest.mark.runtime

FLIGHTS = DeliveryConfig(
    min_rows=20000, max_rows=60000, min_rows_ratio=0.8, max_rows_ratio=1.25, calendar_column="day", calendar_tolerance=3
)


def _month(span: int, rows: int, days: int, positive: float) -> Profile:
    late = round(rows * positive)
    return Profile(span, rows, {"0": rows - late, "1": late}, 0, list(range(1, days + 1)))


JANUARY, FEBRUARY = _month(1, 26398, 31, 0.2273), _month(2, 23611, 28, 0.2295)


def test_a_profile_reads_the_label_and_the_calendar_column(tmp_path: Path) -> None:
    path = tmp_path / "part.csv"
    path.write_text("day,x,is_delayed\n1,a,0\n1,b,1\n2,c,\n5,d,1\n")
    profile = read_profile([path], span=4, label="is_delayed", calendar_column="day")
    # The empty label makes pandas read 1.0: counted as 1, the missing one apart.
    assert profile == Profile(4, 4, {"0": 1, "1": 2}, 1, [1, 2, 5])
    with pytest.raises(KeyError, match=r"has no column\(s\) \['hour'\]"):
        read_profile([path], span=4, label="is_delayed", calendar_column="hour")


def test_rows_absolute_bounds_hold_without_history_and_the_median_with_it() -> None:
    assert [c.passed for c in check_rows(JANUARY, [], FLIGHTS)] == [True]
    (first,) = check_rows(_month(1, 1800, 2, 0.2), [], FLIGHTS)
    assert (
        not first.passed
        and first.line == "rows: 1,800, expected 20,000..60,000 (validation.delivery.min_rows/max_rows)"
    )
    assert all(c.passed for c in check_rows(FEBRUARY, [JANUARY], FLIGHTS))  # 0.89 x January
    absolute, partial = check_rows(_month(4, 21000, 24, 0.2), [_month(3, 27902, 31, 0.2), JANUARY], FLIGHTS)
    assert absolute.passed and not partial.passed  # above the absolute bound, below 0.8 x the median
    assert partial.line == (
        "rows: 21,000 is 0.77 x the previous spans' median 27,150 (spans 1, 3), expected 0.8..1.25 x: "
        "a partial delivery?"
    )


def test_calendar_coverage_allows_a_short_month_and_refuses_missing_days() -> None:
    (february,) = check_calendar(FEBRUARY, [JANUARY], FLIGHTS)
    assert february.passed  # 28 days after 31: within the tolerance of 3
    (three,) = check_calendar(_month(3, 2500, 3, 0.2), [FEBRUARY, JANUARY], FLIGHTS)
    assert not three.passed
    assert three.line == (
        "calendar: 3 distinct `day` values (1..3), expected at least 25 (the previous spans had 28..31, tolerance 3; "
        "validation.delivery.calendar_tolerance); absent: 4..31"
    )
    assert check_calendar(JANUARY, [], FLIGHTS) == []  # no history: nothing to expect


def test_label_shares_against_the_previous_spans_range() -> None:
    history = [FEBRUARY, JANUARY]
    september = _month(9, 27010, 30, 0.1324)  # the lowest real month of 2013, after the range 0.2273..0.2295
    (low,) = check_label(september, history, label="is_delayed", positive="1", max_share_change=0.1)
    assert low.passed is True
    inverted = _month(3, 27902, 31, 1 - 0.2284)
    (line,) = check_label(inverted, history, label="is_delayed", positive="1", max_share_change=0.1)
    assert not line.passed
    assert line.line == (
        "label is_delayed: positive rate 0.7716, expected 0.2273..0.2295 from spans 1, 2 ± 0.1 "
        "(validation.label.max_share_change): 0.5421 outside"
    )
    missing = Profile(3, 100, {"0": 80, "1": 10}, 10, None)
    assert [c.line for c in check_label(missing, [], label="y", positive="1", max_share_change=0.1)] == [
        "label y: 10 rows (10.00 %) have no label"
    ]


def test_multiclass_shares_name_each_class_and_a_new_class_fails() -> None:
    history = [Profile(2007, 100, {"0": 43, "1": 25, "2": 32}), Profile(2008, 100, {"0": 44, "1": 16, "2": 40})]
    shifted = Profile(2009, 100, {"0": 10, "1": 20, "2": 35, "3": 35})
    lines = {c.line.split(",")[0]: c.passed for c in check_label(shifted, history, label="species", positive=None,
                                                                 max_share_change=0.15)}  # fmt: skip
    assert lines == {
        "label species: share of 0 0.1000": False,  # 0.43..0.44: 0.33 below
        "label species: share of 1 0.2000": True,
        "label species: share of 2 0.3500": True,
        "label species: share of 3 0.3500": False,  # a class no previous span had
    }


def _summary(candidate: float, served: float, ok: bool) -> dict[str, object]:
    return {
        "metrics": {"auc": candidate, "auc_diff": candidate - served},
        "baseline_metrics": {"auc": served},
        "validation_ok": ok,
        "failures": [] if ok else ["TFMA's words"],
    }


def _judged(span: int, new: tuple[float, float, bool], trusted: tuple[float, float, bool] | None, limits: Any,
            trusted_spans: list[int]) -> Any:  # fmt: skip
    """``decide`` on (candidate, served, TFMA's verdict) summaries of the new span and the trusted set."""
    return decide(span=span, new_span=_summary(*new), trusted=_summary(*trusted) if trusted else None,
                  trusted_spans=trusted_spans, limits=limits, notes=[])  # fmt: skip


def test_the_thresholds_are_read_from_the_eval_config_the_executor_receives() -> None:
    config = load_pipeline_config(CONFIGS / "flights.yaml")
    limits = thresholds_of(proto_utils.proto_to_json(eval_config(config)), 0.1)
    assert (limits.metric, limits.lower_bound, limits.max_regression, limits.max_baseline_drop) == (
        "auc",
        0.65,
        0.01,
        0.1,
    )


def test_a_candidate_is_blessed_only_when_both_evaluations_hold() -> None:
    limits = thresholds_of(proto_utils.proto_to_json(eval_config(load_pipeline_config(CONFIGS / "flights.yaml"))), 0.1)
    clean = _judged(2, (0.78, 0.77, True), (0.77, 0.775, True), limits, [1])
    assert clean.blessed and clean.refused_by == [] and clean.baseline_drop == pytest.approx(0.005)
    # The case: the new month's wrong labels make the served model look bad and the candidate good.
    wrong = _judged(3, (0.70, 0.35, True), (0.40, 0.77, False), limits, [1, 2])
    assert not wrong.blessed and wrong.refused_by == [TRUSTED, EVIDENCE]
    assert wrong.failures == [
        "trusted set (spans 1, 2): auc 0.4000 is below the value threshold 0.65",
        "trusted set (spans 1, 2): auc 0.4000 is 0.3700 below the served model's 0.7700 (change threshold 0.01)",
        "evidence against new span 3: the served model's auc is 0.3500 on it but 0.7700 on the trusted set "
        "(spans 1, 2), a drop of 0.4200 > 0.1 (evaluation.max_baseline_drop): the new span's labels or features are "
        "suspect, not the models",
    ]
    worse = _judged(4, (0.60, 0.78, False), None, limits, [])
    assert worse.refused_by == [NEW_SPAN]
    assert worse.failures == [
        "new span 4: auc 0.6000 is below the value threshold 0.65",
        "new span 4: auc 0.6000 is 0.1800 below the served model's 0.7800 (change threshold 0.01)",
    ]


def test_the_trusted_set_has_its_own_change_threshold() -> None:
    """A clean month of 2013 (June after a model of January's, as measured): the candidate trails the served model
    by 0.14 on the trusted set, which the served model was trained on; its own threshold lets it through, TFMA's
    0.01 of the new span would have refused it (every clean month after January was refused that way)."""
    config = load_pipeline_config(CONFIGS / "flights.yaml")
    limits = thresholds_of(
        proto_utils.proto_to_json(eval_config(config)), 0.2, config.evaluation.trusted_max_regression
    )
    june = _judged(6, (0.799, 0.685, True), (0.662, 0.763, False), limits, [1])
    assert june.blessed and june.refused_by == [] and june.baseline_drop == pytest.approx(0.078)
    inverted = _judged(6, (0.70, 0.33, True), (0.40, 0.763, False), limits, [1])
    assert inverted.refused_by == [TRUSTED, EVIDENCE]
    assert inverted.failures[1] == (
        "trusted set (spans 1): auc 0.4000 is 0.3630 below the served model's 0.7630 (change threshold 0.2, "
        "evaluation.trusted_max_regression)"
    )


def test_a_positive_rate_far_below_what_the_served_model_expects_is_evidence_against_the_labels() -> None:
    """June labelled "> 60 min" instead of "> 15", as measured: its positive rate 0.142 lies inside 2013's range,
    and a model trained on it ranks flights as well as the served one; the served model's expectation of June (mean
    prediction 0.285, from June's own weather, hours and routes) shows the labels are off. The rule with a bound of
    0.6, as a dataset whose served model tracks its positive rate would set it."""
    config = load_pipeline_config(CONFIGS / "flights.yaml")
    assert config.evaluation.min_label_ratio is None  # off for flights: a clean September measured 0.49 x
    limits = thresholds_of(proto_utils.proto_to_json(eval_config(config)), 0.2, 0.2, (0.6, None))

    def june(rate: float) -> Any:
        new = {**_summary(0.80, 0.74, True)}
        new["metrics"] = {**new["metrics"], "mean_label": rate, "mean_prediction": 0.16}  # type: ignore[dict-item]
        new["baseline_metrics"] = {**new["baseline_metrics"], "mean_prediction": 0.2851}  # type: ignore[dict-item]
        return decide(span=6, new_span=new, trusted=_summary(0.75, 0.78, True), trusted_spans=[3, 4, 5],
                      limits=limits, notes=[])  # fmt: skip

    clean = june(0.3080)
    assert clean.blessed and clean.label_ratio == pytest.approx(1.080, abs=1e-3)
    shifted = june(0.1420)
    assert not shifted.blessed and shifted.refused_by == [EVIDENCE]
    assert shifted.failures == [
        "evidence against new span 6: its positive rate 0.1420 is 0.50 x what the served model expects from its "
        "features (0.2851), below 0.6 (evaluation.min_label_ratio/max_label_ratio): the label's definition or "
        "computation may have changed"
    ]
    # Without a served model (the first run) or a binary label (penguins), nothing to compare: no verdict either way.
    first = decide(span=1, new_span={"metrics": {"auc": 0.77, "mean_label": 0.2}, "validation_ok": True},
                   trusted=None, trusted_spans=[], limits=limits, notes=[])  # fmt: skip
    assert first.blessed and first.label_ratio is None
