"""Real TFX nodes through the warm runtime: what a cold process would record, without the import cost.

The penguins pipeline (a few training steps) runs node by node through the warm runtime service (TensorFlow, TFX,
TFDV, TFMA and Beam preloaded, a forked child per node: Beam's FnApiRunner, Transform, Keras training and TFMA all
run in forked children here). Every node must produce the outputs its IR declares, ML Metadata must record the run
completely (states, spans, lineage to the pushed model), and the run summary computed through the service must equal
the one a cold ``python -m pipeline_components.runtime report`` process computes from the same store. Running every
node cold as well, to compare, cost eight more minutes of the suite; cold node runs are covered by the runtime suite
and by ``tests/e2e/test_standalone.py`` (``RUNWAY_WARM_RUNTIME=off``). About three minutes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.cli.bridge import runtime
from pipeline_components.orchestration.runner import NodeCommand
from pipeline_components.orchestration.warm_client import (
    ServicePaths,
    WarmNodeRunner,
    WarmSettings,
    ping,
    stop_service,
)
from pipeline_components.settings import Settings
from tests.helpers import check, missing, runtime_available, runtime_json, runway

pytestmark = pytest.mark.runtime

RUN_ID = "manual__warm-vs-cold"


def _home(root: Path, data_dir: Path) -> Settings:
    settings = Settings.from_env({"RUNWAY_HOME": str(root), "RUNWAY_DATA_DIR": str(data_dir)})
    if not (data_dir / "penguins").is_dir():
        check(runway(settings, "data", "prepare", "penguins"))
    # A 20-step model is blessed whatever its accuracy (lower bound 0), so both runs push and the pushed files are
    # compared every time.
    overrides = ["model.train_steps=20", "model.eval_steps=2", "evaluation.lower_bound=0.0"]
    check(runway(settings, "compile", "penguins", *[x for o in overrides for x in ("--set", o)]))
    return settings


def _run_all_nodes(settings: Settings, runner: WarmNodeRunner) -> dict[str, Any]:
    ir = json.loads(settings.ir_path("penguins").read_text())
    nodes = [node["pipelineNode"]["nodeInfo"]["id"] for node in ir["nodes"]]  # topological order
    out: dict[str, Any] = {"seconds": {}, "results": {}, "logs": {}}
    for node in nodes:
        command = NodeCommand.for_node(
            settings=settings, ir_path=settings.ir_path("penguins"), node_id=node, run_id=RUN_ID
        )
        lines: list[str] = []
        started = time.monotonic()
        outcome = runner.run(command, log=lines.append)
        out["seconds"][node] = time.monotonic() - started
        assert outcome.returncode in (0, 99), f"{node} failed ({outcome.returncode}):\n" + "\n".join(lines[-40:])
        out["results"][node] = outcome.result or {}
        out["logs"][node] = lines
    out["report"] = runtime_json(settings, "report", "penguins", "--run-id", RUN_ID)
    return out


def _shape(result: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on how the node was started (ids, uris, timings and trained weights may)."""
    figures = result.get("figures", {})
    return {
        "status": result.get("status"),
        "executed": result.get("executed"),
        "outputs": {key: sorted(a["type"] for a in items) for key, items in result.get("outputs", {}).items()},
        "figures": {k: figures[k] for k in ("rows", "anomaly_count", "span", "pushed") if k in figures},
    }


def _declared_outputs(settings: Settings) -> dict[str, dict[str, list[str]]]:
    """Node -> output key -> [artifact type], as the compiled IR declares them."""
    ir = json.loads(settings.ir_path("penguins").read_text())
    return {
        node["pipelineNode"]["nodeInfo"]["id"]: {
            key: [spec["artifactSpec"]["type"]["name"]]
            for key, spec in node["pipelineNode"].get("outputs", {}).get("outputs", {}).items()
        }
        for node in ir["nodes"]
    }


@pytest.fixture(scope="module")
def warm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Settings]:
    if not runtime_available(Settings.from_env()):
        missing("the pipeline runtime environment is not installed (make setup)")
    home = _home(tmp_path_factory.mktemp("warm"), tmp_path_factory.mktemp("data"))
    runner = WarmNodeRunner(settings=home, warm=WarmSettings.from_env({}))
    try:
        warm = _run_all_nodes(home, runner)
        assert runner.used_warm is True
        # While the service is up, runway's own runtime commands (the run summary, `runway predict`) use it too.
        served = ping(ServicePaths.for_settings(home), timeout=10)
        warm["report_via_service"] = runtime(home, "report", "penguins", "--run-id", RUN_ID)
        warm["served_by_report"] = ping(ServicePaths.for_settings(home), timeout=10)["served"] - served["served"]
    finally:
        stop_service(home)
    return warm, home


def test_every_node_runs_in_a_forked_child_and_produces_its_declared_outputs(
    warm_run: tuple[dict[str, Any], Settings],
) -> None:
    warm, home = warm_run
    declared = _declared_outputs(home)
    assert list(warm["results"]) == list(declared)  # every node, in the IR's order
    for node, result in warm["results"].items():
        assert result.get("status") is None, (node, result.get("reason"))  # not failed, not skipped
        if result.get("executed") and not node.endswith("_resolver"):
            assert _shape(result)["outputs"] == {k: sorted(v) for k, v in declared[node].items()}, node
        assert any("node runs in a child of service pid" in line for line in warm["logs"][node]), node


def test_ml_metadata_records_the_whole_run(warm_run: tuple[dict[str, Any], Settings]) -> None:
    report = warm_run[0]["report"]
    assert set(report["nodes"]) >= {"CsvExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"}
    assert {v["state"] for v in report["nodes"].values()} == {"COMPLETE"}, report["nodes"]
    assert report["push"]["pushed"] is True
    lineage = {entry["node"] for entry in report.get("lineage") or []}
    assert {"CsvExampleGen", "Transform", "Trainer"} <= lineage, lineage


def test_the_service_computes_the_same_run_summary_as_a_cold_process(
    warm_run: tuple[dict[str, Any], Settings],
) -> None:
    warm, _ = warm_run
    assert warm["served_by_report"] == 1
    assert warm["report_via_service"] == warm["report"]  # `runtime report` through the service vs a cold process


def test_the_pushed_model_is_complete(warm_run: tuple[dict[str, Any], Settings]) -> None:
    destination = Path(warm_run[0]["report"]["push"]["destination"])
    files = {str(p.relative_to(destination)) for p in destination.rglob("*") if p.is_file()}
    assert "saved_model.pb" in files and "variables/variables.index" in files, sorted(files)
    assert "assets.extra/tf_serving_warmup_requests" in files, sorted(files)


def test_nodes_after_the_first_start_without_the_import_cost(warm_run: tuple[dict[str, Any], Settings]) -> None:
    warm, home = warm_run
    overhead = {
        node: warm["seconds"][node] - float(warm["results"][node].get("seconds") or 0)
        for node in list(warm["results"])[1:]  # the first node pays the one-time preload
    }
    assert max(overhead.values()) < 3.0, overhead
    assert not ServicePaths.for_settings(home).socket.exists()  # stopped cleanly
