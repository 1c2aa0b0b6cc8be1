"""A tiny real model for the model-gate tests, exported by the project's own export code, in seconds.

Real penguins rows become tf.Examples typed by the committed schema (as CsvExampleGen writes them: an Examples
artifact folder with a gzipped ``Split-eval``); tf.Transform (Beam, in-process) analyses them with the pipeline's
``preprocessing_fn``; ``build_keras_model`` trains a few steps; ``_serving_signatures`` exports the same four
signatures the Trainer exports.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline_components.config import load_pipeline_config
from pipeline_components.data import penguins
from pipeline_components.settings import CHECKOUT


@dataclass(frozen=True)
class TinyModel:
    saved_model: Path  # the SavedModel folder (what a Trainer's Format-Serving holds)
    examples: Path  # an Examples artifact folder: Split-train/ and Split-eval/ of gzipped tf.Examples
    config: Any


def _rows() -> list[dict[str, Any]]:
    frame = penguins.load_source().dropna(subset=list(penguins.COLUMNS))
    frame = frame[list(penguins.COLUMNS)].copy()
    frame[penguins.LABEL] = frame[penguins.LABEL].map(penguins.SPECIES.index).astype("int64")
    return frame.to_dict("records")


def _example(row: dict[str, Any], spec: dict[str, Any]) -> bytes:
    features = {}
    for name, feature in spec.items():
        value = row[name]
        if feature.dtype == tf.string:
            features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
        elif feature.dtype == tf.int64:
            features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        else:
            features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def build_tiny_model(root: Path, *, train_steps: int = 30) -> TinyModel:
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
    from tfx.utils import io_utils

    from pipeline_components.models import tabular
    from pipeline_components.pipeline.factory import model_custom_config

    config = load_pipeline_config(CHECKOUT / "configs" / "penguins.yaml")
    custom_config = model_custom_config(config)
    schema = io_utils.SchemaReader().read(str(config.schema_path))
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    rows = _rows()
    serialized = [_example(row, spec) for row in rows]
    examples = root / "examples"
    for split, part in (("train", serialized[::2]), ("eval", serialized[1::2])):
        (examples / f"Split-{split}").mkdir(parents=True)
        with tf.io.TFRecordWriter(
            str(examples / f"Split-{split}" / "data_tfrecord-00000-of-00001.gz"), options="GZIP"
        ) as writer:
            for record in part:
                writer.write(record)

    transform_dir = root / "transform"
    instances = [{name: [row[name]] for name in spec} for row in rows]
    metadata = dataset_metadata.DatasetMetadata(schema)
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(dir=root)):
        transformed, transform_fn = (instances, metadata) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(tabular.preprocessing_fn, custom_config=custom_config), output_record_batches=False
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(transform_dir))
    # Transform's output folder also holds the raw metadata, which the serving signatures parse examples with.
    metadata_io.write_metadata(metadata, str(transform_dir / tft.TFTransformOutput.RAW_METADATA_DIR))
    data, _ = transformed
    output = tft.TFTransformOutput(str(transform_dir))
    model = tabular.build_keras_model(
        numeric=custom_config["numeric"],
        categorical_sizes={
            name: output.vocabulary_size_by_name(name) + tabular.NUM_OOV_BUCKETS
            for name in custom_config["categorical"]
        },
        num_classes=custom_config["num_classes"],
        hidden_units=[8],
        embedding_dim=2,
        learning_rate=0.05,
    )
    keys = [k for k in data[0] if k != tabular.LABEL_KEY]
    features = {k: np.asarray([np.asarray(d[k]).reshape(()) for d in data]) for k in keys}
    labels = np.asarray([int(np.asarray(d[tabular.LABEL_KEY]).reshape(())) for d in data])
    model.fit(features, labels, batch_size=32, epochs=1, steps_per_epoch=min(train_steps, len(labels) // 32), verbose=0)
    signatures = tabular._serving_signatures(model, output, custom_config)
    saved_model = root / "model" / "Format-Serving"
    model.save(str(saved_model), save_format="tf", signatures=signatures)
    return TinyModel(saved_model=saved_model, examples=examples, config=config)
