"""Every DAG in dags/ imports fast, without TensorFlow or TFX, and builds the pipeline's node graph.

The IR the DAGs read is compiled once per session by the real runtime environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_components.settings import CHECKOUT, Settings
from tests.helpers import PIPELINE_NODES, ROLLOUT_TASKS, check, runtime_available, runway

pytestmark = pytest.mark.runtime
# Airflow's own limit: a DAG file that takes longer than [core] dagbag_import_timeout (30 s) to parse is killed and
# its DAGs vanish from the UI. What matters most for parse time is asserted exactly: no TensorFlow, TFX or ML
# Metadata module is imported. A tighter budget (2 s) failed CI under a loaded machine: timings are for benchmarks.
PARSE_LIMIT_SECONDS = 30.0


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path_factory.mktemp("home"))})
    if not runtime_available(settings):
        pytest.fail(f"runtime environment missing at {settings.runtime_python}: run `make setup`")
    check(runway(settings, "compile"))
    return settings


def _parse_in_fresh_interpreter(dag_file: Path, settings: Settings) -> dict[str, object]:
    # Airflow itself (about 2.5 s to import here) is already loaded in the DAG processor that parses DAG
    # files, so it is loaded before the clock starts: the budget is for what the DAG file adds.
    probe = f"""
import json, sys, time
import airflow.sdk, pendulum
from airflow.sdk import DAG, BaseOperator
start = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("dag_under_test", {str(dag_file)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
from airflow.sdk import DAG
dags = {{name: obj for name, obj in vars(module).items() if isinstance(obj, DAG)}}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tfx", "tensorflow_transform",
               "tensorflow_data_validation", "tensorflow_model_analysis", "ml_metadata", "keras", "tf_keras"))
print(json.dumps({{"seconds": elapsed, "heavy": heavy,
    "dags": {{d.dag_id: {{t.task_id: sorted(t.upstream_task_ids) for t in d.tasks}} for d in dags.values()}}}}))
"""
    env = {**os.environ, **settings.as_env(), "AIRFLOW_HOME": str(settings.home / "airflow")}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dag_file", sorted((CHECKOUT / "dags").glob("*.py")), ids=lambda p: p.name)
def test_dag_file_imports_fast_without_tensorflow(dag_file: Path, compiled: Settings) -> None:
    # Warm the interpreter's own caches (.pyc) once, then measure.
    _parse_in_fresh_interpreter(dag_file, compiled)
    probe = _parse_in_fresh_interpreter(dag_file, compiled)
    assert probe["heavy"] == [], f"{dag_file.name} pulled heavy modules into the scheduler: {probe['heavy']}"
    assert probe["seconds"] < PARSE_LIMIT_SECONDS, f"{dag_file.name} took {probe['seconds']:.2f} s to import"


def test_each_pipeline_has_a_dag_mirroring_its_ir(compiled: Settings) -> None:
    probe = _parse_in_fresh_interpreter(CHECKOUT / "dags" / "tfx_pipelines.py", compiled)
    dags = probe["dags"]
    assert isinstance(dags, dict)
    assert set(dags) == {
        *(f"{name}_{kind}" for name in ("flights", "penguins") for kind in ("pipeline", "data", "serving")),
        "flights_monitoring",  # flights logs its requests (serving.request_logging); penguins does not
    }
    assert dags["flights_monitoring"] == {
        "watch_traffic": [],
        "check_alert": ["watch_traffic"],
        "request_retraining": ["check_alert"],
    }
    for pipeline in ("flights", "penguins"):
        ir = json.loads(compiled.ir_path(pipeline).read_text())
        expected = {
            node["pipelineNode"]["nodeInfo"]["id"]: sorted(node["pipelineNode"].get("upstreamNodes", []))
            or ["check_params"]  # the IR's roots wait for the parameter check
            for node in ir["nodes"]
        }
        assert set(expected) == PIPELINE_NODES
        assert dags[f"{pipeline}_pipeline"] == {"check_params": [], **expected, **ROLLOUT_TASKS}
        assert dags[f"{pipeline}_serving"] == {
            task: [] if task == "rollout.load" else upstream for task, upstream in ROLLOUT_TASKS.items()
        }
        assert dags[f"{pipeline}_data"] == {"prepare_next_span": []}
    # Data validation is ordered before training, and the push waits for the evaluation.
    flights = dags["flights_pipeline"]
    assert "ExampleValidator" in flights["Transform"]
    assert "Evaluator" in flights["Pusher"]


def test_uncompiled_pipeline_has_no_dag_and_no_import_error(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    probe = _parse_in_fresh_interpreter(CHECKOUT / "dags" / "tfx_pipelines.py", settings)
    assert probe["dags"] == {}


def test_airflow_discovers_every_dag_without_import_errors(compiled: Settings) -> None:
    """What the DAG processor does (DagBag, safe mode on), not just an import."""
    probe = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(CHECKOUT / 'dags')!r})\n"
        'print(json.dumps({"dags": sorted(bag.dags), "errors": {k: str(v) for k, v in bag.import_errors.items()}}))\n'
    )
    env = {**os.environ, **compiled.as_env(), "AIRFLOW_HOME": str(compiled.home / "airflow")}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    assert found["dags"] == sorted(
        [f"{name}_{kind}" for name in ("flights", "penguins") for kind in ("data", "pipeline", "serving")]
        + ["flights_monitoring"]
    )
