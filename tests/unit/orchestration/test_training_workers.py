"""A deployment's DAG places a multi_worker_mirrored Trainer's workers on its worker hosts: one task per worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from pipeline_components.boundary import EXIT_SKIPPED
from pipeline_components.config import load_pipeline_config
from pipeline_components.errors import ConfigError
from pipeline_components.orchestration.backends import ContainerSettings
from pipeline_components.orchestration.dag_factory import build_pipeline_dag
from pipeline_components.orchestration.operators import TfxNodeOperator
from pipeline_components.orchestration.runner import NodeCommand, NodeOutcome
from pipeline_components.orchestration.training_workers import (
    DEPLOY_QUEUES_ENV,
    TrainerChiefOperator,
    TrainingWorkerOperator,
)
from pipeline_components.settings import Settings
from pipeline_components.training import rendezvous as rv
from tests.conftest import CONFIGS
from tests.unit.orchestration.test_ir import DEMO, write_ir

LOCAL = ContainerSettings.from_env({})
RUN_ID = "manual__2026-12-07T10:00:00+00:00"


def write_trainer_ir(path: Path, training: dict[str, Any]) -> Path:
    """The demo IR, its Trainer compiled with ``training`` in its custom_config (as the compiler writes it)."""
    write_ir(path, DEMO)
    document = json.loads(path.read_text())
    for raw in document["nodes"]:
        node = raw["pipelineNode"]
        if node["nodeInfo"]["id"] == "Trainer":
            custom = json.dumps({"batch_size": 8, "training": training})
            node["parameters"] = {"parameters": {"custom_config": {"fieldValue": {"stringValue": custom}}}}
    path.write_text(json.dumps(document))
    return path


def build(tmp_path: Path, training: dict[str, Any], container: ContainerSettings = LOCAL) -> Any:
    flights = load_pipeline_config(CONFIGS / "flights.yaml")
    ir = write_trainer_ir(tmp_path / "demo.json", training)
    return build_pipeline_dag(ir_path=ir, config=flights, settings=Settings.from_env(), container=container)


MWM = {"strategy": "multi_worker_mirrored", "workers": 2, "worker_timeout_s": 120}


def test_each_training_worker_is_a_task_on_its_hosts_queue(
    tmp_path: Path, isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEPLOY_QUEUES_ENV, "worker-1,worker-2")
    dag = build(tmp_path, MWM)
    trainer, worker = dag.task_dict["Trainer"], dag.task_dict["Trainer_workers.worker_1"]
    assert isinstance(trainer, TrainerChiefOperator) and trainer.queue == "worker-1"
    assert trainer.worker_queues == ["worker-1", "worker-2"]
    assert isinstance(worker, TrainingWorkerOperator) and worker.queue == "worker-2"
    assert (worker.index, worker.timeout_s, worker.trainer_node_id) == (1, 120.0, "Trainer")
    assert worker.upstream_task_ids == trainer.upstream_task_ids == {"CsvExampleGen"}  # they start together
    assert worker.downstream_task_ids == set() and trainer.downstream_task_ids == {"Pusher"}
    assert worker.retries == trainer.retries == 2  # a retried Trainer finds its workers retried too
    assert {task for task in dag.task_dict if "worker" in task} == {"Trainer_workers.worker_1"}


def test_more_workers_than_worker_hosts_is_refused_at_parse(
    tmp_path: Path, isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEPLOY_QUEUES_ENV, "worker-1,worker-2")
    with pytest.raises(ConfigError, match=r"training.workers = 3, but this deployment has 2 worker hosts"):
        build(tmp_path, {**MWM, "workers": 3})


@pytest.mark.parametrize(
    ("queues", "training"),
    [
        pytest.param(None, MWM, id="no-deployment"),
        pytest.param("", MWM, id="empty-queues"),
        pytest.param("worker-1,worker-2", {"strategy": "mirrored"}, id="another-strategy"),
    ],
)
def test_otherwise_the_trainer_is_one_task_as_before(
    tmp_path: Path,
    isolated_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    queues: str | None,
    training: dict[str, Any],
) -> None:
    if queues is None:
        monkeypatch.delenv(DEPLOY_QUEUES_ENV, raising=False)
    else:
        monkeypatch.setenv(DEPLOY_QUEUES_ENV, queues)
    dag = build(tmp_path, training)
    trainer = dag.task_dict["Trainer"]
    assert type(trainer) is TfxNodeOperator and trainer.queue == "default"
    assert not [task for task in dag.task_dict if "worker" in task]


def test_a_container_backend_cannot_place_workers_on_hosts(
    tmp_path: Path, isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEPLOY_QUEUES_ENV, "worker-1,worker-2")
    with pytest.raises(ConfigError, match="needs the local node backend"):
        build(tmp_path, MWM, container=ContainerSettings.from_env({"RUNWAY_NODE_BACKEND": "docker"}))


class FakeTI:
    try_number = 3

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class FakeRunner:
    def __init__(self, returncode: int, lines: list[str]) -> None:
        self.returncode, self.lines = returncode, lines
        self.commands: list[NodeCommand] = []

    def run(self, command: NodeCommand, *, log: Any) -> NodeOutcome:
        self.commands.append(command)
        for line in self.lines:
            log(line)
        return NodeOutcome(returncode=self.returncode, result=None, tail=self.lines)


def worker_task(runner: FakeRunner) -> TrainingWorkerOperator:
    task = TrainingWorkerOperator(
        task_id="worker_1", pipeline_name="demo", trainer_node_id="Trainer", index=1, timeout_s=120, queue="worker-2"
    )
    task.__dict__["runner"] = runner  # the cached_property's slot
    return task


def test_the_worker_task_joins_the_folder_the_trainer_task_names(
    isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(rv.HOST_ENV, "worker-2")
    monkeypatch.setenv(rv.HOST_ADDRESS_ENV, "10.231.7.4")
    chief = TrainerChiefOperator(
        task_id="Trainer", ir_path="/ir.json", node_id="Trainer", pipeline_name="demo", worker_queues=["w-1", "w-2"]
    )
    env = chief.node_env({"run_id": RUN_ID})
    assert env[rv.WORKER_QUEUES_ENV] == "w-1,w-2"
    runner = FakeRunner(0, ["trained"])
    worker_task(runner).execute({"run_id": RUN_ID, "ti": FakeTI()})
    argv = runner.commands[0].argv
    assert argv[1:4] == ["-m", "pipeline_components.training.worker", "join"]
    options = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert options["--rendezvous"] == env[rv.RENDEZVOUS_ENV]
    assert Path(options["--rendezvous"]).is_relative_to(isolated_settings.pipeline_root("demo"))
    assert (options["--index"], options["--address"], options["--host"], options["--queue"]) == (
        "1", "10.231.7.4", "worker-2", "worker-2",
    )  # fmt: skip
    assert rv.Rendezvous(Path(env[rv.RENDEZVOUS_ENV])).task_outcome("worker-1") == "try 3: success"


@pytest.mark.parametrize(
    ("returncode", "raised", "outcome"),
    [
        pytest.param(1, AirflowException, "failed", id="failed-retryable"),
        pytest.param(EXIT_SKIPPED, AirflowSkipException, "skipped", id="released"),
    ],
)
def test_the_worker_task_fails_retryably_or_skips_and_says_so_to_the_chief(
    isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch, returncode: int, raised: type, outcome: str
) -> None:
    monkeypatch.setenv(rv.HOST_ADDRESS_ENV, "10.231.7.4")
    runner = FakeRunner(returncode, ["error: the chief (Trainer task) failed: boom"])
    with pytest.raises(raised) as caught:
        worker_task(runner).execute({"run_id": RUN_ID, "ti": FakeTI()})
    assert not isinstance(caught.value, AirflowFailException)  # retried with the Trainer
    if returncode == 1:
        assert "the chief (Trainer task) failed: boom" in str(caught.value)
    folder = rv.rendezvous_dir(isolated_settings.pipeline_root("demo"), RUN_ID, "Trainer")
    assert rv.Rendezvous(folder).task_outcome("worker-1") == f"try 3: {outcome}"


def test_a_worker_host_without_its_address_fails_at_once(
    isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(rv.HOST_ADDRESS_ENV, raising=False)
    runner = FakeRunner(0, [])
    with pytest.raises(AirflowFailException, match="RUNWAY_HOST_ADDRESS is not set"):
        worker_task(runner).execute({"run_id": RUN_ID, "ti": FakeTI()})
    assert runner.commands == []
    folder = rv.rendezvous_dir(isolated_settings.pipeline_root("demo"), RUN_ID, "Trainer")
    assert rv.Rendezvous(folder).task_outcome("worker-1") == "try 3: failed"  # the chief stops waiting for it
