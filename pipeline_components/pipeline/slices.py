"""Slices of the pipeline for experiments on the model alone: ExampleGen, ImportSchemaGen, Transform (and on).

The strategies and TFLite benchmarks and their tests need transformed examples, a transform graph, a trained model
or its TFLite variants, made the way the pipeline makes them, without running a whole pipeline. The nodes are
built by the factory's own functions; ``run_slice`` runs them with TFX's ``LocalDagRunner``. Runtime environment
only (imports TFX).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.pipeline.factory import model_custom_config, split_config, tflite_variants, trainer


@dataclass(frozen=True)
class ModelSlice:
    """The nodes of a slice, upstream first; ``trainer`` and ``tflite_variants`` only when asked for."""

    example_gen: Any
    schema: Any
    transform: Any
    trainer: Any = None
    tflite_variants: Any = None

    @property
    def components(self) -> list[Any]:
        nodes = (self.example_gen, self.schema, self.transform, self.trainer, self.tflite_variants)
        return [node for node in nodes if node is not None]


def model_slice(
    csv_dir: Path,
    *,
    config: PipelineConfig,
    pipeline_splits: bool = False,
    train: tuple[int, int] | None = None,
    custom_config: dict[str, Any] | None = None,
    variants: list[str] | None = None,
    tflite_settings: dict[str, Any] | None = None,
) -> ModelSlice:
    """The slice's nodes on the CSV files in ``csv_dir`` (one span's worth).

    Args:
        csv_dir: the folder of CSV files ExampleGen ingests.
        config: the pipeline configuration (schema, model module, splits, model settings).
        pipeline_splits: split train/eval by the configuration's hash buckets (default: TFX's 2:1).
        train: (train steps, eval steps) to add a Trainer; None for none.
        custom_config: what Transform's and the Trainer's functions read (default: the configuration's).
        variants: TFLite variants to build from the Trainer's model (needs ``train``); None for none.
        tflite_settings: the TFLiteVariants settings (the configuration's ``tflite`` section and batch size).

    Returns:
        The nodes, not yet run.
    """
    from tfx import v1 as tfx

    custom = custom_config if custom_config is not None else model_custom_config(config)
    example_gen = tfx.components.CsvExampleGen(
        input_base=str(csv_dir), output_config=split_config(config) if pipeline_splits else None
    )
    schema = tfx.components.ImportSchemaGen(schema_file=str(config.schema_path))
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema.outputs["schema"],
        preprocessing_fn=f"{config.model.module}.preprocessing_fn",
        custom_config=model_custom_config(config),
    )
    if train is None:
        return ModelSlice(example_gen, schema, transform)
    model = trainer(config, transform=transform, schema=schema.outputs["schema"], steps=train, custom_config=custom)
    if variants is None:
        return ModelSlice(example_gen, schema, transform, model)
    tflite = tflite_variants(
        trainer=model,
        transform=transform,
        examples=example_gen.outputs["examples"],
        variants=variants,
        settings=dict(tflite_settings or {}),
    )
    return ModelSlice(example_gen, schema, transform, model, tflite)


def run_slice(components: list[Any], root: Path, *, name: str) -> None:
    """Run ``components`` with TFX's ``LocalDagRunner``: artifacts under ``root/pipeline``, ML Metadata beside."""
    from tfx import v1 as tfx
    from tfx.orchestration import metadata

    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name=name,
            pipeline_root=str(root / "pipeline"),
            components=components,
            metadata_connection_config=metadata.sqlite_metadata_connection_config(str(root / "mlmd.sqlite")),
            enable_cache=False,
        )
    )


def transform_slice(csv_dir: Path, root: Path, *, config_path: Path, name: str) -> dict[str, Path]:
    """Run ExampleGen, ImportSchemaGen and Transform on the CSV files in ``csv_dir``; artifacts under ``root``.

    Returns the paths a Trainer reads: ``examples`` (ExampleGen's), ``transformed`` (Transform's, with
    ``Split-train`` and ``Split-eval``) and ``graph`` (the transform graph), plus ``root``.
    """
    run_slice(model_slice(csv_dir, config=load_pipeline_config(config_path)).components, root, name=name)

    def only(pattern: str) -> Path:
        (found,) = sorted((root / "pipeline").glob(pattern))
        return found

    return {
        "root": root,
        "examples": only("CsvExampleGen/examples/*"),
        "transformed": only("Transform/transformed_examples/*"),
        "graph": only("Transform/transform_graph/*"),
    }
