"""The spec of a multi-process training run: what each cluster process needs to call the Trainer's ``run_fn``.

The Trainer writes it (``write_spec``) into its ModelRun folder; each cluster process (``training.worker``), or
each pod of ``runway train manifests`` from the shared volume, reads it back (``read_spec``) and calls its entry
point. That file sits where other processes and pods may write, so the entry point it names is only ever taken
from ``TRAINING_ENTRY_POINTS``, runway's own training functions: anything else is refused before it is imported.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pipeline_components.durable import atomic_write
from pipeline_components.errors import TrainingWorkerError

# The run_fn of each of runway's model modules (``model.module`` of a pipeline configuration). A new model module
# that trains under a multi-process strategy adds its run_fn here.
TRAINING_ENTRY_POINTS: frozenset[str] = frozenset({"pipeline_components.models.tabular.run_fn"})

SPEC_FIELDS = (
    "working_dir",
    "train_files",
    "eval_files",
    "train_steps",
    "eval_steps",
    "schema_path",
    "schema_file",
    "transform_graph_path",
    "transform_output",
    "serving_model_dir",
    "eval_model_dir",
    "model_run_dir",
    "base_model",
    "hyperparameters",
    "custom_config",
)


def check_entry_point(entry: object, *, source: str) -> str:
    """``entry`` when it is one of runway's training functions.

    Args:
        entry: the dotted name of the function (``module.function``).
        source: where it came from, for the message (a spec file, a model module).

    Raises:
        TrainingWorkerError: any other name (nothing of it is imported).
    """
    if entry not in TRAINING_ENTRY_POINTS:
        raise TrainingWorkerError(
            f"{source} names the training entry point {entry!r}, which is not one of runway's training functions "
            f"({', '.join(sorted(TRAINING_ENTRY_POINTS))}); nothing was imported. A spec is written by the Trainer "
            "itself: if this one was not, someone else can write where it lives. A new model module's run_fn is "
            "added to TRAINING_ENTRY_POINTS in pipeline_components/training/spec.py"
        )
    return str(entry)


def write_spec(fn_args: Any, entry: str, path: Path) -> Path:
    """Everything a cluster process needs to rebuild the Trainer's ``fn_args`` and call ``entry``.

    Raises:
        TrainingWorkerError: ``entry`` is not one of runway's training functions (before any process starts).
    """
    check_entry_point(entry, source=f"the Trainer's run_fn ({path})")
    fields = {name: getattr(fn_args, name, None) for name in SPEC_FIELDS}
    atomic_write(path, json.dumps({"entry": entry, "fn_args": fields}, indent=2, default=str))
    return path


def read_spec(path: Path) -> tuple[str, Any]:
    """(entry, fn_args) from a spec, with a DataAccessor over the transformed tf.Examples.

    Raises:
        TrainingWorkerError: the spec names an entry point that is not one of runway's training functions.
    """
    spec = json.loads(path.read_text())
    entry = check_entry_point(spec.get("entry"), source=f"the training spec {path}")
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.proto import example_gen_pb2

    def tf_dataset_factory(file_pattern: list[str], options: Any, schema: Any) -> Any:
        return tfxio_utils.make_tfxio(
            file_pattern=file_pattern,
            telemetry_descriptors=["runway", "Trainer", "worker"],
            payload_format=example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE,
            schema=schema,
        ).TensorFlowDataset(options)

    accessor = fn_args_utils.DataAccessor(
        tf_dataset_factory=tf_dataset_factory, record_batch_factory=None, data_view_decode_fn=None
    )
    return entry, fn_args_utils.FnArgs(data_accessor=accessor, **spec["fn_args"])


def call_entry(entry: str, fn_args: Any) -> None:
    """Call one of runway's training functions (checked again here: this is where the import happens)."""
    module, _, name = check_entry_point(entry, source="the training run").rpartition(".")
    getattr(importlib.import_module(module), name)(fn_args)


def slice_fn_args(
    paths: dict[str, Path], out: Path, *, steps: int, eval_steps: int, custom_config: dict[str, Any]
) -> SimpleNamespace:
    """The Trainer's ``fn_args`` for a transformed slice (``pipeline.slices.transform_slice``), written under
    ``out``: what the strategy tests and the strategies benchmark train on, as the Trainer node would."""
    return SimpleNamespace(
        working_dir=str(out / "run"),
        train_files=[str(paths["transformed"] / "Split-train" / "*")],
        eval_files=[str(paths["transformed"] / "Split-eval" / "*")],
        train_steps=steps,
        eval_steps=eval_steps,
        schema_path=None,
        schema_file=None,
        transform_graph_path=str(paths["graph"]),
        transform_output=str(paths["graph"]),
        serving_model_dir=str(out / "serving"),
        eval_model_dir=str(out / "serving"),
        model_run_dir=str(out / "run"),
        base_model=None,
        hyperparameters=None,
        custom_config=custom_config,
    )
