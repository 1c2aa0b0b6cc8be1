"""Real TFX nodes through the warm runtime: the same results as cold processes.

The penguins pipeline (a few training steps) runs node by node twice, in two separate homes: once with every
node in a cold ``python -m pipeline_components.runtime run-node`` process, once through the warm runtime service
(TensorFlow, TFX, TFDV, TFMA and Beam preloaded, a forked child per node: Beam's FnApiRunner, Transform, Keras
training and TFMA all run in forked children here). The artifacts, the ML Metadata record (states, spans,
lineage) and the push decision must agree. About three minutes, most of it the cold processes' imports.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.cli.bridge import runtime
from pipeline_components.orchestration.runner import LocalNodeRunner, NodeCommand
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


def _run_all_nodes(settings: Settings, runner: LocalNodeRunner | WarmNodeRunner) -> dict[str, Any]:
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


def _lineage_shape(report: dict[str, Any]) -> list[str]:
    """The lineage of the pushed model as a sorted list of (node, type, run) entries: ids, uris and the order in
    which ML Metadata lists an execution's inputs may differ between two stores."""
    entries = [
        {k: v for k, v in entry.items() if k not in ("artifact_id", "uri", "execution_id")}
        for entry in report.get("lineage") or []
    ]
    return sorted(json.dumps(entry, sort_keys=True) for entry in entries)


@pytest.fixture(scope="module")
def cold_and_warm(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], Settings]:
    if not runtime_available(Settings.from_env()):
        missing("the pipeline runtime environment is not installed (make setup)")
    data_dir = tmp_path_factory.mktemp("data")  # the same prepared spans for both
    cold_home = _home(tmp_path_factory.mktemp("cold"), data_dir)
    warm_home = _home(tmp_path_factory.mktemp("warm"), data_dir)
    cold = _run_all_nodes(cold_home, LocalNodeRunner())
    runner = WarmNodeRunner(settings=warm_home, warm=WarmSettings.from_env({}))
    try:
        warm = _run_all_nodes(warm_home, runner)
        assert runner.used_warm is True
        # While the service is up, runway's own runtime commands (the run summary, `runway predict`) use it too.
        served = ping(ServicePaths.for_settings(warm_home), timeout=10)
        warm["report_via_service"] = runtime(warm_home, "report", "penguins", "--run-id", RUN_ID)
        warm["served_by_report"] = ping(ServicePaths.for_settings(warm_home), timeout=10)["served"] - served["served"]
    finally:
        stop_service(warm_home)
    return cold, warm, warm_home


def test_every_node_gives_the_same_results_warm_and_cold(
    cold_and_warm: tuple[dict[str, Any], dict[str, Any], Settings],
) -> None:
    cold, warm, _ = cold_and_warm
    assert list(warm["results"]) == list(cold["results"])
    for node in cold["results"]:
        assert _shape(warm["results"][node]) == _shape(cold["results"][node]), node
        assert any("node runs in a child of service pid" in line for line in warm["logs"][node]), node


def test_ml_metadata_records_the_same_run(cold_and_warm: tuple[dict[str, Any], dict[str, Any], Settings]) -> None:
    cold, warm = cold_and_warm[0]["report"], cold_and_warm[1]["report"]
    assert {n: v["state"] for n, v in warm["nodes"].items()} == {n: v["state"] for n, v in cold["nodes"].items()}
    assert warm["spans"] == cold["spans"]
    assert warm["push"]["pushed"] == cold["push"]["pushed"]
    assert _lineage_shape(warm) == _lineage_shape(cold)


def test_runtime_commands_use_a_running_service(cold_and_warm: tuple[dict[str, Any], dict[str, Any], Settings]) -> None:
    _, warm, _ = cold_and_warm
    assert warm["served_by_report"] == 1
    assert warm["report_via_service"] == warm["report"]  # the same answer as the cold `runtime report`


def test_the_pushed_model_has_the_same_files(cold_and_warm: tuple[dict[str, Any], dict[str, Any], Settings]) -> None:
    cold, warm = cold_and_warm[0]["report"], cold_and_warm[1]["report"]
    assert cold["push"]["pushed"] is True and warm["push"]["pushed"] is True

    def files(destination: str) -> list[str]:
        return sorted(str(p.relative_to(destination)) for p in Path(destination).rglob("*") if p.is_file())

    assert files(warm["push"]["destination"]) == files(cold["push"]["destination"])
    assert Path(warm["push"]["destination"], "saved_model.pb").is_file()


def test_nodes_after_the_first_start_without_the_import_cost(
    cold_and_warm: tuple[dict[str, Any], dict[str, Any], Settings],
) -> None:
    cold, warm, warm_home = cold_and_warm
    overhead = {
        node: warm["seconds"][node] - float(warm["results"][node].get("seconds") or 0)
        for node in list(warm["results"])[1:]  # the first node pays the one-time preload
    }
    assert max(overhead.values()) < 3.0, overhead
    assert sum(warm["seconds"].values()) < sum(cold["seconds"].values())
    assert not ServicePaths.for_settings(warm_home).socket.exists()  # stopped cleanly
