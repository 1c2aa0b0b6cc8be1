"""The evaluation stage holds when the new month's labels are wrong: the trusted set, real training, real pushes.

Three runs of the flights pipeline, node by node with ``run_node`` against one ML Metadata store, on samples of
real months (January, February, March of 2013): January is trained and blessed (the first served model; its push is
left out to save a model server's start); February (clean) is blessed
on its own split AND on the trusted set (January's eval split, the span the served model was blessed on) and
pushed; March arrives with its labels inverted upstream. The data gate refuses March (its positive rate); past that
gate, as if it had been let through, the candidate trained on March alone (``window_spans=1``) looks far better than
the served model on March's own (wrong) labels, which is how it was blessed before, and the Evaluator now refuses
it on the trusted set, naming the served model's collapse on March as evidence against the new month; the Pusher
pushes nothing and the store (versions and the fleet's ``models.config``) stays byte for byte as it was.

About three minutes here: three small trainings, two TFMA passes per run, two model servers (InfraValidator).
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pandas as pd
import pytest

from pipeline_components.config import load_pipeline_config
from pipeline_components.fleet.store import ModelServing, ModelStore
from pipeline_components.runtime.run_summary import run_report
from pipeline_components.settings import CHECKOUT, Settings
from tests.conftest import CONFIGS
from tests.helpers import missing
from tests.runtime.bad_inputs import month_with_delays
from tests.runtime.homes import flights_home, run_nodes, store_bytes, write_span

pytestmark = pytest.mark.runtime

ROWS = 4000  # per month: a model worth comparing after a few hundred steps, trained in seconds
# The test's configuration: the samples' own row bound, a short training, and thresholds for models of 300 steps on
# samples (their AUC moves by a few hundredths between runs); the corrupted month moves it by 0.3 and more.
OVERRIDES = {
    "validation.delivery.min_rows": 1000,
    "model.train_steps": 300,
    "model.eval_steps": 5,
    "evaluation.lower_bound": 0.55,
    "evaluation.max_regression": 0.1,
    "evaluation.max_baseline_drop": 0.15,
    "tflite.variants": [],
}
TRAIN_AND_PUSH = [
    "CsvExampleGen",
    "ImportSchemaGen",
    "DeliveryValidator",
    "Transform",
    "Trainer",
    "latest_blessed_model_resolver",
    "trusted_examples_resolver",
    "Evaluator",
    "InfraValidator",
    "Pusher",
]


def _verdict(settings: Settings, run_id: str) -> dict[str, Any]:
    """The Evaluator's verdict as ``runway run`` prints it: from ML Metadata (``run_summary.run_report``)."""
    config = load_pipeline_config(CONFIGS / "flights.yaml").with_overrides(OVERRIDES)
    return run_report(config, settings, run_id)


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, flights_source: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> dict[str, Any]:
    months = {m: month_with_delays(flights_source, m, ROWS) for m in (1, 2, 3)}
    settings, ir = flights_home(tmp_path_factory.mktemp("trusted"), {1: months[1]}, OVERRIDES)
    found: dict[str, Any] = {"settings": settings}
    found["jan"] = run_nodes(ir, "run-jan", TRAIN_AND_PUSH[:-2], {"span": 1})  # blessed, not pushed
    write_span(settings, 2, months[2])
    found["feb"] = run_nodes(ir, "run-feb", TRAIN_AND_PUSH, {"span": 2})
    # The fleet serves February's version as stable (what the rollout after its push writes).
    versions = ModelStore(settings.model_store).versions_on_disk("flights_delay")
    serving = ModelServing("flights_delay", tuple(versions), {"stable": versions[-1]})
    ModelStore(settings.model_store).write_config({"flights_delay": serving})
    found["store_before"] = store_bytes(settings)
    march = months[3].assign(is_delayed=1 - months[3]["is_delayed"])  # "on time" computed as "late" upstream
    write_span(settings, 3, march)
    found["mar"] = run_nodes(ir, "run-mar", TRAIN_AND_PUSH, {"span": 3, "window_spans": 1})
    found["store_after"] = store_bytes(settings)
    return found


