"""Strategy names -> validated settings -> ``tf.distribute`` strategy objects, devices and input pipelines.

Runtime side (TensorFlow is imported inside the functions, so this module stays importable anywhere). The
settings come from ``training.settings.from_custom_config``; the cluster processes of the multi-process strategies
are started by ``training.cluster``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pipeline_components.config import TrainingConfig
from pipeline_components.errors import TPUUnavailableError, TrainingStrategyError

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

IN_PROCESS = ("default", "one_device", "mirrored", "central_storage", "tpu")


def compute_devices(settings: TrainingConfig) -> list[str]:
    """The replicas' devices of ``mirrored``/``central_storage``: every GPU, else ``logical_cpus`` logical CPUs.

    On a CPU-only machine the one physical CPU is split into logical devices, which TensorFlow allows only before
    it runs its first op: the Trainer does this first thing in ``run_fn``.

    Raises:
        TrainingStrategyError: TensorFlow already runs with fewer logical CPUs than asked for.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return [f"/gpu:{i}" for i in range(len(gpus))]
    wanted = settings.logical_cpus
    (cpu,) = tf.config.list_physical_devices("CPU")[:1]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * wanted)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have < wanted:
            raise TrainingStrategyError(
                f"strategy '{settings.strategy}' needs {wanted} logical CPU devices (training.logical_cpus) but "
                f"TensorFlow already started with {have}: logical devices can only be set before TensorFlow runs "
                "an op; run the Trainer in its own process (as the pipeline does) or lower training.logical_cpus"
            ) from None
    return [f"/cpu:{i}" for i in range(wanted)]


def make_strategy(settings: TrainingConfig, *, cluster_resolver: Any = None) -> tf.distribute.Strategy:
    """The strategy object for ``settings.strategy``.

    Args:
        settings: the validated training settings.
        cluster_resolver: ``parameter_server`` only: the cluster (coordinator = chief); ``multi_worker_mirrored``
            reads ``TF_CONFIG`` set by the cluster launcher.

    Raises:
        TrainingStrategyError: the strategy cannot run here (what to change is in the message).
        TPUUnavailableError: strategy ``tpu`` and no TPU answered.
    """
    import tensorflow as tf

    name = settings.strategy
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        kind = settings.device.split(":")[0].strip("/").upper()
        index = int(settings.device.split(":")[1])
        if len(tf.config.list_logical_devices(kind)) <= index:
            raise TrainingStrategyError(
                f"training.device = {settings.device!r}: this machine has "
                f"{len(tf.config.list_logical_devices(kind))} {kind} device(s); choose one of them"
            )
        return tf.distribute.OneDeviceStrategy(settings.device)
    if name in ("mirrored", "central_storage"):
        devices = compute_devices(settings)
        if name == "central_storage":
            return tf.distribute.experimental.CentralStorageStrategy(compute_devices=devices, parameter_device="/cpu:0")
        # NCCL all-reduce needs GPUs; on CPUs the gradients are summed on one device and broadcast back.
        cross_device_ops = None if devices[0].startswith("/gpu") else tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops)
    if name == "multi_worker_mirrored":
        if "TF_CONFIG" not in os.environ:
            raise TrainingStrategyError(
                "strategy 'multi_worker_mirrored' needs TF_CONFIG: the Trainer launches its workers itself "
                "(training.workers); on Kubernetes the rendered manifests set it (`runway train manifests`)"
            )
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if name == "parameter_server":
        if cluster_resolver is None:
            raise TrainingStrategyError("strategy 'parameter_server' needs its cluster (started by the Trainer)")
        return tf.distribute.experimental.ParameterServerStrategy(cluster_resolver)
    if name == "tpu":
        return connect_tpu(settings)
    raise TrainingStrategyError(f"unknown strategy {name!r}")


def _tpu_reachable_quickly(address: str, timeout_s: float) -> None:
    """A grpc:// address must accept a TCP connection; fail before TensorFlow's own, much longer, retries."""
    parsed = urlparse(address)
    if parsed.scheme != "grpc" or not parsed.hostname:
        return
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 8470), timeout=timeout_s):
            return
    except OSError as err:
        raise TPUUnavailableError(
            f"strategy 'tpu': no TPU answers at training.tpu = {address!r} ({err.strerror or err}). Check that the "
            "TPU is running and set training.tpu to its name, 'local' on a TPU VM, or grpc://HOST:8470, or choose "
            "another strategy (training.strategy / the run parameter 'strategy')"
        ) from None


