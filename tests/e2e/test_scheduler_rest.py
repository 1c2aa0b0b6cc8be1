"""A real Airflow 3: API server, scheduler (LocalExecutor) and DAG processor, driven through the REST API.

The run is triggered with non-default parameters, independent branches run at the same time, one node fails
once on purpose (a transient failure) and is retried, and every node reports the parameter values it applied.

The transient failure is a real one, made from the test's side (``StorageFault``): the product has no switch
for it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_components import boundary as run_params
from pipeline_components.settings import Settings
from tests.airflow_stack import Api, airflow_stack, wait
from tests.helpers import PIPELINE_NODES, ROLLOUT_TASKS, check, listening_addresses, overlapping, runway

pytestmark = pytest.mark.e2e

DAG_ID = "flights_pipeline"
PARAMS = {
    "span": 1,
    "train_steps": 120,
    "eval_steps": 5,
    "learning_rate": 0.005,
    "eval_lower_bound": 0.5,
    "eval_max_regression": 1.0,
    "tflite_variants": ["int8"],  # the form's multiple choice
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Api]]:
    home = tmp_path_factory.mktemp("scheduler-home")
    settings = Settings.from_env({"RUNWAY_HOME": str(home)})
    check(runway(settings, "data", "prepare", "flights", "--spans", "1,2", "--sample-fraction", "0.1"))
    check(runway(settings, "data", "prepare", "penguins"))
    # 10 % samples of months: their own row bound (the production bound is a whole month's).
    check(runway(settings, "compile", "flights", "penguins", "--set", "validation.delivery.min_rows=50"))
    with airflow_stack(settings, users={"operator": "admin"}, dag_id=DAG_ID) as airflow:
        yield settings, airflow.api("operator")


class StorageFault:
    """One node's first attempt fails as it would when shared storage refuses a write, then storage recovers.

    A file stands where TFX creates the node's artifact folder (``<pipeline root>/<node>``), so TFX's launcher
    fails that attempt ("not a directory"); once Airflow has put the task up for retry, the file is removed and
    the retry runs on healthy storage (it resumes the execution the first attempt registered in ML Metadata).
    """

    def __init__(self, settings: Settings, pipeline: str, node: str) -> None:
        self.node = node
        self.path = settings.pipeline_root(pipeline) / node
        self.repaired = False

    def inject(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("a file where the node's artifact folder goes: its first attempt cannot write\n")

    def repair_once_retried(self, api: Api, dag_id: str, run_id: str) -> None:
        """Remove the fault as soon as the node's task waits for its retry (Airflow waits 20 s or more)."""
        if self.repaired:
            return
        status, task = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{self.node}")
        if status == 200 and task["state"] in ("up_for_retry", "failed"):
            self.path.unlink(missing_ok=True)
            self.repaired = True


def test_the_ui_and_rest_api_listen_on_loopback_only(stack: tuple[Settings, Api]) -> None:
    """Started with runway's Airflow settings (what `runway airflow standalone` uses), nothing is published."""
    _, api = stack
    assert listening_addresses(int(api.base.rsplit(":", 1)[1])) == {"0100007F"}


def test_trigger_form_lists_every_parameter_with_type_and_description(stack: tuple[Settings, Api]) -> None:
    _, api = stack
    status, details = api.call("GET", f"/api/v2/dags/{DAG_ID}/details")
    assert status == 200
    form = details["params"]
    assert set(form) == {p.name for p in run_params.PARAMETERS}
    for parameter in run_params.PARAMETERS:
        entry = form[parameter.name]
        assert entry["description"] == parameter.description
        assert entry["schema"]["type"] == parameter.schema["type"]


def test_an_invalid_parameter_is_refused_at_trigger_time(stack: tuple[Settings, Api]) -> None:
    _, api = stack
    status, body = api.call(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {"train_steps": 0}}
    )
    assert status == 400, body
    assert "train_steps" in json.dumps(body)


@pytest.fixture(scope="module")
def finished_run(stack: tuple[Settings, Api]) -> tuple[Settings, Api, str, list[dict[str, Any]]]:
    settings, api = stack
    fault = StorageFault(settings, "flights", "StatisticsGen")  # one transient failure, to see the retry
    fault.inject()
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    run_id = api.trigger(DAG_ID, PARAMS)

    def done() -> str | None:
        fault.repair_once_retried(api, DAG_ID, run_id)
        return api.run_state(DAG_ID, run_id)

    state = wait(f"run {run_id}", done, timeout=1500, every=2)
    assert fault.repaired, "the StatisticsGen task never waited for a retry: the injected fault did not fail it"
    status, instances = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    assert status == 200
    tasks = instances["task_instances"]
    assert state == "success", {t["task_id"]: t["state"] for t in tasks}
    return settings, api, run_id, tasks


def test_every_task_succeeds_and_independent_branches_overlap(
    finished_run: tuple[Settings, Api, str, list[dict[str, Any]]],
) -> None:
    _, _, _, tasks = finished_run
    # Every node succeeds; no serving fleet runs here, so the rollout task group skips (tests/fleet covers it).
    expected = {task: "success" for task in {"check_params", *PIPELINE_NODES}}
    expected |= {task: "skipped" for task in ROLLOUT_TASKS}
    assert {t["task_id"]: t["state"] for t in tasks} == expected
    roots = ["CsvExampleGen", "ImportSchemaGen", "latest_blessed_model_resolver"]
    assert overlapping(tasks, roots), f"the independent root nodes ran one after another: {tasks}"


def test_a_transient_failure_is_retried(finished_run: tuple[Settings, Api, str, list[dict[str, Any]]]) -> None:
    _, _, _, tasks = finished_run
    tries = {t["task_id"]: t["try_number"] for t in tasks}
    assert tries["StatisticsGen"] == 2
    assert tries["Trainer"] == 1


