"""Reference encoder: raw feature values -> the inputs of a published TFLite variant.

A TFLite variant takes the *transformed* features (what tf.Transform feeds the Keras model), because TFT's
vocabulary lookups are TensorFlow hash-table ops, not TFLite builtins. This file turns raw values into those inputs
with the encoding spec (``encoding.json``) that ships beside every variant. It needs only Python and NumPy, and it
is copied next to the variants as ``encoder.py`` so that a consumer can run it, or port its few lines:

    numeric     x_xf = (float(x) - mean) / std          (tft.scale_to_z_score; std 1 where the variance was 0)
    categorical x_xf = vocabulary.index(str(x))          (tft.compute_and_apply_vocabulary)
                       or len(vocabulary) + 0            (unseen value: the single out-of-vocabulary bucket)

    >>> spec = load_spec("encoding.json")
    >>> inputs = encode(spec, {"carrier": ["UA", "B6"], "distance": [1400, 1069], ...})
    >>> runner = Interpreter(model_path="int8.tflite").get_signature_runner()
    >>> runner(**inputs)["probabilities"]

The tests check that it reproduces Transform's outputs on real flights (tests/runtime/test_tflite_variants.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

SPEC_VERSION = 1


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read an ``encoding.json``."""
    spec = dict(json.loads(Path(path).read_text()))
    if spec.get("version") != SPEC_VERSION:
        raise ValueError(f"{path}: encoding spec version {spec.get('version')!r}, this encoder reads {SPEC_VERSION}")
    return spec


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an integer category read back as a float (pandas) is spelled as TF spells it
    return str(value)


def encode(spec: Mapping[str, Any], raw: Mapping[str, Iterable[Any]]) -> dict[str, np.ndarray]:
    """Encode a batch of raw rows (one sequence of values per feature) into the variant's named inputs.

    Raises:
        KeyError: a feature of the spec is missing from ``raw``.
    """
    inputs: dict[str, np.ndarray] = {}
    for feature in spec["numeric"]:
        values = np.asarray(list(raw[feature["name"]]), dtype=np.float64)
        inputs[feature["input"]] = ((values - feature["mean"]) / feature["std"]).astype(np.float32)
    for feature in spec["categorical"]:
        index = {token: i for i, token in enumerate(feature["vocabulary"])}
        oov = len(feature["vocabulary"])  # one out-of-vocabulary bucket, right after the vocabulary
        inputs[feature["input"]] = np.asarray(
            [index.get(_text(value), oov) for value in raw[feature["name"]]], dtype=np.dtype(feature["dtype"])
        )
    return inputs
