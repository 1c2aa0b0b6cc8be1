"""A slice of a pipeline for experiments on the model alone: ExampleGen, ImportSchemaGen and Transform.

The strategies benchmark and the training tests need transformed examples and a transform graph, made the way
the pipeline makes them, without running a whole pipeline. Runtime environment only (imports TFX).
"""

from __future__ import annotations

from pathlib import Path

from pipeline_components.config import load_pipeline_config
from pipeline_components.pipeline.factory import model_custom_config


def transform_slice(csv_dir: Path, root: Path, *, config_path: Path, name: str) -> dict[str, Path]:
    """Run the three nodes with TFX's ``LocalDagRunner`` on the CSV files in ``csv_dir``; artifacts under ``root``.

    Returns the paths a Trainer reads: ``examples`` (ExampleGen's), ``transformed`` (Transform's, with
    ``Split-train`` and ``Split-eval``) and ``graph`` (the transform graph), plus ``root``.
    """
    from tfx import v1 as tfx
    from tfx.orchestration import metadata

    config = load_pipeline_config(config_path)
    example_gen = tfx.components.CsvExampleGen(input_base=str(csv_dir))
    schema = tfx.components.ImportSchemaGen(schema_file=str(config.schema_path))
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema.outputs["schema"],
        preprocessing_fn=f"{config.model.module}.preprocessing_fn",
        custom_config=model_custom_config(config),
    )
    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name=name,
            pipeline_root=str(root / "pipeline"),
            components=[example_gen, schema, transform],
            metadata_connection_config=metadata.sqlite_metadata_connection_config(str(root / "mlmd.sqlite")),
            enable_cache=False,
        )
    )

    def only(pattern: str) -> Path:
        (found,) = sorted((root / "pipeline").glob(pattern))
        return found

    return {
        "root": root,
        "examples": only("CsvExampleGen/examples/*"),
        "transformed": only("Transform/transformed_examples/*"),
        "graph": only("Transform/transform_graph/*"),
    }
