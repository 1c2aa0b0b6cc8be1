"""What the canary analysis reads and how it judges one interval (fleet/canary_signals.py, fleet/canary.py); the
analysis on a real fleet with real bad candidates is tests/fleet/test_canary.py."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from pipeline_components.config import CanaryConfig
from pipeline_components.fleet.canary import judge
from pipeline_components.fleet.canary_signals import (
    VersionCounts,
    interval_counts,
    js_divergence,
    paired_answers,
    parse_metrics,
)

PAGE = """\
# TYPE runway_serving_request_count counter
runway_serving_request_count{model_name="flights",version="1",API="predict",entrypoint="REST",status="OK"} 90
runway_serving_request_count{model_name="flights",version="2",API="predict",entrypoint="REST",status="OK"} 40
runway_serving_request_count{model_name="flights",version="2",API="predict",entrypoint="GRPC",status="INVALID_ARGUMENT"} 10
runway_serving_request_count{model_name="flights",version="2",API="GetModelMetadata",entrypoint="REST",status="OK"} 3
runway_serving_request_count{model_name="penguins",version="2",API="predict",entrypoint="REST",status="OK"} 7
runway_serving_request_count{model_name="",version="",API="",entrypoint="REST",status="NOT_FOUND"} 1
runway_serving_request_latency_seconds_bucket{model_name="flights",version="2",API="predict",entrypoint="REST",le="0.025"} 20
runway_serving_request_latency_seconds_bucket{model_name="flights",version="2",API="predict",entrypoint="REST",le="0.05"} 30
runway_serving_request_latency_seconds_bucket{model_name="flights",version="2",API="predict",entrypoint="REST",le="0.1"} 40
runway_serving_request_latency_seconds_bucket{model_name="flights",version="2",API="predict",entrypoint="REST",le="+Inf"} 40
"""  # noqa: E501


def test_the_metrics_page_gives_each_versions_predictions_by_status_and_latency() -> None:
    counts = parse_metrics(PAGE, "flights")
    assert set(counts) == {1, 2}  # metadata calls, other models and unresolved requests are not predictions
    assert counts[2].by_status == Counter({"OK": 40, "INVALID_ARGUMENT": 10})
    assert (counts[2].requests, counts[2].succeeded) == (50, 40)
    # p99 of 40 successes: rank 39.6 falls in (50 ms, 100 ms], which holds ranks 31..40: interpolated as Prometheus.
    assert counts[2].p99_ms() == pytest.approx(50 + 50 * (39.6 - 30) / 10)
    assert counts[1].p99_ms() is None  # no latency series: no figure, not zero


def test_an_interval_is_the_difference_of_two_scrapes_and_a_restarted_instance_counts_anew() -> None:
    before = {"a": parse_metrics(PAGE, "flights"), "b": parse_metrics(PAGE, "flights")}
    restarted = parse_metrics(PAGE.replace("} 40\n", "} 4\n").replace("} 90", "} 9"), "flights")
    after = {"a": parse_metrics(PAGE.replace("} 90", "} 150"), "flights"), "b": restarted}
    assert interval_counts(before, after, 1).requests == 60 + 9  # a: 150 - 90; b restarted: all of its 9


def test_answers_are_paired_on_the_same_request_and_compared_as_distributions() -> None:
    def row(version: int, distance: float, answer: float) -> SimpleNamespace:
        return SimpleNamespace(version=version, features={"distance": distance}, predictions={"p": [[answer]]})

    rows = [row(1, d, d / 3000) for d in (200, 1000, 2500)] + [row(2, d, d / 3000 + 0.3) for d in (1000, 2500, 999)]
    stable, candidate = paired_answers(rows, stable=1, candidate=2)
    assert stable == pytest.approx([1000 / 3000, 2500 / 3000])  # 999 was never asked of stable: not paired
    assert candidate == pytest.approx([1000 / 3000 + 0.3, 2500 / 3000 + 0.3])
    assert js_divergence(stable, stable) == 0.0
    assert js_divergence([0.1] * 50, [0.9] * 50) == pytest.approx(1.0)  # disjoint
    assert 0 < js_divergence([0.1, 0.3, 0.5], [0.1, 0.3, 0.65]) < 0.5  # one of three answers moved a bucket


def counts(ok: int, failed: int = 0, *, slow: bool = False) -> VersionCounts:
    bound = 0.1 if slow else 0.01
    return VersionCounts(
        by_status=Counter({"OK": ok, "INVALID_ARGUMENT": failed}),
        buckets=Counter({0.005: 0, bound: ok, float("inf"): ok}),
    )


def test_an_interval_fails_on_each_check_it_crosses_and_says_which() -> None:
    options = CanaryConfig(min_requests=20)
    alike = ([0.2, 0.4, 0.6] * 10, [0.2, 0.4, 0.6] * 10)
    assert judge(options, 1, counts(50), counts(100), alike).passed
    assert judge(options, 1, counts(10), counts(100), alike).failures == [
        "10 mirrored requests (fewer than 20: nothing to judge)"
    ]
    (failure,) = judge(options, 1, counts(45, 5), counts(100), alike).failures
    assert failure.startswith("success rate 0.900 < 0.99")
    assert judge(options, 1, counts(45, 5), counts(90, 10), alike).passed  # no worse than stable's own failures
    (failure,) = judge(options, 1, counts(50, slow=True), counts(100), alike).failures
    assert failure == "p99 99.0 ms > 20.0 ms allowed (stable 10.0 ms)"  # 10 ms more than stable is allowed
    (failure,) = judge(options, 1, counts(50), counts(100), ([0.2] * 30, [0.8] * 30)).failures
    assert "answers diverge from stable's on the same 30 requests" in failure
