"""One Airflow task per training worker: ``multi_worker_mirrored`` across the worker hosts of a deployment.

A deployment (``runway deploy``) gives every Airflow component ``RUNWAY_WORKER_QUEUES`` (its worker hosts' own
queues, in order, e.g. ``worker-1,worker-2``) and each host's Celery worker ``RUNWAY_HOST`` and
``RUNWAY_HOST_ADDRESS``. Then a Trainer node whose compiled strategy is ``multi_worker_mirrored`` with ``workers`` = N
becomes N tasks: the Trainer itself on ``queues[0]`` (worker 0, the chief, which exports), and
``<Trainer>_workers.worker_<i>`` on ``queues[i]`` for i = 1..N-1, with the Trainer's upstream tasks, so that all start
together. Each worker task runs ``python -m pipeline_components.training.worker join ...`` in the runtime
environment with its host's address; they meet through a folder of the shared filesystem
(``training.rendezvous``), never by a process of one host entering another's.

Without ``RUNWAY_WORKER_QUEUES`` nothing changes (``make run``, the LocalExecutor: the Trainer starts its workers
itself, on loopback).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, TaskGroup
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from pipeline_components.boundary import EXIT_SKIPPED, RUNTIME_ENV, error_message
from pipeline_components.errors import ConfigError
from pipeline_components.orchestration.ir import NodeSpec, PipelineGraph
from pipeline_components.orchestration.operators import TfxNodeOperator, record_failure
from pipeline_components.orchestration.runner import LocalNodeRunner, NodeCommand, node_failure_message
from pipeline_components.settings import Settings
from pipeline_components.training import rendezvous as rv
from pipeline_components.training.settings import from_custom_config

DEPLOY_QUEUES_ENV = "RUNWAY_WORKER_QUEUES"


def worker_queues(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The worker hosts' queues of a deployment, in order; () outside one."""
    env = os.environ if environ is None else environ
    return tuple(queue.strip() for queue in env.get(DEPLOY_QUEUES_ENV, "").split(",") if queue.strip())


def node_custom_config(ir_path: Path, node_id: str) -> dict[str, Any]:
    """A node's ``custom_config`` as compiled in the IR (a JSON string parameter), {} when it has none."""
    document = json.loads(Path(ir_path).read_text())
    for raw in document.get("nodes", []):
        node = raw.get("pipelineNode", {})
        if node.get("nodeInfo", {}).get("id") == node_id:
            value = node.get("parameters", {}).get("parameters", {}).get("custom_config", {})
            text = value.get("fieldValue", {}).get("stringValue") or "{}"
            loaded = json.loads(text)
            return loaded if isinstance(loaded, dict) else {}
    return {}


@dataclass(frozen=True)
class Placement:
    """Where a Trainer's training workers run: worker ``i`` on ``queues[i]`` (0: the Trainer task itself)."""

    queues: tuple[str, ...]
    timeout_s: float


def training_placements(graph: PipelineGraph, environ: Mapping[str, str] | None = None) -> dict[str, Placement]:
    """The Trainer nodes whose workers go to the deployment's worker hosts, by node id.

    Raises:
        ConfigError: a Trainer asks for more ``multi_worker_mirrored`` workers than there are worker hosts, or its
            compiled training settings are invalid.
    """
    queues = worker_queues(environ)
    if not queues:
        return {}
    placements = {}
    for node in graph.nodes:
        if node.short_type != "Trainer":
            continue
        settings = from_custom_config(node_custom_config(graph.ir_path, node.id))
        if settings.strategy != "multi_worker_mirrored":
            continue
        if settings.workers > len(queues):
            raise ConfigError(
                f"{node.id} trains under multi_worker_mirrored with training.workers = {settings.workers}, but this "
                f"deployment has {len(queues)} worker hosts ({DEPLOY_QUEUES_ENV}={','.join(queues)}); each training "
                f"worker runs on its own host: set training.workers <= {len(queues)} and recompile "
                "(`runway compile`), or add worker hosts"
            )
        placements[node.id] = Placement(queues[: settings.workers], float(settings.worker_timeout_s))
    return placements


def _rendezvous(pipeline_name: str, run_id: str, node_id: str) -> Path:
    return rv.rendezvous_dir(Settings.from_env().pipeline_root(pipeline_name), run_id, node_id)


def _try_number(context: Any) -> int:
    return int(getattr(context.get("ti"), "try_number", 0) or 0)


