"""The model function on its own: shapes and output ranges for binary and multi-class labels."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pipeline_components.models.tabular import build_keras_model, transformed_name


def _batch(numeric: list[str], sizes: dict[str, int], n: int = 8) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(0)
    batch = {transformed_name(k): tf.constant(rng.normal(size=n), tf.float32) for k in numeric}
    batch |= {transformed_name(k): tf.constant(rng.integers(0, v, size=n), tf.int64) for k, v in sizes.items()}
    return batch


@pytest.mark.parametrize(
    ("num_classes", "width"), [pytest.param(2, 1, id="binary"), pytest.param(3, 3, id="multiclass")]
)
def test_outputs_are_probabilities(num_classes: int, width: int) -> None:
    numeric, sizes = ["distance", "temp"], {"carrier": 17, "origin": 4}
    model = build_keras_model(
        numeric=numeric,
        categorical_sizes=sizes,
        num_classes=num_classes,
        hidden_units=[8],
        embedding_dim=2,
        learning_rate=0.01,
    )
    out = model(_batch(numeric, sizes)).numpy()
    assert out.shape == (8, width)
    assert ((out >= 0) & (out <= 1)).all()
    if num_classes > 2:
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_an_unseen_category_index_is_embedded_not_an_error() -> None:
    """The out-of-vocabulary bucket is the last index: a new carrier must still get a prediction."""
    model = build_keras_model(
        numeric=[],
        categorical_sizes={"carrier": 5},
        num_classes=2,
        hidden_units=[4],
        embedding_dim=2,
        learning_rate=0.01,
    )
    out = model({transformed_name("carrier"): tf.constant([4, 4], tf.int64)}).numpy()
    assert out.shape == (2, 1)
