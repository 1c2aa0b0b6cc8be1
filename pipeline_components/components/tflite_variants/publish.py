"""Publish accepted variants beside a pushed version: ``<store>/<model>/<version>/tflite/<variant>.tflite``.

Written atomically: everything goes to a hidden temporary folder inside the version folder, flushed to disk, then
one rename makes ``tflite/`` appear complete; a re-publication exchanges the new folder with the old one in one step
(``durable.swap_dir``), so a consumer never sees half a folder, nor a moment without one. Only the version's
``tflite/`` folder is written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline_components.durable import swap_dir
from pipeline_components.errors import DataError

TFLITE_DIR = "tflite"
INDEX_FILE = "index.json"


def variant_metadata(result: dict[str, Any], variant: dict[str, Any], *, model: str, version: str) -> dict[str, Any]:
    """What a mobile consumer reads to pick and call a variant."""
    measured = variant["measured"]
    return {
        "variant": variant["name"],
        "file": f"{variant['name']}.tflite",
        "description": variant["description"],
        "model": model,
        "version": version,
        "source_run_id": result["run_id"],
        "sha256": measured["sha256"],
        "size_bytes": measured["size_bytes"],
        "gzip_bytes": measured["gzip_bytes"],
        "size_ratio_vs_float32": variant.get("size_ratio_vs_float32"),
        "weight_bytes": measured["weight_bytes"],
        "weights_ratio_vs_float32": variant.get("weights_ratio_vs_float32"),
        "signature": "serving_default",
        "inputs": variant["contract"]["inputs"],
        "outputs": variant["contract"]["outputs"],
        "input_encoding": {
            "spec": "encoding.json",
            "reference_encoder": "encoder.py",
            "what": "inputs are Transform's outputs: <feature>_xf = z-score (numeric) or vocabulary index "
            "(categorical, unseen values -> the out-of-vocabulary index); encoder.py computes them from raw values",
        },
        "output_meaning": (
            "probabilities: P(label = 1), shape [batch, 1]"
            if result["metric"] == "auc"
            else "probabilities: one column per class, shape [batch, classes]"
        ),
        "evaluation": {
            "metric": result["metric"],
            "value": measured["metrics"].get(result["metric"]),
            "metrics": measured["metrics"],
            "savedmodel_metrics": result["reference"]["metrics"],
            "delta_vs_savedmodel": variant["delta"],
            "budget": variant["budget"],
            "agreement_with_savedmodel": measured["agreement"],
            "rows": result["reference"]["rows"],
            "span": result["reference"].get("span"),
        },
        "latency_p50_ms": measured["latency_p50_ms"],
        "latency_p95_ms": measured["latency_p95_ms"],
    }


def publish(variants_dir: str | Path, version_dir: str | Path, *, model: str, version: str) -> dict[str, Any]:
    """Copy the accepted variants of ``variants_dir`` (a TFLiteVariants output) into ``<version_dir>/tflite``.

    Returns:
        The index written as ``tflite/index.json`` (published variants and the rejected ones with their reasons).

    Raises:
        DataError: the version folder or the variants' result is missing.
    """
    from pipeline_components.components.tflite_variants.executor import ENCODER_FILE, ENCODING_FILE, RESULT_FILE

    source, version_path = Path(variants_dir), Path(version_dir)
    if not version_path.is_dir():
        raise DataError(f"pushed version folder {version_path} does not exist: nothing to publish beside")
    if not (source / RESULT_FILE).is_file():
        raise DataError(f"{source / RESULT_FILE} is missing: the TFLiteVariants output is incomplete")
    result = json.loads((source / RESULT_FILE).read_text())
    accepted = [v for v in result["variants"] if v["accepted"]]
    index = {
        "model": model,
        "version": version,
        "source_run_id": result["run_id"],
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "variants": [v["name"] for v in accepted],
        "rejected": {v["name"]: v["reason"] for v in result["variants"] if not v["accepted"]},
    }
    staging = Path(tempfile.mkdtemp(prefix=".tflite-", dir=version_path))
    try:
        for variant in accepted:
            shutil.copyfile(source / variant["file"], staging / f"{variant['name']}.tflite")
            metadata = variant_metadata(result, variant, model=model, version=version)
            (staging / f"{variant['name']}.json").write_text(json.dumps(metadata, indent=2))
        if accepted:
            shutil.copyfile(source / ENCODING_FILE, staging / ENCODING_FILE)
            shutil.copyfile(source / ENCODER_FILE, staging / ENCODER_FILE)
        (staging / INDEX_FILE).write_text(json.dumps(index, indent=2))
        os.chmod(staging, 0o755)
        swap_dir(staging, version_path / TFLITE_DIR)  # the old publication (if any) is deleted after the swap
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return index