def test_each_node_saw_the_run_parameters(finished_run: tuple[Settings, Api, str, list[dict[str, Any]]]) -> None:
    settings, api, run_id, _ = finished_run

    def applied(task_id: str) -> list[str]:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        status, entry = api.call("GET", path)
        assert status == 200, entry
        value = entry["value"]
        return (json.loads(value) if isinstance(value, str) else value)["parameters_applied"]

    assert applied("CsvExampleGen") == ["range_config: span 1"]
    assert "train_args.num_steps: 120" in applied("Trainer")
    assert "custom_config.learning_rate: 0.005" in applied("Trainer")
    assert applied("StatisticsGen") == []
    report = json.loads(check(runway(settings, "report", "flights", "--run-id", run_id, "--json")))
    trainer = report["metadata"]["nodes"]["Trainer"]["properties"]
    assert json.loads(trainer["train_args"]) == {"num_steps": 120}
    assert report["metadata"]["spans"]["ingested"] == [1]
    assert Path(report["metadata"]["push"]["destination"], "saved_model.pb").is_file()


def test_a_new_span_triggers_retraining(finished_run: tuple[Settings, Api, str, list[dict[str, Any]]]) -> None:
    """The data DAG prepares the next month and updates the Asset; the scheduler starts the pipeline."""
    settings, api, first_run, _ = finished_run
    api.call("PATCH", "/api/v2/dags/flights_data", {"is_paused": False})
    status, run = api.call("POST", "/api/v2/dags/flights_data/dagRuns", {"logical_date": None, "conf": {}})
    assert status == 200, run

    def data_done() -> str | None:
        state = api.call("GET", f"/api/v2/dags/flights_data/dagRuns/{run['dag_run_id']}")[1]["state"]
        return state if state in ("success", "failed") else None

    assert wait("the data DAG", data_done, timeout=300, every=3) == "success"
    assert (settings.data_dir / "flights" / "span-2013-03" / "flights.csv").is_file()

    def triggered() -> list[dict[str, Any]]:
        runs = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")[1]["dag_runs"]
        return [r for r in runs if r["run_type"] == "asset_triggered"]

    runs = wait("an asset-triggered run of the pipeline", triggered, timeout=180, every=3)
    assert runs[0]["dag_run_id"] != first_run


def test_the_evaluation_report_is_linked_from_its_task(
    finished_run: tuple[Settings, Api, str, list[dict[str, Any]]],
) -> None:
    _, api, run_id, _ = finished_run
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/Evaluator/links"
    status, links = api.call("GET", path)
    assert status == 200, links
    url = links.get("Report") or links.get("extra_links", {}).get("Report")
    assert url and url.startswith("/runway/reports/flights/"), links
    # Only for an Airflow login (the API server does not authenticate a plugin's app: the plugin must).
    for headers, refused in (({}, 401), ({"Authorization": "Bearer not-a-token"}, 403)):
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(urllib.request.Request(api.base + url, headers=headers), timeout=30)
        assert answer.value.code == refused and b"auc" not in answer.value.read()
    with pytest.raises(urllib.error.HTTPError, match="401"):
        urllib.request.urlopen(api.base + "/runway/", timeout=30)
    request = urllib.request.Request(api.base + url, headers={"Authorization": f"Bearer {api.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        page = response.read().decode()
    assert "Evaluation" in page and "auc" in page


def test_two_runs_of_one_pipeline_at_once_keep_ml_metadata_consistent(
    finished_run: tuple[Settings, Api, str, list[dict[str, Any]]],
) -> None:
    """penguins allows two active runs: backfill two study years at the same time, on one ML Metadata store."""
    settings, api, _, _ = finished_run
    api.call("PATCH", "/api/v2/dags/penguins_pipeline", {"is_paused": False})
    run_ids = {}
    for year in (2007, 2008):
        conf = {"span": year, "train_steps": 50, "eval_lower_bound": 0.0, "eval_max_regression": 1.0}
        status, run = api.call("POST", "/api/v2/dags/penguins_pipeline/dagRuns", {"logical_date": None, "conf": conf})
        assert status == 200, run
        run_ids[year] = run["dag_run_id"]

    def all_done() -> dict[int, dict[str, Any]] | None:
        runs = {y: api.call("GET", f"/api/v2/dags/penguins_pipeline/dagRuns/{r}")[1] for y, r in run_ids.items()}
        return runs if all(r["state"] in ("success", "failed") for r in runs.values()) else None

    runs = wait("two penguins runs", all_done, timeout=1500, every=5)
    assert {y: r["state"] for y, r in runs.items()} == {2007: "success", 2008: "success"}
    a, b = (runs[2007], runs[2008])
    assert a["start_date"] < b["end_date"] and b["start_date"] < a["end_date"], "the two runs did not overlap"

    versions = set()
    for year, run_id in run_ids.items():
        report = json.loads(check(runway(settings, "report", "penguins", "--run-id", run_id, "--json")))["metadata"]
        assert report["spans"]["ingested"] == [year]
        assert set(report["nodes"]) >= {"CsvExampleGen", "Trainer", "Evaluator", "Pusher"}
        assert all(node["state"] in ("COMPLETE", "CACHED") for node in report["nodes"].values()), report["nodes"]
        lineage = {(item["node"], item["run_id"]) for item in report["lineage"]}
        assert ("Trainer", run_id) in lineage and ("CsvExampleGen", run_id) in lineage
        versions.add(report["push"]["version"])
    assert len(versions) == 2  # two distinct versions, one per run