def test_a_clean_month_is_blessed_on_its_split_and_the_trusted_set_and_pushed(runs: dict[str, Any]) -> None:
    settings = runs["settings"]
    assert runs["jan"] == dict.fromkeys(TRAIN_AND_PUSH[:-2]), runs["jan"]
    assert runs["feb"] == dict.fromkeys(TRAIN_AND_PUSH), runs["feb"]
    first, second = _verdict(settings, "run-jan"), _verdict(settings, "run-feb")
    assert first["evaluation"]["blessed"]
    assert first["evaluation"]["trusted_spans"] == []  # nothing was blessed before: no trusted set yet
    evaluation = second["evaluation"]
    assert evaluation["blessed"] and evaluation["refused_by"] == [] and second["push"]["pushed"]
    assert evaluation["trusted_spans"] == [1]  # the span the served (January) model was blessed on
    assert "auc" in evaluation["trusted"]["metrics"] and "auc" in evaluation["trusted"]["baseline_metrics"]


def test_wrong_labels_are_refused_by_the_data_gate(runs: dict[str, Any]) -> None:
    message = runs["mar"]["DeliveryValidator"] or ""
    assert re.search(
        r"label is_delayed: positive rate 0\.7\d{3}, expected 0\.2\d{3}\.\.0\.2\d{3} from spans 1, 2", message
    )


def test_past_the_data_gate_the_trusted_set_refuses_the_candidate(runs: dict[str, Any]) -> None:
    settings = runs["settings"]
    report = _verdict(settings, "run-mar")
    evaluation = report["evaluation"]
    metrics, trusted = evaluation["metrics"], evaluation["trusted"]
    # On March's own (inverted) labels the candidate looks far better than the served model: the old trap.
    assert metrics["auc_diff"] > 0.2, metrics
    assert evaluation["trusted_spans"] == [1, 2]  # the spans the served (February) model was blessed on
    assert trusted["metrics"]["auc_diff"] < -0.2, trusted  # on data the team trusts it is far worse
    assert evaluation["blessed"] is False
    assert evaluation["refused_by"] == ["trusted set", "evidence against the new span"]
    failures = "\n".join(evaluation["failures"])
    assert re.search(r"trusted set \(spans 1, 2\): auc 0\.\d{4} is 0\.\d{4} below the served model's 0\.\d{4} "
                     r"\(change threshold 0\.2, evaluation\.trusted_max_regression\)", failures)  # fmt: skip
    assert re.search(r"evidence against new span 3: the served model's auc is 0\.\d{4} on it but 0\.\d{4} on the "
                     r"trusted set \(spans 1, 2\)", failures)  # fmt: skip
    # Nothing was pushed; the store and the fleet's configuration are byte for byte as they were.
    assert (runs["mar"]["Pusher"] or "").startswith("skipped: the model was not blessed")
    assert report["push"]["pushed"] is False
    assert runs["store_after"] == runs["store_before"]


def _printed(report: dict[str, Any]) -> str:
    """What ``runway run`` prints at its end for this run (``cli/output.py``, in the orchestrator environment)."""
    python = CHECKOUT / ".venv" / "bin" / "python"
    if not python.is_file():
        missing("the orchestrator environment is not installed (make setup)")
    summary = {"run_id": "run-mar", "dag_id": "flights_pipeline", "tasks": [], "metadata": report}
    script = "import json, sys\nfrom pipeline_components.cli.output import print_summary as p\np(json.load(sys.stdin))"
    done = subprocess.run([str(python), "-c", script], input=json.dumps(summary, default=str), text=True,
                          capture_output=True, cwd=CHECKOUT, check=True)  # fmt: skip
    return done.stdout


def test_the_run_summary_and_the_page_say_which_evaluation_refused(runs: dict[str, Any]) -> None:
    settings = runs["settings"]
    report = _verdict(settings, "run-mar")
    out = _printed(report)
    assert re.search(r"^Evaluation: auc 0\.\d{4} \(\+0\.\d{4} vs baseline\)", out, re.M), out
    assert re.search(r"^Trusted set \(spans 1, 2\): auc 0\.\d{4} \(-0\.\d{4} vs baseline\)", out, re.M), out
    assert "Blessed: no (refused by the trusted set, the evidence against the new span)" in out
    assert "  - evidence against new span 3: " in out
    # The Evaluator's page (its task's Report link) shows both evaluations, the verdict first.
    page = (settings.home / "reports" / "flights" / "run-mar" / "Evaluator.evaluation.html").read_text()
    header = page.split("</header>")[0]
    assert '<div class="verdict bad">' in header and "refused by the trusted set" in header
    assert "trusted set (spans 1, 2): candidate" in page and "new span 3: served" in page
    # The verdict is an artifact of each run (the blessing's verdict.json), with the evaluations it judged.
    verdicts = [json.loads(p.read_text()) for p in settings.pipeline_root("flights").rglob("verdict.json")]
    assert {v["span"]: v["refused_by"] for v in verdicts} == {1: [], 2: [], 3: report["evaluation"]["refused_by"]}
