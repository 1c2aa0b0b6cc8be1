"""Verification samples stored with each pushed version: real examples and the exported model's own answers.

The fleet rollout (orchestrator side, no TensorFlow) replays them through every instance over REST and gRPC and
compares the answers with these, so the samples are computed here, in the runtime environment, from the very
SavedModel that is pushed: ``<version>/assets.extra/runway_verification.json``::

    {"signature_name": "serving_default", "rows": [{"distance": 1617.0, ...}, ...],
     "dtypes": {"distance": 1, ...}, "expected": {"probabilities": [[0.27], ...]}}

``dtypes`` are TensorFlow's DataType numbers of the signature's inputs (1 float32, 9 int64, 7 string), which the
gRPC requests use; REST takes the rows as JSON.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

VERIFICATION_FILE = Path("assets.extra") / "runway_verification.json"  # = pipeline_components.fleet's


def signature_inputs(saved_model_dir: Path, signature_name: str = "serving_default") -> dict[str, Any]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    function = loaded.signatures[signature_name]
    return dict(function.structured_input_signature[1])


def compute_samples(
    saved_model_dir: Path, rows: list[dict[str, Any]], signature_name: str = "serving_default"
) -> dict[str, Any]:
    """Run ``rows`` (raw feature values; extra keys are dropped) through the SavedModel's signature."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    function = loaded.signatures[signature_name]
    specs = function.structured_input_signature[1]
    clean_rows = []
    for row in rows:
        clean: dict[str, Any] = {}
        for name, spec in specs.items():
            value = row[name]
            if spec.dtype == tf.string:
                clean[name] = str(value)
            elif spec.dtype.is_integer:
                clean[name] = int(float(value))
            else:
                clean[name] = float(value)
        clean_rows.append(clean)
    expected: dict[str, list[list[float]]] = {}
    for row in clean_rows:  # one at a time, exactly as the rollout asks
        inputs = {name: tf.constant([row[name]], dtype=spec.dtype) for name, spec in specs.items()}
        outputs = function(**inputs)
        for name, tensor in outputs.items():
            expected.setdefault(name, []).append([float(v) for v in np.asarray(tensor).reshape(-1)])
    return {
        "signature_name": signature_name,
        "rows": clean_rows,
        "dtypes": {name: int(spec.dtype.as_datatype_enum) for name, spec in specs.items()},
        "expected": expected,
    }


def write_samples(version_dir: Path, samples: dict[str, Any]) -> Path:
    path = Path(version_dir) / VERIFICATION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(samples, indent=1) + "\n")
    return path


def rows_from_csv(pattern_root: Path, pattern: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` complete rows of the CSV files matching ``pattern`` under ``pattern_root``."""
    rows: list[dict[str, Any]] = []
    for path in sorted(pattern_root.glob(pattern)):
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if all(value != "" for value in row.values()):
                    rows.append(row)
                if len(rows) >= count:
                    return rows
    return rows