class TrainerChiefOperator(TfxNodeOperator):
    """The Trainer node as the chief of training workers on other hosts: its node learns the rendezvous folder and
    the workers' queues from its environment (``training.rendezvous.chief_env``), and this task marks its end
    there, so workers still waiting stop at once when the node failed before training.

    The node runs in a cold process on this host, never through the warm runtime: a warm service may have been
    started by another host's task (its socket is a file of the shared filesystem), and the chief's training
    server must listen on this host's address.
    """

    def __init__(self, *, pipeline_name: str, worker_queues: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline_name = pipeline_name
        self.worker_queues = list(worker_queues)

    @cached_property
    def runner(self) -> LocalNodeRunner:
        return LocalNodeRunner()

    def node_env(self, context: Any) -> dict[str, str]:
        folder = _rendezvous(self.pipeline_name, context["run_id"], self.tfx_node_id)
        return rv.chief_env(folder, self.worker_queues)

    def execute(self, context: Any) -> dict[str, Any]:
        outcome = "failed"
        try:
            result = super().execute(context)
            outcome = "success"
            return result
        except AirflowSkipException:
            outcome = "skipped"
            raise
        finally:
            folder = _rendezvous(self.pipeline_name, context["run_id"], self.tfx_node_id)
            rv.Rendezvous(folder).mark_task_ended("trainer", try_number=_try_number(context), outcome=outcome)


class TrainingWorkerOperator(BaseOperator):
    """Training worker ``index`` of a Trainer, on its host's queue: joins the chief and trains until it ends.

    Fails (and is retried, as the Trainer is) when the chief fails or its own training process dies; skips when the
    run trains under another strategy (a run parameter) and the chief released it.
    """

    ui_color = "#fadbd8"

    def __init__(self, *, pipeline_name: str, trainer_node_id: str, index: int, timeout_s: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.pipeline_name = pipeline_name
        self.trainer_node_id = trainer_node_id
        self.index = index
        self.timeout_s = timeout_s

    @cached_property
    def runner(self) -> LocalNodeRunner:
        return LocalNodeRunner()

    def execute(self, context: Any) -> None:
        settings = Settings.from_env()
        folder = _rendezvous(self.pipeline_name, context["run_id"], self.trainer_node_id)
        outcome = "failed"
        try:
            address = os.environ.get(rv.HOST_ADDRESS_ENV, "").strip()
            if not address:
                reason = (
                    f"{rv.HOST_ADDRESS_ENV} is not set for this Celery worker (queue {self.queue}): a training worker "
                    "listens on its host's address; start each worker host's Celery worker with RUNWAY_HOST and "
                    "RUNWAY_HOST_ADDRESS, as `runway deploy` does"
                )
                record_failure(context, reason)
                raise AirflowFailException(reason)
            argv = rv.join_argv(
                python=str(settings.runtime_python),
                rendezvous=folder,
                index=self.index,
                address=address,
                host=os.environ.get(rv.HOST_ENV, "").strip() or address,
                queue=self.queue,
                timeout_s=self.timeout_s,
            )
            self.log.info("training worker %d of %s: %s", self.index, self.trainer_node_id, " ".join(argv))
            lines: list[str] = []

            def log(line: str) -> None:
                lines.append(line)
                self.log.info("%s", line)

            done = self.runner.run(NodeCommand(argv=argv, env={**settings.as_env(), **RUNTIME_ENV}), log=log)
            if done.returncode == EXIT_SKIPPED:
                outcome = "skipped"
                raise AirflowSkipException(f"training worker {self.index} not needed: this run trains otherwise")
            if done.returncode != 0:
                reason = error_message(lines) or node_failure_message(self.task_id, done)
                record_failure(context, reason)
                raise AirflowException(reason)  # retried, as the Trainer is: the next try joins its next attempt
            outcome = "success"
        finally:
            rv.Rendezvous(folder).mark_task_ended(
                f"worker-{self.index}", try_number=_try_number(context), outcome=outcome
            )

    def on_kill(self) -> None:
        self.runner.kill()


def trainer_tasks(graph: PipelineGraph, node: NodeSpec, placement: Placement) -> tuple[Any, list[Any]]:
    """The Trainer task (on ``queues[0]``) and its worker tasks, in a group named after it."""
    trainer = TrainerChiefOperator(
        task_id=node.id,
        ir_path=str(graph.ir_path),
        node_id=node.id,
        component_type=node.component_type,
        pipeline_name=graph.name,
        worker_queues=list(placement.queues),
        queue=placement.queues[0],
    )
    workers = []
    with TaskGroup(
        group_id=f"{node.id}_workers",
        tooltip=f"{node.id}'s multi_worker_mirrored workers 1..{len(placement.queues) - 1}, one per worker host",
    ):
        for index, queue in enumerate(placement.queues[1:], start=1):
            workers.append(
                TrainingWorkerOperator(
                    task_id=f"worker_{index}",
                    pipeline_name=graph.name,
                    trainer_node_id=node.id,
                    index=index,
                    timeout_s=placement.timeout_s,
                    queue=queue,
                )
            )
    return trainer, workers
