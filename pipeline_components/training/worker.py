"""Entry point of one process of a local training cluster (started by ``training.cluster``, not by hand).

A spec names the training function to call; only runway's own (``training.spec.TRAINING_ENTRY_POINTS``) are
called, anything else fails with ``TrainingWorkerError`` before it is imported.

python -m pipeline_components.training.worker train SPEC.json        # a multi_worker_mirrored worker
python -m pipeline_components.training.worker serve CLUSTER ROLE N   # a parameter_server ps/worker server
python -m pipeline_components.training.worker trainer SPEC.json      # run_fn as the Trainer node calls it,
                                                                      # in a fresh process (tests, benchmarks)
python -m pipeline_components.training.worker member ATTEMPT N     # a member of a cluster across hosts: imports
                                   # TensorFlow at once, trains as worker N when the chief wrote ATTEMPT/cluster.json
python -m pipeline_components.training.worker join --rendezvous DIR --index I --address ADDR [--host H]
    [--queue Q] --timeout-s S      # a DAG's training worker task on another host (``training.remote``); exits 0,
                                   # EXIT_SKIPPED when the run needs no remote worker, 1 with an ``error:`` line
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command, *args = argv
    if command in ("train", "trainer"):
        from pipeline_components.training.session import prepare_devices
        from pipeline_components.training.spec import call_entry, read_spec

        runs = [read_spec(Path(arg)) for arg in args]  # each entry point checked before anything is imported
        if len(runs) > 1:  # several in-process runs in one process: logical devices once, before any op
            prepare_devices([fn_args.custom_config for _, fn_args in runs])
        for entry, fn_args in runs:
            call_entry(entry, fn_args)
        return 0
    if command == "serve":
        import tensorflow as tf

        spec, role, index = json.loads(args[0]), args[1], int(args[2])
        server = tf.distribute.Server(
            tf.train.ClusterSpec(spec), job_name=role, task_index=index, protocol="grpc", start=True
        )
        logging.getLogger(__name__).info("%s %d serving at %s", role, index, spec[role][index])
        server.join()
        return 0
    if command == "pod":
        return _pod()
    if command == "join":
        return _join(args)
    if command == "member":
        return _member(Path(args[0]), int(args[1]))
    print(f"unknown command {command!r}; see the module docstring", file=sys.stderr)
    return 2


def _pod() -> int:
    """A pod of ``runway train manifests``: TF_CONFIG from the rendered cluster, the role and the Job's index."""
    import os

    from pipeline_components.training.cluster import TASK_ENV
    from pipeline_components.training.k8s import pod_tf_config

    config = pod_tf_config(dict(os.environ))
    role, index = config["task"]["type"], config["task"]["index"]
    os.environ["TF_CONFIG"] = json.dumps(config)
    os.environ[TASK_ENV] = f"{role}:{index}"
    spec = os.environ["RUNWAY_TRAINING_SPEC"]
    if os.environ.get("RUNWAY_TRAINING_STRATEGY") == "parameter_server" and role != "chief":
        return main(["serve", json.dumps(config["cluster"]), role, str(index)])
    return main(["train", spec])


def await_cluster(attempt: Path, index: int, poll_s: float = 0.2) -> Path:
    """Wait for the chief's cluster spec in ``attempt``; set this process's ``TF_CONFIG`` and task from it.

    No deadline here: the supervisor that started this process (``training.remote``) bounds the wait and stops it.

    Returns:
        The training spec to train with.
    """
    import os
    import time

    from pipeline_components.training.cluster import SPEC_ENV, TASK_ENV, tf_config
    from pipeline_components.training.rendezvous import read_cluster

    while (found := read_cluster(attempt)) is None:
        time.sleep(poll_s)
    cluster, spec = found
    os.environ["TF_CONFIG"] = tf_config(cluster, "worker", index)
    os.environ[TASK_ENV] = f"worker:{index}"
    os.environ[SPEC_ENV] = str(spec)
    logging.getLogger(__name__).info("worker %d: TF_CONFIG %s", index, os.environ["TF_CONFIG"])
    return spec


def _member(attempt: Path, index: int) -> int:
    """Import the slow part (TensorFlow, tf.Transform, TFX's Trainer helpers) while the other members gather: the
    strategy reads ``TF_CONFIG`` only when it is made, after ``await_cluster``."""
    import tensorflow  # noqa: F401
    import tensorflow_transform  # noqa: F401
    from tfx.components.trainer import fn_args_utils  # noqa: F401
    from tfx.components.util import tfxio_utils  # noqa: F401  (what read_spec and the model's input need)

    return main(["train", str(await_cluster(attempt, index))])


def _join(args: list[str]) -> int:
    """A training worker task's command: meet the chief through the rendezvous folder, train, end with it."""
    import argparse

    from pipeline_components.boundary import ERROR_PREFIX, EXIT_SKIPPED
    from pipeline_components.errors import TrainingWorkerError
    from pipeline_components.training.remote import join

    parser = argparse.ArgumentParser(prog="python -m pipeline_components.training.worker join")
    parser.add_argument("--rendezvous", required=True, type=Path)
    parser.add_argument("--index", required=True, type=int)
    parser.add_argument("--address", required=True, help="this host's address: the training server listens on it")
    parser.add_argument("--host", default="", help="this host's name, for the logs")
    parser.add_argument("--queue", default="", help="this task's Airflow queue, for the logs")
    parser.add_argument("--timeout-s", required=True, type=float, help="training.worker_timeout_s")
    options = parser.parse_args(args)
    try:
        trained = join(
            rendezvous=options.rendezvous,
            index=options.index,
            host=options.host or options.address,
            address=options.address,
            queue=options.queue,
            timeout_s=options.timeout_s,
        )
    except TrainingWorkerError as error:
        print(f"{ERROR_PREFIX}{error}", flush=True)
        return 1
    return 0 if trained else EXIT_SKIPPED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
