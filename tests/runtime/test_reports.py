"""The pages an operator opens from a task: what failed and why, the metrics against the baseline."""

from __future__ import annotations

from pathlib import Path

from pipeline_components.runtime.reports import write_node_report
from pipeline_components.settings import Settings


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
    assert "gate_failed" in page and "carrier" in page and "ZZ (~10% of the examples)" in page


def test_evaluation_page_shows_metrics_vs_baseline_and_verdict(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    result = {
        "pipeline": "flights", "node": "Evaluator", "run_id": "r/1",
        "figures": {"metrics": {"auc": 0.7312, "auc_diff": -0.0123}, "blessed": False,
                    "failures": ["auc: -0.0123 is below the change threshold -0.01"]},
    }  # fmt: skip
    page = write_node_report(settings, result).read_text()  # type: ignore[union-attr]
    assert "0.7312" in page and "-0.0123" in page and "not blessed" in page and "change threshold" in page


def test_nodes_without_readable_figures_get_no_page(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    assert write_node_report(settings, {"pipeline": "p", "node": "Transform", "run_id": "r", "figures": {}}) is None