def connect_tpu(settings: TrainingConfig) -> tf.distribute.Strategy:
    """``TPUStrategy`` after resolving and initializing the TPU, within ``training.tpu_timeout_s``.

    Raises:
        TPUUnavailableError: nothing answered at ``training.tpu`` in time, or it is not a TPU.
    """
    import tensorflow as tf

    timeout = float(settings.tpu_timeout_s)
    _tpu_reachable_quickly(settings.tpu, timeout)
    outcome: dict[str, Any] = {}

    def resolve() -> None:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=settings.tpu)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            outcome["resolver"] = resolver
        except Exception as err:
            outcome["error"] = err

    # The resolver may wait on a metadata server or retry a gRPC channel for minutes: bound it.
    thread = threading.Thread(target=resolve, name="tpu-resolver", daemon=True)
    thread.start()
    thread.join(timeout)
    if "resolver" not in outcome:
        why = (
            f"{type(outcome['error']).__name__}: {outcome['error']}"
            if "error" in outcome
            else f"no answer in {timeout:g}s"
        )
        raise TPUUnavailableError(
            f"strategy 'tpu': no TPU reachable at training.tpu = {settings.tpu!r} ({why.splitlines()[0][:300]}). "
            "Set training.tpu to the TPU's name, 'local' on a TPU VM, or grpc://HOST:8470, or choose another "
            "strategy (training.strategy / the run parameter 'strategy')"
        )
    return tf.distribute.TPUStrategy(outcome["resolver"])


def global_batch_size(strategy: tf.distribute.Strategy, batch_size: int) -> int:
    """``model.batch_size`` is per replica: the global batch grows with the replicas that train in sync."""
    return batch_size * strategy.num_replicas_in_sync


def auto_shard_policy(files: list[str], workers: int) -> Any:
    """FILE sharding when every worker gets at least one file, else DATA (each worker keeps every N-th batch)."""
    import tensorflow as tf

    policy = tf.data.experimental.AutoShardPolicy
    if workers <= 1:
        return policy.AUTO
    matched = sum(len(tf.io.gfile.glob(pattern)) for pattern in files)
    return policy.FILE if matched >= workers else policy.DATA


def distributed_input(
    strategy: tf.distribute.Strategy,
    settings: TrainingConfig,
    make_dataset: Callable[[int], tf.data.Dataset],
    *,
    batch_size: int,
    files: list[str],
) -> Any:
    """What ``model.fit`` takes under ``strategy``: a dataset of global batches with the right auto-shard policy, or,
    under ``parameter_server``, a ``DatasetCreator`` whose per-worker pipelines each read a distinct shard.

    Args:
        make_dataset: builds the (repeated) dataset of batches of the size it is given.
        batch_size: the per-replica batch (``model.batch_size``).
        files: the file patterns read, to choose between FILE and DATA sharding.
    """
    import tensorflow as tf
    import tf_keras as keras

    if settings.strategy == "parameter_server":

        def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
            dataset = make_dataset(context.get_per_replica_batch_size(batch_size))
            return dataset.shard(context.num_input_pipelines, context.input_pipeline_id).prefetch(2)

        return keras.utils.experimental.DatasetCreator(per_worker)
    dataset = make_dataset(global_batch_size(strategy, batch_size))
    workers = settings.workers if settings.strategy == "multi_worker_mirrored" else 1
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = auto_shard_policy(files, workers)
    return dataset.with_options(options)


def task_from_tf_config() -> tuple[str, int, bool]:
    """(task type, index, is chief) of this process in ``TF_CONFIG``; a lone process is its own chief."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return "chief", 0, True
    config = json.loads(raw)
    task = config.get("task", {})
    kind, index = str(task.get("type", "worker")), int(task.get("index", 0))
    has_chief = bool(config.get("cluster", {}).get("chief"))
    return kind, index, kind == "chief" or (not has_chief and kind == "worker" and index == 0)
