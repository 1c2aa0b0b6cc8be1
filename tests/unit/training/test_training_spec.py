"""A training spec names the function each cluster process calls (issue 15, Security 7).

The spec sits where other processes may write: the Trainer's ModelRun folder, and for ``runway train manifests``
the shared volume every pod mounts. A worker calls only runway's own training functions; a spec naming anything
else fails with ``TrainingWorkerError`` before the named module is imported. The worker here is the real one, run
as the Trainer runs it (``python -m pipeline_components.training.worker``); the refusal comes before TFX is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline_components.config import ModelConfig
from pipeline_components.errors import TrainingWorkerError
from pipeline_components.training.spec import TRAINING_ENTRY_POINTS, read_spec, write_spec

PLANTED = """
open({marker!r}, "w").write("imported")


def run_fn(fn_args):
    open({marker!r}, "a").write(" and called")
"""


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("planted_training.run_fn", id="a-module-on-the-path"),
        pytest.param("os.system", id="the-standard-library"),
        pytest.param("pipeline_components.models.tabular.preprocessing_fn", id="another-function-of-the-model"),
        pytest.param(None, id="no-entry"),
    ],
)
@pytest.mark.parametrize("command", ["train", "trainer"])
def test_a_spec_naming_another_entry_point_fails_before_importing_it(
    tmp_path: Path, entry: str | None, command: str
) -> None:
    marker = tmp_path / "planted-ran"
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "planted_training.py").write_text(PLANTED.format(marker=str(marker)))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"entry": entry, "fn_args": {"custom_config": {}}}))
    worker = subprocess.run(
        [sys.executable, "-m", "pipeline_components.training.worker", command, str(spec)],
        env={**os.environ, "PYTHONPATH": str(modules)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode != 0
    assert "TrainingWorkerError" in worker.stderr, worker.stderr[-3000:]
    assert repr(entry) in worker.stderr and str(spec) in worker.stderr
    assert all(allowed in worker.stderr for allowed in TRAINING_ENTRY_POINTS), "the message names what is allowed"
    assert not marker.exists(), "the named module was imported"


def test_the_trainer_refuses_to_write_a_spec_for_an_unknown_entry_point(tmp_path: Path) -> None:
    fn_args = SimpleNamespace(custom_config={"training": {"strategy": "multi_worker_mirrored", "workers": 2}})
    with pytest.raises(TrainingWorkerError, match="TRAINING_ENTRY_POINTS"):
        write_spec(fn_args, "my_models.wide.run_fn", tmp_path / "spec.json")
    assert not (tmp_path / "spec.json").exists()
    spec = write_spec(fn_args, "pipeline_components.models.tabular.run_fn", tmp_path / "spec.json")
    assert json.loads(spec.read_text())["entry"] == "pipeline_components.models.tabular.run_fn"
    spec.write_text(spec.read_text().replace("tabular.run_fn", "tabular.export_fn"))  # altered on the volume
    with pytest.raises(TrainingWorkerError, match=r"'pipeline_components\.models\.tabular\.export_fn'"):
        read_spec(spec)


def test_the_default_model_trains_under_every_strategy() -> None:
    assert f"{ModelConfig().module}.run_fn" in TRAINING_ENTRY_POINTS
