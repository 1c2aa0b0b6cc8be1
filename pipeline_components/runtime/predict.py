"""Load a pushed SavedModel from the model store and predict for real rows of the newest span."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import tensorflow as tf

from pipeline_components.config import PipelineConfig, fill_span
from pipeline_components.errors import DataError, RunwayError
from pipeline_components.settings import Settings


def model_versions(settings: Settings, config: PipelineConfig) -> list[Path]:
    """Version folders under the model base path, oldest first (TF Serving's numeric versions)."""
    base = settings.model_store / config.serving.model_name
    if not base.is_dir():
        return []
    return sorted(
        (p for p in base.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()),
        key=lambda p: int(p.name),
    )


def newest_span_rows(settings: Settings, config: PipelineConfig, count: int) -> tuple[str, list[dict[str, str]]]:
    pattern = fill_span(config.data.span_pattern)
    files = sorted((settings.data_dir / config.data.folder).glob(pattern))
    if not files:
        raise DataError(f"no prepared spans for {config.name}; run `runway data prepare {config.name}`")
    with files[-1].open(newline="") as handle:
        rows = [row for _, row in zip(range(count), csv.DictReader(handle), strict=False)]
    return files[-1].parent.name, rows


def predict_rows(model_dir: Path, rows: list[dict[str, str]]) -> list[list[float]]:
    """Call ``serving_default`` with one 1-D tensor per raw feature, as TF Serving's columnar REST form does."""
    loaded = tf.saved_model.load(str(model_dir))
    signature = loaded.signatures["serving_default"]
    _, specs = signature.structured_input_signature
    inputs = {}
    for name, spec in specs.items():
        values = [row[name] for row in rows]
        if spec.dtype.is_integer:
            inputs[name] = tf.constant([int(float(v)) for v in values], dtype=spec.dtype)
        elif spec.dtype.is_floating:
            inputs[name] = tf.constant([float(v) for v in values], dtype=spec.dtype)
        else:
            inputs[name] = tf.constant(values, dtype=spec.dtype)
    output = signature(**inputs)
    return output["probabilities"].numpy().tolist()


def predict(config: PipelineConfig, settings: Settings, *, count: int, version: str | None) -> dict[str, Any]:
    versions = model_versions(settings, config)
    if not versions:
        raise RunwayError(f"no pushed model under {settings.model_store / config.serving.model_name}")
    model_dir = next((v for v in versions if v.name == version), None) if version else versions[-1]
    if model_dir is None:
        raise RunwayError(f"version {version} is not in the model store; have {[v.name for v in versions]}")
    span, rows = newest_span_rows(settings, config, count)
    probabilities = predict_rows(model_dir, rows)
    classes = config.label.classes
    results = []
    for row, probs in zip(rows, probabilities, strict=True):
        if config.label.kind == "binary" and not classes:
            prediction: Any = round(float(probs[0]), 4)
        else:  # named classes: the most likely one, with its probability
            scores = [1.0 - probs[0], probs[0]] if config.label.kind == "binary" else probs
            best = max(range(len(scores)), key=lambda i: scores[i])
            prediction = f"{classes[best]} ({scores[best]:.3f})"
        label = row[config.label.column]
        if config.label.values == "name":
            actual: Any = label
        else:
            actual = classes[int(label)] if classes else int(label)
        features = {k: row[k] for k in config.features.all}
        results.append({"prediction": prediction, "probabilities": probs, "label": actual, "features": features})
    return {"model_dir": str(model_dir), "version": model_dir.name, "span": span, "rows": results}
