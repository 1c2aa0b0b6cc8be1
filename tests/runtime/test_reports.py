"""The pages an operator opens: the verdict first (what failed and why), then the details; values that come from
data, models or errors are shown as text, never run as markup; a page is written whole or not at all."""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.components.drift_skew_validator.executor import Measurement, drift_page
from pipeline_components.components.great_expectations_validator.executor import expectations_page
from pipeline_components.components.infra_validator.executor import infra_page
from pipeline_components.components.model_inspector.render import to_html as saved_model_page
from pipeline_components.components.tflite_variants import report as tflite_report
from pipeline_components.reports.charts import Bar, threshold_bars
from pipeline_components.reports.node_page import write_node_report
from pipeline_components.reports.render import Verdict
from pipeline_components.settings import Settings

# What a CSV column, a model's tensor, a run parameter or an exception can hold.
FEATURE = "<script>alert('feature')</script>"
ERROR = 'ZZ & <b>bold</b> "quoted" > 10%'


def assert_shown_as_text(page: str, *values: str) -> None:
    """Each value appears escaped and never as markup (no script can run, no tag is opened)."""
    assert "<script" not in page.lower()
    assert "<b>bold" not in page
    for value in values:
        assert value not in page
        assert value in html.unescape(page), f"{value!r} is not shown on the page"


def verdict_of(page: str) -> str:
    """The verdict box's class (ok, bad, info): what the page says first."""
    return page.split('<div class="verdict ', 1)[1].split('"', 1)[0]


# --- a node's page (linked from its Airflow task) -------------------------------------------------------------------


