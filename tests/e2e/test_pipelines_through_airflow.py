"""End to end: real data -> Airflow 3 DAG run -> TFX nodes in the runtime environment -> pushed model.

Slow (each DAG run is sixteen TFX nodes and the rollout task group: one to three minutes here through the warm
runtime). They use small samples of the real data and few training steps, through the same `runway` commands a
user types.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.settings import Settings
from tests.fleet.fixtures import fleet_port_args
from tests.helpers import (
    PIPELINE_NODES,
    ROLLOUT_TASKS,
    check,
    latest_summary,
    model_store_versions,
    overlapping,
    runtime_json,
    runway,
)

pytestmark = pytest.mark.e2e

FAST = [
    "--set",
    "model.train_steps=150",
    "--set",
    "model.eval_steps=5",
    # A model trained for 150 steps on a sample: gate on a reachable value, and accept any change vs the
    # baseline so that the second run's push does not depend on sampling noise.
    "--set",
    "evaluation.lower_bound=0.55",
    "--set",
    "evaluation.max_regression=1.0",
    "--set",
    "evaluation.trusted_max_regression=1.0",
    "--set",
    "evaluation.max_baseline_drop=1.0",
    # A 20 % sample of a month holds about 5,000 flights: the samples' own row bound (production: 20,000).
    "--set",
    "validation.delivery.min_rows=500",
    # Two of the nine on-device variants (one post-training, one QAT) keep the runs short; every variant is
    # exercised in tests/runtime/test_tflite_variants.py.
    "--param",
    "tflite_variants=int8,qat_int8",
]
ALL_TASKS = {"check_params", *PIPELINE_NODES}
# No serving fleet runs in these tests: the rollout skips (tests/fleet exercises it).
ROLLOUT_SKIPPED = {task: "skipped" for task in ROLLOUT_TASKS}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env({"RUNWAY_HOME": str(tmp_path_factory.mktemp("runway-home"))})


def _states(summary: dict[str, Any]) -> dict[str, str]:
    return {task["task_id"]: task["state"] for task in summary["tasks"]}


def _tries(summary: dict[str, Any]) -> dict[str, int]:
    return {task["task_id"]: task["try_number"] for task in summary["tasks"]}


@pytest.fixture(scope="module")
def two_monthly_runs(home: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """January arrives and the pipeline runs; then February arrives and it runs again."""
    check(runway(home, "data", "prepare", "flights", "--spans", "1", "--sample-fraction", "0.2"))
    check(runway(home, "run", "flights", *FAST))
    first = latest_summary(home, "flights")
    check(runway(home, "data", "prepare", "flights", "--spans", "2", "--sample-fraction", "0.2"))
    check(runway(home, "run", "flights", *FAST))
    second = latest_summary(home, "flights")
    return first, second


def test_every_task_succeeds_and_the_model_is_pushed(
    home: Settings, two_monthly_runs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    first, second = two_monthly_runs
    for summary in (first, second):
        assert _states(summary) == {task: "success" for task in ALL_TASKS} | ROLLOUT_SKIPPED
        push = summary["metadata"]["push"]
        assert push["pushed"] is True
        assert Path(push["destination"], "saved_model.pb").is_file()
        # Published whole by one rename, with the samples the fleet rollout verifies against (docs/fleet.md).
        assert Path(push["destination"], "assets.extra", "runway_verification.json").is_file()
        assert Path(push["destination"]).parent == home.model_store / "flights_delay"
    versions = model_store_versions(home, "flights_delay")
    assert [v.name for v in versions] == sorted(
        {first["metadata"]["push"]["version"], second["metadata"]["push"]["version"]}, key=int
    )


def test_independent_branches_run_side_by_side(two_monthly_runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """`runway run` hands ready tasks to the LocalExecutor: the four checks after the Trainer overlap in time."""
    after_trainer = ["Evaluator", "InfraValidator", "ModelInspector", "TFLiteVariants"]
    for summary in two_monthly_runs:
        trainer = next(t for t in summary["tasks"] if t["task_id"] == "Trainer")
        assert all(t["start_date"] >= trainer["end_date"] for t in summary["tasks"] if t["task_id"] in after_trainer)
        assert overlapping(summary["tasks"], after_trainer), (
            f"the branches after the Trainer ran one after another: {summary['tasks']}"
        )


def test_a_new_month_is_ingested_and_the_window_rolls(
    two_monthly_runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = two_monthly_runs
    assert first["metadata"]["spans"] == {"ingested": [1], "training_window": [1]}
    assert second["metadata"]["spans"] == {"ingested": [2], "training_window": [1, 2]}


def test_second_run_is_evaluated_against_the_first_runs_model(
    two_monthly_runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = two_monthly_runs
    assert first["metadata"]["evaluation"]["baseline_run_id"] is None
    evaluation = second["metadata"]["evaluation"]
    assert evaluation["baseline_run_id"] == first["run_id"]
    assert evaluation["blessed"] is True
    assert 0.55 <= evaluation["metrics"]["auc"] <= 1.0
    assert "auc_diff" in evaluation["metrics"]  # the change against the baseline was computed


def test_lineage_from_examples_to_pushed_model_under_the_airflow_run_id(
    two_monthly_runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = two_monthly_runs
    lineage = second["metadata"]["lineage"]
    by_node = {(item["node"], item["type"], item["run_id"]) for item in lineage}
    run_id = second["run_id"]
    assert run_id.startswith("manual__")  # Airflow's run id, used as the TFX pipeline run id
    for node, kind in [
        ("Pusher", "PushedModel"),
        ("Evaluator", "ModelBlessing"),
        ("Trainer", "Model"),
        ("Transform", "TransformGraph"),
        ("Transform", "Examples"),
        ("CsvExampleGen", "Examples"),
        ("ImportSchemaGen", "Schema"),
    ]:
        assert (node, kind, run_id) in by_node, f"{kind} from {node} of run {run_id} missing from the lineage"
    # The training window reaches back to January's examples, ingested by the first run.
    assert ("CsvExampleGen", "Examples", first["run_id"]) in by_node


def test_pushed_model_predicts_for_real_flights(
    home: Settings, two_monthly_runs: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    _, second = two_monthly_runs
    result = runtime_json(home, "predict", "flights", "--count", "20")
    assert result["version"] == second["metadata"]["push"]["version"]
    assert result["span"] == "span-2013-02"
    probabilities = [row["prediction"] for row in result["rows"]]
    assert len(probabilities) == 20
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert len(set(probabilities)) > 1  # the model looks at the features


def test_penguins_run_through_the_same_dag_code_and_ends_served_by_the_fleet(home: Settings) -> None:
    """What `make run` does, on penguins: a local fleet behind nginx, the run, its rollout, a query."""
    check(runway(home, "fleet", "up", *fleet_port_args(3)))  # the default 3 instances
    try:
        out = check(runway(home, "run", "penguins", "--serve", "--param", "train_steps=200"))
        summary = latest_summary(home, "penguins")
        assert summary["dag_id"] == "penguins_pipeline"
        rollout_done = {task: "success" for task in ROLLOUT_TASKS} | {"rollout.rollback_on_failure": "skipped"}
        assert _states(summary) == {task: "success" for task in ALL_TASKS} | rollout_done
        meta = summary["metadata"]
        assert meta["spans"] == {"ingested": [2009], "training_window": [2009]}
        assert meta["push"]["pushed"] is True
        assert meta["evaluation"]["metrics"]["sparse_categorical_accuracy"] >= 0.8
        version = meta["push"]["version"]
        assert f"Served: version {version} of penguins_species is `stable` on 3 instances" in out
        assert "curl -s -X POST http://127.0.0.1:" in out and "runway fleet down" in out
        # A downstream app asks the load balancer over gRPC for the stable label: the new version answers.
        answer = json.loads(
            check(runway(home, "query", "--pipeline", "penguins", "--protocol", "grpc", "--example-from-span", "2009",
                         "--output", "json"))
        )  # fmt: skip
        assert int(answer["version"]) == int(version)
        result = runtime_json(home, "predict", "penguins", "--count", "5")
        assert all(row["prediction"].split()[0] in {"Adelie", "Chinstrap", "Gentoo"} for row in result["rows"])
    finally:
        check(runway(home, "fleet", "down"))


def test_a_failing_node_fails_its_task_with_the_nodes_error(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    span = settings.data_dir / "flights" / "span-2013-01"
    span.mkdir(parents=True)
    (span / "README.txt").write_text("no CSV here")
    result = runway(settings, "run", "flights", *FAST)
    assert result.returncode != 0
    summary = latest_summary(settings, "flights")
    states = _states(summary)
    assert states["CsvExampleGen"] == "failed"
    assert states["Pusher"] in {"upstream_failed", None}
    assert not model_store_versions(settings, "flights_delay")
    log_text = _latest_log(settings).read_text()
    assert "no input files match" in log_text and "span-2013-*/*.csv" in log_text
    assert _tries(summary)["CsvExampleGen"] == 1  # a gate: not retried


def test_anomalies_in_a_new_span_stop_the_run_before_training(tmp_path: Path) -> None:
    """A month with an unseen carrier: ExampleValidator fails (not retried), nothing downstream runs."""
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    check(runway(settings, "data", "prepare", "flights", "--spans", "3", "--sample-fraction", "0.05"))
    csv_path = settings.data_dir / "flights" / "span-2013-03" / "flights.csv"
    lines = csv_path.read_text().splitlines()
    header = lines[0].split(",")
    carrier = header.index("carrier")
    corrupted = [lines[0]]
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        if i % 10 == 0:
            cells[carrier] = "ZZ"  # no such carrier in the committed schema
        corrupted.append(",".join(cells))
    csv_path.write_text("\n".join(corrupted) + "\n")
    result = runway(settings, "run", "flights", *FAST)
    assert result.returncode != 0
    summary = latest_summary(settings, "flights")
    states = _states(summary)
    assert states["ExampleValidator"] == "failed"
    assert states["Transform"] == "upstream_failed" and states["Trainer"] == "upstream_failed"
    assert not model_store_versions(settings, "flights_delay")
    log_text = _latest_log(settings).read_text()
    assert "data validation failed" in log_text and "carrier" in log_text
    assert _tries(summary)["ExampleValidator"] == 1


def _latest_log(settings: Settings) -> Path:
    return sorted((settings.home / "logs").glob("flights_pipeline-*.log"))[-1]
