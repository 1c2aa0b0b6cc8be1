"""Real rows for the variants: transformed training rows (calibration, fine-tuning), the run's raw evaluation rows
(measurement), and the encoding spec that turns raw values into a variant's inputs.
"""

from __future__ import annotations

import glob
import os
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from pipeline_components.components.tflite_variants.encoder import SPEC_VERSION
from pipeline_components.errors import DataError
from pipeline_components.models.tabular import LABEL_KEY, NUM_OOV_BUCKETS

Features = dict[str, np.ndarray]


def split_files(uri: str, split: str) -> list[str]:
    return sorted(glob.glob(os.path.join(uri, f"Split-{split}", "*")))


def _dense(value: Any, dtype: tf.DType) -> np.ndarray:
    if isinstance(value, tf.SparseTensor):
        default = b"" if dtype == tf.string else 0
        value = tf.sparse.to_dense(tf.sparse.reset_shape(value, [value.dense_shape[0], 1]), default_value=default)
    array = np.asarray(value)
    return array.reshape(len(array), -1)[:, 0] if array.ndim > 1 else array


def read_examples(
    uris: list[str], split: str, spec: dict[str, Any], limit: int, *, keep_serialized: bool = False
) -> tuple[Features, list[bytes]]:
    """Parse up to ``limit`` tf.Examples of ``split`` from each artifact in ``uris``, flattened to 1-D columns.

    Raises:
        DataError: the split has no files.
    """
    files = [path for uri in uris for path in split_files(uri, split)]
    if not files:
        raise DataError(f"no '{split}' split files under {uris}: the TFLite variants need real {split} rows")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit).batch(4096)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in spec}
    serialized: list[bytes] = []
    for batch in dataset:
        if keep_serialized:
            serialized.extend(batch.numpy().tolist())
        parsed = tf.io.parse_example(batch, spec)
        for name, value in parsed.items():
            columns[name].append(_dense(value, spec[name].dtype))
    return {name: np.concatenate(parts) for name, parts in columns.items() if parts}, serialized


def transformed_rows(uris: list[str], split: str, tf_transform_output: tft.TFTransformOutput, limit: int) -> Features:
    return read_examples(uris, split, tf_transform_output.transformed_feature_spec(), limit)[0]


def features_and_labels(rows: Features, input_names: list[str]) -> tuple[Features, np.ndarray]:
    missing = sorted(set(input_names) - set(rows))
    if missing or LABEL_KEY not in rows:
        raise DataError(f"transformed rows lack the model's inputs {missing} or the label {LABEL_KEY}")
    return {name: rows[name] for name in input_names}, rows[LABEL_KEY].astype(np.int64)


def transform_raw(tf_transform_output: tft.TFTransformOutput, raw: Features) -> Features:
    """Transform's own outputs for raw rows (the Transform graph, run by TensorFlow)."""
    spec = tf_transform_output.raw_feature_spec()
    tensors = {}
    for name, feature in spec.items():
        values = raw[name]
        tensor = tf.constant(values.astype(object) if feature.dtype == tf.string else values, dtype=feature.dtype)
        tensors[name] = tf.reshape(tensor, [-1, 1]) if list(getattr(feature, "shape", [])) == [1] else tensor
        if isinstance(feature, tf.io.VarLenFeature):
            tensors[name] = tf.sparse.from_dense(tf.reshape(tensor, [-1, 1]))
    out = tf_transform_output.transform_raw_features(tensors, drop_unused_features=True)
    return {name: _dense(value, value.dtype) for name, value in out.items()}


def encoding_spec(
    tf_transform_output: tft.TFTransformOutput, input_dtypes: dict[str, str], suffix: str = "_xf"
) -> dict[str, Any]:
    """The encoding a variant's inputs need, read from the Transform graph (see ``encoder.py``).

    Numeric inputs (float32) are z-scores: the graph is probed at two far-apart points to recover its mean and
    standard deviation exactly (TFT keeps them as constants of the graph). Categorical inputs (int64) are
    vocabulary indices: the vocabulary files TFT wrote, plus one out-of-vocabulary bucket.
    """
    raw_spec = tf_transform_output.raw_feature_spec()
    numeric = sorted(name for name, dtype in input_dtypes.items() if dtype.startswith("float"))
    categorical = sorted(name for name in input_dtypes if name not in numeric)
    probe_points = (0.0, 1.0e6)
    probe = {}
    for name, feature in raw_spec.items():
        if feature.dtype == tf.string:
            probe[name] = np.array([b"", b""], dtype=object)
        else:
            probe[name] = np.array(probe_points, dtype=feature.dtype.as_numpy_dtype)
    out = transform_raw(tf_transform_output, probe)
    spec: dict[str, Any] = {"version": SPEC_VERSION, "numeric": [], "categorical": [], "num_oov_buckets": 1}
    for key in numeric:
        raw_name = key.removesuffix(suffix)
        low, high = (float(v) for v in out[key].astype(np.float64))
        scale = (high - low) / (probe_points[1] - probe_points[0])  # 1 / std
        std = 1.0 / scale
        spec["numeric"].append({"name": raw_name, "input": key, "mean": -low * std, "std": std})
    for key in categorical:
        raw_name = key.removesuffix(suffix)
        vocabulary = [
            token.decode("utf-8") if isinstance(token, bytes) else str(token)
            for token in tf_transform_output.vocabulary_by_name(raw_name)
        ]
        spec["categorical"].append(
            {
                "name": raw_name,
                "input": key,
                "dtype": input_dtypes[key],
                "vocabulary": vocabulary,
                "oov_index": len(vocabulary),
            }
        )
    spec["num_oov_buckets"] = NUM_OOV_BUCKETS
    return spec
