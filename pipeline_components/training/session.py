"""One training run under the configured strategy, as the model's ``run_fn`` sees it.

``training_session(fn_args, entry=...)`` reads the ``training`` entry of the Trainer's custom_config and yields a
``TrainingSession``: the strategy to build and compile the model under, the input pipeline it needs, the
callbacks (BackupAndRestore) and the folder to export to (the serving folder on the chief, a scratch folder on
other workers). For ``multi_worker_mirrored`` the Trainer's own process launches the workers (each re-enters
``entry`` in its own process) and supervises them: the session it gets has no strategy, the chief exported. When
the DAG placed the workers on other hosts (``training.remote``), the Trainer's process trains as the chief in a
cluster it met through the rendezvous folder, and supervises its own training process only.
For ``parameter_server`` it starts the parameter servers and workers and coordinates them itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_components.config import TrainingConfig
from pipeline_components.durable import atomic_write
from pipeline_components.errors import TrainingWorkerError
from pipeline_components.training import cluster, remote, strategies
from pipeline_components.training.settings import from_custom_config
from pipeline_components.training.spec import write_spec

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

# tf_keras' BackupAndRestore refuses the other strategies (central_storage, parameter_server, one_device).
BACKUP_STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "tpu")


@dataclass
class TrainingSession:
    settings: TrainingConfig
    strategy: tf.distribute.Strategy | None  # None: this process supervised a cluster that trained and exported
    is_chief: bool
    serving_model_dir: str
    backup_dir: str

    def input(self, make_dataset: Callable[[int], tf.data.Dataset], *, batch_size: int, files: list[str]) -> Any:
        """The training input for ``model.fit``: global batches (per-replica ``batch_size`` x replicas), sharded."""
        assert self.strategy is not None
        return strategies.distributed_input(
            self.strategy, self.settings, make_dataset, batch_size=batch_size, files=files
        )

    def validation_input(
        self, make_dataset: Callable[[int], tf.data.Dataset], *, batch_size: int, files: list[str]
    ) -> Any:
        """Validation data for ``model.fit``; None under ``parameter_server`` (the Evaluator measures the model)."""
        if self.settings.strategy == "parameter_server":
            return None
        return self.input(make_dataset, batch_size=batch_size, files=files)

    def callbacks(self) -> list[Any]:
        """BackupAndRestore: an interrupted run of the same Trainer execution resumes from its last epoch."""
        import tf_keras as keras

        if self.settings.strategy not in BACKUP_STRATEGIES:
            log.info("BackupAndRestore does not support strategy %s: no mid-run backups", self.settings.strategy)
            return []
        return [keras.callbacks.BackupAndRestore(backup_dir=self.backup_dir)]


def prepare_devices(custom_configs: list[dict[str, Any]]) -> None:
    """Before several in-process runs share one process: as many logical CPUs as the most demanding one needs."""
    wanted = [from_custom_config(c) for c in custom_configs]
    wanted = [s for s in wanted if s.strategy in ("mirrored", "central_storage")]
    if wanted:
        strategies.compute_devices(max(wanted, key=lambda s: s.logical_cpus))


def _work_dir(fn_args: Any) -> Path:
    """The Trainer execution's own folder for backups, cluster specs and logs: the ModelRun artifact."""
    base = fn_args.model_run_dir or fn_args.working_dir or os.path.dirname(fn_args.serving_model_dir)
    return Path(base)


@contextlib.contextmanager
def training_session(fn_args: Any, *, entry: str) -> Iterator[TrainingSession]:
    """Set up the strategy of ``fn_args.custom_config['training']`` for one ``run_fn`` call.

    Args:
        fn_args: TFX's FnArgs (or one rebuilt from a spec in a cluster process).
        entry: the dotted name of the ``run_fn`` to call in each cluster process.

    Raises:
        ConfigError: invalid training settings.
        TrainingStrategyError: the strategy cannot run here (TPUUnavailableError for an unreachable TPU).
        TrainingWorkerError: a cluster process died or training timed out (no process is left behind), or a
            multi-process run's ``entry`` is not one of runway's training functions (``training.spec``).
    """
    settings = from_custom_config(fn_args.custom_config)
    work = _work_dir(fn_args)
    backup_dir = str(work / "backup")
    task = os.environ.get(cluster.TASK_ENV)
    log.info("training strategy: %s (%s)", settings.strategy, f"cluster task {task}" if task else "Trainer process")

    placed = remote.remote_plan(strategy=settings.strategy, workers=settings.workers) if task is None else None
    if placed is not None:
        rendezvous, queues = placed
        host, address = remote.host_identity()
        spec = write_spec(fn_args, entry, work / "cluster" / "spec.json")
        members = remote.run_chief(
            spec,
            rendezvous=rendezvous,
            workers=settings.workers,
            queues=queues,
            host=host,
            address=address,
            timeout_s=settings.worker_timeout_s,
        )
        # In the ModelRun artifact (ML Metadata records its URI): which host ran which training worker.
        atomic_write(work / "cluster" / "members.json", json.dumps([asdict(m) for m in members], indent=2))
        if not Path(fn_args.serving_model_dir, "saved_model.pb").is_file():
            raise TrainingWorkerError(f"the chief worker finished without exporting to {fn_args.serving_model_dir}")
        yield TrainingSession(settings, None, True, fn_args.serving_model_dir, backup_dir)
        return

    if settings.strategy == "multi_worker_mirrored" and task is None:
        spec = write_spec(fn_args, entry, work / "cluster" / "spec.json")
        cluster.run_multi_worker(
            spec, workers=settings.workers, log_dir=work / "cluster" / "logs", timeout_s=settings.worker_timeout_s
        )
        if not Path(fn_args.serving_model_dir, "saved_model.pb").is_file():
            raise TrainingWorkerError(f"the chief worker finished without exporting to {fn_args.serving_model_dir}")
        yield TrainingSession(settings, None, True, fn_args.serving_model_dir, backup_dir)
        return

    if settings.strategy == "parameter_server" and task is not None:
        # the coordinator pod of a rendered Kubernetes run: the servers are other pods, TF_CONFIG names them
        import tensorflow as tf

        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        strategy = strategies.make_strategy(settings, cluster_resolver=resolver)
        yield TrainingSession(settings, strategy, True, fn_args.serving_model_dir, backup_dir)
        return

    if settings.strategy == "parameter_server":
        local, resolver = cluster.start_parameter_server_cluster(
            workers=settings.workers,
            parameter_servers=settings.parameter_servers,
            log_dir=work / "cluster" / "logs",
        )
        try:
            strategy = strategies.make_strategy(settings, cluster_resolver=resolver)
            local.start_watchdog()
            try:
                yield TrainingSession(settings, strategy, True, fn_args.serving_model_dir, backup_dir)
            except KeyboardInterrupt:
                if local.failure is not None:  # the watchdog interrupted training: a server died
                    raise local.failure from None
                raise
            if local.failure is not None:
                raise local.failure
        finally:
            local.stop()
        return

    strategy = strategies.make_strategy(settings)
    _, index, is_chief = strategies.task_from_tf_config()
    export = fn_args.serving_model_dir if is_chief else str(work / "worker-exports" / f"worker-{index}")
    yield TrainingSession(settings, strategy, is_chief, export, backup_dir)
    if not is_chief:
        # every worker of multi_worker_mirrored saves (the save is collective); only the chief's copy is kept
        shutil.rmtree(export, ignore_errors=True)
