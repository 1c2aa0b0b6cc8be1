"""Measure TFLite variants with ai-edge-litert's interpreter against the float SavedModel, and gate each one.

Same rows for every variant and for the reference: the metric (AUC and accuracy for a binary label, accuracy for a
multi-class one), its difference from the SavedModel's, prediction agreement, file size (raw and gzipped, ratio to
float32 TFLite), single-example latency p50/p95 and batch throughput (one CPU thread).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import time
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

Features = dict[str, np.ndarray]

BATCH_FOR_THROUGHPUT = 256


def primary_metric(num_outputs: int) -> str:
    """The metric gated on: AUC for a binary (sigmoid) model, accuracy for a multi-class (softmax) one."""
    return "auc" if num_outputs == 1 else "accuracy"


def predicted_class(probabilities: np.ndarray) -> np.ndarray:
    if probabilities.shape[-1] == 1:
        return (probabilities[:, 0] > 0.5).astype(np.int64)
    return np.argmax(probabilities, axis=1).astype(np.int64)


def metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUC (binary only; NaN when the rows hold one class) and accuracy."""
    from sklearn.metrics import roc_auc_score

    result = {"accuracy": float(np.mean(predicted_class(probabilities) == labels))}
    if probabilities.shape[-1] == 1:
        result["auc"] = float(roc_auc_score(labels, probabilities[:, 0])) if len(np.unique(labels)) == 2 else math.nan
    return result


def interpreter_contract(content: bytes) -> dict[str, Any]:
    """The variant's named inputs and outputs (serving_default signature) as a consumer sees them."""
    runner = Interpreter(model_content=content).get_signature_runner()

    def describe(details: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "dtype": np.dtype(detail["dtype"]).name,
                "shape": [int(d) for d in detail["shape_signature"]],
            }
            for name, detail in sorted(details.items())
        ]

    return {"inputs": describe(runner.get_input_details()), "outputs": describe(runner.get_output_details())}


def run(content: bytes, features: Features, batch_size: int = 2048) -> np.ndarray:
    """The variant's output for every row, through the interpreter."""
    runner = Interpreter(model_content=content, num_threads=1).get_signature_runner()
    names = list(runner.get_input_details())
    output = next(iter(runner.get_output_details()))
    n = len(next(iter(features.values())))
    parts = []
    for start in range(0, n, batch_size):
        batch = {name: features[name][start : start + batch_size] for name in names}
        parts.append(np.asarray(runner(**batch)[output]).copy())
    return np.concatenate(parts).astype(np.float32)


def timing(content: bytes, features: Features, runs: int) -> dict[str, float]:
    """Single-example latency (p50/p95, ms) and batch throughput (rows/s), one thread, after a warm-up."""
    names = list(Interpreter(model_content=content).get_signature_runner().get_input_details())
    n = len(next(iter(features.values())))
    single = Interpreter(model_content=content, num_threads=1).get_signature_runner()
    rows = [{name: features[name][i % n : i % n + 1] for name in names} for i in range(runs)]
    for row in rows[:10]:
        single(**row)
    latencies = []
    for row in rows:
        started = time.perf_counter()
        single(**row)
        latencies.append(time.perf_counter() - started)
    batched = Interpreter(model_content=content, num_threads=1).get_signature_runner()
    size = min(BATCH_FOR_THROUGHPUT, n)
    batch = {name: features[name][:size] for name in names}
    batched(**batch)
    done, started = 0, time.perf_counter()
    while done < 20 * size or time.perf_counter() - started < 0.2:
        batched(**batch)
        done += size
    elapsed = time.perf_counter() - started
    return {
        "latency_p50_ms": float(np.percentile(latencies, 50) * 1000),
        "latency_p95_ms": float(np.percentile(latencies, 95) * 1000),
        "throughput_rows_per_s": float(done / elapsed),
        "throughput_batch": size,
    }


def weight_bytes(content: bytes) -> int:
    """Bytes of the flatbuffer's constant buffers (weights, biases, lookup tables): what quantization shrinks.

    The rest of a file (graph, tensor names, signatures, quantization parameters) does not shrink, so on a small
    model the file ratio stays well below the weights' ratio (at most 4x for int8 against float32).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(content, 0)
    return int(sum(model.Buffers(i).DataLength() for i in range(model.BuffersLength())))


def sizes(content: bytes) -> dict[str, Any]:
    return {
        "size_bytes": len(content),
        "weight_bytes": weight_bytes(content),
        "gzip_bytes": len(gzip.compress(content, compresslevel=9, mtime=0)),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def measure(
    content: bytes,
    features: Features,
    labels: np.ndarray,
    reference: np.ndarray,
    latency_runs: int,
) -> dict[str, Any]:
    """Every figure of one variant, on the same rows as the float SavedModel's ``reference`` probabilities."""
    probabilities = run(content, features)
    if probabilities.shape != reference.shape:
        raise ValueError(f"variant output shape {probabilities.shape} != SavedModel's {reference.shape}")
    variant_metrics = metrics(probabilities, labels)
    return {
        "metrics": variant_metrics,
        "agreement": float(np.mean(predicted_class(probabilities) == predicted_class(reference))),
        "max_abs_probability_diff": float(np.max(np.abs(probabilities - reference))) if len(reference) else 0.0,
        **sizes(content),
        **timing(content, features, latency_runs),
    }


def gate(measured: dict[str, Any], reference_metrics: dict[str, float], metric: str, budget: float) -> tuple[bool, str]:
    """Accept a variant whose metric drop vs the float SavedModel is within ``budget``; say why either way."""
    value, base = measured["metrics"].get(metric, math.nan), reference_metrics.get(metric, math.nan)
    drop = base - value
    if math.isnan(drop):
        return False, f"{metric} could not be computed on the evaluation rows (one class only?)"
    if drop <= budget + 1e-9:
        return True, f"{metric} {value:.4f} vs SavedModel {base:.4f}: drop {drop:+.4f} within budget {budget:.4f}"
    return False, f"{metric} {value:.4f} vs SavedModel {base:.4f}: drop {drop:+.4f} exceeds budget {budget:.4f}"
