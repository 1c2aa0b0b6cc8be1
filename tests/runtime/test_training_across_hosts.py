"""multi_worker_mirrored across two hosts (network namespaces): the chief and its worker started as the DAG starts them.

Two hosts of a private ``HostPlan`` (a temporary RUNWAY_HOME, so none of a deployment's names or subnets is touched):
on the first, the Trainer's ``run_fn`` in a fresh process with the environment the DAG's Trainer task gives its node
(``rendezvous.chief_env``, ``RUNWAY_HOST``/``RUNWAY_HOST_ADDRESS``); on the second, the worker task's command
(``rendezvous.join_argv``). They meet in the rendezvous folder and train the penguins model for a few steps over the
hosts' bridge; the chief exports. Needs root and iproute2 (as ``runway deploy`` does); about a minute.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.deploy.hosts import HostPlan, Hosts
from pipeline_components.settings import CHECKOUT
from pipeline_components.training import rendezvous as rv

pytestmark = [
    pytest.mark.runtime,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="hosts need root and iproute2"),
]

ENTRY = "pipeline_components.models.tabular.run_fn"
HOSTS = ("tw-1", "tw-2")
RUN_ID = "manual__2026-12-07T10:00:00+00:00"


def _feature(value: Any) -> Any:
    import numpy as np
    import tensorflow as tf

    array = np.asarray(value).reshape(-1)
    if array.dtype.kind in "SUO":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode() for v in array]))
    if array.dtype.kind in "iub":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=array.astype("int64").tolist()))
    return tf.train.Feature(float_list=tf.train.FloatList(value=array.astype("float32").tolist()))


def transformed_penguins(root: Path, custom_config: dict[str, Any]) -> dict[str, Path]:
    """What Transform writes for the real penguins rows (its graph, gzipped transformed tf.Examples per split), made
    in-process by tf.Transform with the pipeline's ``preprocessing_fn``: seconds, not a TFX pipeline."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
    from tfx.utils import io_utils

    from pipeline_components.config import load_pipeline_config
    from pipeline_components.data import penguins
    from pipeline_components.models import tabular

    config = load_pipeline_config(CHECKOUT / "configs" / "penguins.yaml")
    schema = io_utils.SchemaReader().read(str(config.schema_path))
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    frame = penguins.load_source().dropna(subset=list(penguins.COLUMNS))[list(penguins.COLUMNS)].copy()
    frame[penguins.LABEL] = frame[penguins.LABEL].map(penguins.SPECIES.index).astype("int64")
    rows = [{name: [row[name]] for name in spec} for row in frame.to_dict("records")]
    graph = root / "transform_graph"
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(dir=root)):
        (data, _), transform_fn = (
            rows,
            dataset_metadata.DatasetMetadata(schema),
        ) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(tabular.preprocessing_fn, custom_config=custom_config), output_record_batches=False
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(graph))
    metadata_io.write_metadata(
        dataset_metadata.DatasetMetadata(schema), str(graph / tft.TFTransformOutput.RAW_METADATA_DIR)
    )
    examples = root / "transformed"
    for split, part in (("train", data[::2]), ("eval", data[1::2])):
        folder = examples / f"Split-{split}"
        folder.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(folder / "transformed_examples-00000-of-00001.gz"), options="GZIP") as out:
            for row in part:
                features = {name: _feature(value) for name, value in row.items()}
                out.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return {"transformed": examples, "graph": graph}


def test_two_hosts_train_one_model_with_tf_config_naming_their_addresses(tmp_path: Path) -> None:
    from pipeline_components.config import load_pipeline_config
    from pipeline_components.pipeline.factory import model_custom_config
    from pipeline_components.training.spec import slice_fn_args, write_spec

    config = load_pipeline_config(CHECKOUT / "configs" / "penguins.yaml")
    training = {"strategy": "multi_worker_mirrored", "workers": 2, "worker_timeout_s": 240}
    custom_config = {**model_custom_config(config), "batch_size": 16, "training": training}
    paths = transformed_penguins(tmp_path, model_custom_config(config))
    out = tmp_path / "trainer"
    fn_args = slice_fn_args(paths, out, steps=20, eval_steps=2, custom_config=custom_config)
    spec = write_spec(fn_args, ENTRY, out / "spec.json")

    hosts = Hosts(HostPlan.for_home(tmp_path / "home", names=HOSTS))
    chief_host, worker_host = hosts.plan.hosts
    folder = rv.rendezvous_dir(tmp_path / "home" / "pipelines" / "penguins", RUN_ID, "Trainer")
    queues = [host.name for host in hosts.plan.hosts]  # a deployment's queue per worker host: named after it
    processes: list[subprocess.Popen[bytes]] = []
    try:
        hosts.up()
        chief_env = {
            **os.environ,
            **rv.chief_env(folder, queues),
            rv.HOST_ENV: chief_host.name,
            rv.HOST_ADDRESS_ENV: chief_host.address,
        }
        chief_log, worker_log = (tmp_path / "chief.log").open("wb"), (tmp_path / "worker.log").open("wb")
        trainer_argv = [sys.executable, "-m", "pipeline_components.training.worker", "trainer", str(spec)]
        processes.append(hosts.popen(chief_host.name, trainer_argv, env=chief_env, stdout=chief_log, stderr=chief_log))
        join = rv.join_argv(
            python=sys.executable,
            rendezvous=folder,
            index=1,
            address=worker_host.address,
            host=worker_host.name,
            queue=worker_host.name,
            timeout_s=240,
        )
        processes.append(hosts.popen(worker_host.name, join, stdout=worker_log, stderr=worker_log))
        codes = [process.wait(timeout=300) for process in processes]
        logs = {"chief": (tmp_path / "chief.log").read_text(), "worker": (tmp_path / "worker.log").read_text()}
        assert codes == [0, 0], {name: text[-3000:] for name, text in logs.items()}
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        hosts.down()

    assert (out / "serving" / "saved_model.pb").is_file()  # the chief exported
    attempt = folder / json.loads((folder / "open.json").read_text())["attempt"]
    cluster = json.loads((attempt / "cluster.json").read_text())["cluster"]["worker"]
    assert [endpoint.rsplit(":", 1)[0] for endpoint in cluster] == [chief_host.address, worker_host.address]
    members = json.loads((out / "run" / "cluster" / "members.json").read_text())
    assert [(m["host"], m["address"]) for m in members] == [(h.name, h.address) for h in hosts.plan.hosts]
    for index in (0, 1):  # what TensorFlow itself was given, from each training process's own log
        text = (attempt / "logs" / f"worker-{index}.log").read_text()
        assert f"cluster_spec = {{'worker': {cluster!r}}}, task_type = 'worker', task_id = {index}" in text, text[
            -3000:
        ]
    assert "training worker 1 on host tw-2" in logs["chief"]  # the Trainer's log says who trained where
    assert hosts.leftovers() == []