def test_failed_data_gate_page_lists_each_anomaly(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    result = {
        "pipeline": "flights", "node": "ExampleValidator", "run_id": "manual__2013-03",
        "status": "gate_failed", "reason": "data validation failed: 1 anomalies",
        "figures": {"anomaly_count": 1, "report": "/x", "anomalies": [
            {"split": "train", "feature": "carrier", "short": "Unexpected string values",
             "description": "Examples contain values missing from the schema: ZZ (~10% of the examples)."},
        ]},
    }  # fmt: skip
    path = write_node_report(settings, result)
    assert path == tmp_path / "reports" / "flights" / "manual__2013-03" / "ExampleValidator.html"
    page = path.read_text()
    assert verdict_of(page) == "bad" and "gate failed" in page and "data validation failed: 1 anomalies" in page
    assert "carrier" in page and "ZZ (~10% of the examples)" in page


def test_evaluation_page_shows_metrics_vs_baseline_and_verdict(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    result = {
        "pipeline": "flights", "node": "Evaluator", "run_id": "r/1",
        "figures": {"metrics": {"auc": 0.7312, "auc_diff": -0.0123}, "blessed": False,
                    "failures": ["auc: -0.0123 is below the change threshold -0.01"]},
    }  # fmt: skip
    page = write_node_report(settings, result).read_text()  # type: ignore[union-attr]
    assert verdict_of(page) == "bad" and "not blessed" in page and "change threshold" in page
    assert "0.7312" in page and "-0.0123" in page


def test_a_gates_node_page_gives_its_verdict_and_links_its_own_page(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    own = tmp_path / "reports" / "flights" / "r" / "GreatExpectationsValidator.expectations.html"
    result = {
        "pipeline": "flights", "node": "GreatExpectationsValidator", "run_id": "r",
        "figures": {"gate_passed": False, "gate_summary": "suite 'flights': 1 failed",
                    "gate_failures": ["carrier: 100 values (4.00 %) not in the allowed set"], "report": str(own)},
    }  # fmt: skip
    page = write_node_report(settings, result).read_text()  # type: ignore[union-attr]
    assert verdict_of(page) == "bad" and "not in the allowed set" in page.split("</header>")[0]
    assert 'href="GreatExpectationsValidator.expectations.html"' in page  # beside it: a relative link works anywhere


def test_nodes_without_readable_figures_get_no_page(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    assert write_node_report(settings, {"pipeline": "p", "node": "Transform", "run_id": "r", "figures": {}}) is None


@pytest.mark.parametrize(
    "node, figures",
    [
        pytest.param("ExampleValidator", {"anomaly_count": 1, "anomalies": [
            {"split": "train", "feature": FEATURE, "short": ERROR, "description": ERROR}]}, id="anomalies"),
        pytest.param("Evaluator", {"metrics": {"auc": 0.7}, "blessed": False, "failures": [ERROR, FEATURE]},
                     id="evaluation"),
        pytest.param("Pusher", {"pushed": True, "version": FEATURE, "destination": f"/models/{ERROR}"}, id="push"),
        pytest.param("DriftSkewValidator", {"gate_passed": False, "gate_summary": ERROR, "gate_failures": [FEATURE],
                                            "report": "/r/x.drift.html"}, id="gate"),
    ],
)  # fmt: skip
def test_a_nodes_page_shows_hostile_values_as_text(tmp_path: Path, node: str, figures: dict[str, Any]) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    result = {
        "pipeline": "flights", "node": node, "run_id": "r", "status": "gate_failed", "reason": ERROR,
        "parameters_applied": [f"span={FEATURE}"], "figures": figures,
        "outputs": {"result": [{"type": FEATURE, "uri": f"/artifacts/{ERROR}"}]},
    }  # fmt: skip
    page = write_node_report(settings, result).read_text()  # type: ignore[union-attr]
    assert_shown_as_text(page, FEATURE, ERROR)


def test_a_page_is_replaced_whole_while_it_is_read(tmp_path: Path) -> None:
    """The Airflow plugin serves pages while runs rewrite them: a reader sees the old page or the new, never part."""
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})

    def result(marker: str) -> dict[str, Any]:
        anomalies = [{"split": "t", "feature": f"{marker}{i}", "short": "s", "description": "d"} for i in range(1500)]
        return {"pipeline": "p", "node": "ExampleValidator", "run_id": "r",
                "figures": {"anomaly_count": len(anomalies), "anomalies": anomalies}}  # fmt: skip

    path = write_node_report(settings, result("old"))
    assert path is not None
    complete = {path.read_text()}
    torn: list[int] = []
    done = threading.Event()

    def read_while_written() -> None:
        while not done.is_set():
            try:
                text = path.read_text()
            except FileNotFoundError:  # never: the page is replaced, not removed first
                torn.append(-1)
                continue
            if not text.rstrip().endswith("</html>"):
                torn.append(len(text))

    reader = threading.Thread(target=read_while_written)
    reader.start()
    try:
        deadline = time.monotonic() + 5
        for index in range(15):
            write_node_report(settings, result("new" if index % 2 else "old"))
            complete.add(path.read_text())
            if torn or time.monotonic() > deadline:
                break
    finally:
        done.set()
        reader.join()
    assert torn == [], f"a reader saw {len(torn)} partial page(s) of {sorted(len(c) for c in complete)} characters"
    assert len(complete) == 2
    assert not [p for p in path.parent.iterdir() if p != path], "temporary files left beside the page"


# --- every gate's own page ------------------------------------------------------------------------------------------


def test_the_drift_page_shows_each_comparison_and_charts_it() -> None:
    measurements = [
        Measurement("drift", FEATURE, "L-infinity distance", 0.31, 0.2, "span 7 train vs span 6 train"),
        Measurement("skew", "distance", "Jensen-Shannon divergence", 0.01, 0.1, "span 7 train vs span 7 eval"),
        Measurement("skew", "dep_hour", "Jensen-Shannon divergence", None, 0.1, "span 6 train vs span 7 eval"),
    ]
    failures = [m.line() for m in measurements if m.failed]
    page = drift_page(
        span=7, verdict=Verdict(False, "2 of 3 comparisons above threshold", failures), notes=[ERROR],
        measurements=measurements,
    )  # fmt: skip
    assert verdict_of(page) == "bad" and "2 of 3 comparisons above threshold" in page
    assert_shown_as_text(page, FEATURE, ERROR)
    chart = page.split('<div class="chart">', 1)[1].split("</div>", 1)[0]
    # One bar per measured comparison (the absent feature has none), the failing one marked.
    assert chart.count('id="bar-') == 2 and 'id="bar-0-fail"' in chart and 'id="bar-1-ok"' in chart
    assert "&lt;script&gt;" in chart and "1.55" in chart  # its label, as text; 0.31 / 0.2


def test_the_expectations_page_lists_each_failing_expectation_and_links_data_docs() -> None:
    page = expectations_page(
        span=3, verdict=Verdict(False, "suite 'flights': 1 failed", [ERROR]),
        facts={"span": 3, "files": f"/data/{FEATURE}.csv", "rows": 28}, docs="data_docs/index.html",
    )  # fmt: skip
    assert verdict_of(page) == "bad" and 'href="data_docs/index.html"' in page
    assert_shown_as_text(page, FEATURE, ERROR)


def test_the_infra_page_shows_each_check_against_the_real_server() -> None:
    verdict = {
        "blessed": False,
        "failures": [ERROR],
        "checks": [{"check": "load (with warmup)", "ok": True, "detail": "AVAILABLE"},
                   {"check": FEATURE, "ok": False, "detail": ERROR}],
        "server": "runway-model-server", "server_command": f"--model_name={FEATURE}", "seconds": 3.2,
    }  # fmt: skip
    page = infra_page(verdict, title="Infra validation of flights_delay", summary="not pushed")
    assert verdict_of(page) == "bad" and "AVAILABLE" in page and "runway-model-server" in page
    assert_shown_as_text(page, FEATURE, ERROR)


def _tflite_result(name: str, reason: str) -> dict[str, Any]:
    """The shape of ``produce_variants``' result (``tflite_variants.json``), two variants."""

    def variant(variant_name: str, accepted: bool, size: int, auc: float) -> dict[str, Any]:
        measured = {
            "metrics": {"auc": auc, "accuracy": 0.76}, "agreement": 0.99, "size_bytes": size, "gzip_bytes": size // 2,
            "weight_bytes": size // 3, "latency_p50_ms": 0.05, "latency_p95_ms": 0.08, "throughput_rows_per_s": 9e4,
        }  # fmt: skip
        return {
            "name": variant_name, "description": "post-training", "family": "ptq", "budget": 0.01, "accepted": accepted,
            "delta": auc - 0.78, "measured": measured, "reason": reason if not accepted else "within budget",
            "notes": [reason], "size_ratio_vs_float32": 1.0, "weights_ratio_vs_float32": 1.0,
        }  # fmt: skip

    return {
        "run_id": f"manual__{name}", "metric": "auc", "budgets": {"ptq": 0.01, "qat": 0.005},
        "summary": f"1 of 2 variants accepted ({name})",
        "reference": {"rows": 512, "span": 3, "metrics": {"auc": 0.78, "accuracy": 0.77}},
        "encoder_check": {"ok": True, "max_abs_diff_numeric": 0.0, "mismatched_indices": 0},
        "fine_tuned_float": None, "variants": [variant(name, True, 90_000, 0.779), variant("int8", False, 30_000, 0.7)],
        "accepted": [name], "produced": [name, "int8"],
    }  # fmt: skip


def test_the_tflite_page_shows_every_variant_and_charts_size_against_the_metric() -> None:
    result = _tflite_result(FEATURE, ERROR)
    chart = tflite_report.plot_svg(result)
    page = tflite_report.to_html(result, chart)
    assert verdict_of(page) == "ok" and "1 of 2 variants accepted" in page
    assert_shown_as_text(page, FEATURE, ERROR)
    # One point per measured variant, accepted and rejected told apart; the reference and the budgets' floors.
    assert 'id="variant-0-accepted"' in chart and 'id="variant-1-rejected"' in chart
    assert "SavedModel 0.7800" in chart and "ptq budget" in chart and "qat budget" in chart
    assert tflite_report.plot_svg(result) == chart  # deterministic: the same result, the same bytes


def test_a_tflite_run_that_built_nothing_says_so_first() -> None:
    result = {**_tflite_result("float32", "could not be built"), "produced": [], "accepted": []}
    page = tflite_report.to_html(result, tflite_report.plot_svg(result))
    assert verdict_of(page) == "bad" and "no variant could be built and run" in page


def test_the_saved_model_page_shows_tensor_names_as_text() -> None:
    tensor = {"dtype": "DT_FLOAT", "shape": [-1], "name": f"serving_default_{FEATURE}:0"}
    report = {
        "path": f"/models/{ERROR}", "tensorflow_version": "2.21.0", "size_bytes": 4096,
        "meta_graphs": [{"tags": ["serve"], "signatures": {FEATURE: {
            "method_name": "tensorflow/serving/predict", "inputs": {FEATURE: tensor}, "outputs": {"p": tensor}}}}],
        "variables": {"count": 2, "parameters": 10, "file_bytes": 80}, "assets": [], "assets_extra": [],
        "ops": ["MatMul", FEATURE], "saved_model_pb_sha256": "0" * 64,
    }  # fmt: skip
    contract = {"passed": False, "summary": ERROR, "failures": [ERROR], "differences": []}
    page = saved_model_page(report, contract)
    assert verdict_of(page) == "bad"
    assert_shown_as_text(page, FEATURE, ERROR)
    assert verdict_of(saved_model_page(report)) == "info"  # no contract to judge: information only


# --- charts -----------------------------------------------------------------------------------------------------------


def test_a_chart_is_the_same_bytes_for_the_same_figures() -> None:
    bars = [Bar("drift: carrier", 0.5), Bar("skew: distance", 1.5)]
    first = threshold_bars(bars, xlabel="observed / threshold")
    assert first == threshold_bars(bars, xlabel="observed / threshold")
    assert first.startswith("<svg") and "Date" not in first  # inline, no timestamp
    assert threshold_bars([], xlabel="x") == ""
