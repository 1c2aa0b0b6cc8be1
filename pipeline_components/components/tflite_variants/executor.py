"""TFLiteVariants executor: build, measure and gate every configured variant; write the report and the files."""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from tfx import types
from tfx.types import artifact_utils
from tfx.utils import path_utils

from pipeline_components.components.gate import Artifacts, GateExecutor, GateOutcome
from pipeline_components.components.tflite_variants import data, measure, report
from pipeline_components.components.tflite_variants.variants import (
    DESCRIPTION,
    FAMILY,
    BuildSettings,
    VariantBuilder,
    fine_tune,
    fresh_copy,
    load_keras_model,
    predict,
)
from pipeline_components.config import TFLITE_VARIANTS
from pipeline_components.errors import ConfigError, DataError
from pipeline_components.reports.store import write_page

log = logging.getLogger("runway.tflite")

RESULT_FILE = "tflite_variants.json"
PAGE_FILE = "tflite_variants.html"
ENCODING_FILE = "encoding.json"
ENCODER_FILE = "encoder.py"
VARIANTS_DIR = "variants"
ENCODER_TOLERANCE = 1e-4  # z-scores: float32 rounding; indices must match exactly


def _span(artifact: types.Artifact) -> int:
    try:
        return int(artifact.get_int_custom_property("span") or artifact.span)
    except Exception:
        return -1


def check_variants(variants: list[str]) -> list[str]:
    """Raises ConfigError on an empty list, an unknown name or a duplicate."""
    unknown = [name for name in variants if name not in TFLITE_VARIANTS]
    if unknown or not variants or len(set(variants)) != len(variants):
        raise ConfigError(
            f"tflite variants {variants}: expected a non-empty list of distinct names from {list(TFLITE_VARIANTS)}"
        )
    return variants


def produce_variants(
    *,
    saved_model_dir: str,
    transform_graph_dir: str,
    train_uris: list[str],
    eval_uris: list[str],
    out_dir: str | Path,
    variants: list[str],
    settings: dict[str, Any],
    run_id: str = "",
    span: int | None = None,
    representative: data.Features | None = None,
) -> dict[str, Any]:
    """Build, measure and gate ``variants``; write them, the encoding spec and the report under ``out_dir``.

    Args:
        saved_model_dir: the Trainer's SavedModel (``Format-Serving``).
        transform_graph_dir: Transform's graph (vocabularies, z-score constants).
        train_uris: transformed Examples artifacts whose ``train`` split calibrates and fine-tunes.
        eval_uris: raw Examples artifacts whose ``eval`` split is measured (this run's span).
        out_dir: where the variants and the report go.
        variants: names from ``TFLITE_VARIANTS``.
        settings: the ``tflite`` configuration section plus ``batch_size``.
        run_id: the pipeline run, recorded as the variants' source.
        span: the evaluation span, for the report.
        representative: calibration rows to use instead of real training rows (tests: a broken calibration).

    Returns:
        The result (also written as ``tflite_variants.json``).
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    check_variants(variants)
    started = time.monotonic()
    out = Path(out_dir)
    (out / VARIANTS_DIR).mkdir(parents=True, exist_ok=True)
    tf_transform_output = tft.TFTransformOutput(transform_graph_dir)
    model = load_keras_model(saved_model_dir)
    input_names = list(model.input_names)
    input_dtypes = {t.name.split(":")[0]: t.dtype.name for t in model.inputs}
    input_dtypes = {name: input_dtypes.get(name, "float32") for name in input_names}

    # Calibration and fine-tuning: real transformed training rows of the whole window.
    budget_rows = max(settings["representative_examples"], settings["fine_tune_steps"] * settings["batch_size"])
    train_rows = data.transformed_rows(train_uris, "train", tf_transform_output, limit=min(budget_rows, 200_000))
    train, train_labels = data.features_and_labels(train_rows, input_names)

    # Measurement: this run's raw evaluation rows, through the Transform graph (variants) and the SavedModel.
    raw_spec = tf_transform_output.raw_feature_spec()
    raw, serialized = data.read_examples(
        eval_uris, "eval", raw_spec, limit=settings["max_eval_rows"], keep_serialized=True
    )
    if not serialized:
        raise DataError(f"no evaluation rows in the 'eval' split of {eval_uris}: nothing to measure the variants on")
    transformed = data.transform_raw(tf_transform_output, raw)
    features, labels = data.features_and_labels(transformed, input_names)
    saved_model = tf.saved_model.load(saved_model_dir)
    serve = saved_model.signatures["serving_tf_example"]
    reference = np.concatenate(
        [
            serve(examples=tf.constant(serialized[i : i + 4096]))["probabilities"].numpy()
            for i in range(0, len(serialized), 4096)
        ]
    ).astype(np.float32)
    keras_reference = predict(model, features)
    metric = measure.primary_metric(reference.shape[-1])
    reference_metrics = measure.metrics(reference, labels)

    # The encoding spec that ships with the variants, checked against Transform on the same rows.
    spec = data.encoding_spec(tf_transform_output, input_dtypes)
    from pipeline_components.components.tflite_variants.encoder import encode

    encoded = encode(spec, {name: raw[name] for name in raw})
    encoder_check = encoder_agreement(encoded, features)
    (out / ENCODING_FILE).write_text(json.dumps(spec, indent=2))
    shutil.copyfile(Path(__file__).with_name(ENCODER_FILE), out / ENCODER_FILE)

    build = BuildSettings(
        fine_tune_steps=settings["fine_tune_steps"],
        fine_tune_learning_rate=settings["fine_tune_learning_rate"],
        batch_size=settings["batch_size"],
        representative_examples=settings["representative_examples"],
        target_sparsity=settings["target_sparsity"],
        clusters=settings["clusters"],
    )
    builder = VariantBuilder(model, train, train_labels, build, representative=representative)
    # Training-time variants are fine-tuned: part of their delta is the extra training, not the compression. A float
    # copy fine-tuned the same way separates the two (reported; the gate stays against the served SavedModel).
    fine_tuned_metrics: dict[str, float] | None = None
    if any(FAMILY[name] != "ptq" for name in variants):
        control = fresh_copy(model)
        fine_tune(control, train, train_labels, build)
        fine_tuned_metrics = measure.metrics(predict(control, features), labels)
    budgets = {
        "ptq": settings["ptq_budget"],
        "qat": settings["qat_budget"],
        "compression": settings["compression_budget"],
    }
    # float32 is the baseline of the size and latency ratios, built even when it is not a requested variant.
    baseline = builder.build("float32")
    baseline_measured = (
        measure.measure(baseline.content, features, labels, reference, settings["latency_runs"])
        if baseline.content
        else None
    )
    results = []
    for name in variants:
        built = baseline if name == "float32" else builder.build(name)
        entry: dict[str, Any] = {
            "name": name,
            "description": DESCRIPTION[name],
            "family": FAMILY[name],
            "budget": budgets[FAMILY[name]],
            "build_seconds": built.seconds,
            "notes": built.notes,
            "measured": None,
            "delta": None,
            "accepted": False,
        }
        if built.content is None:
            entry["reason"] = f"could not be built: {built.error}"
        else:
            try:
                measured = (
                    baseline_measured
                    if name == "float32" and baseline_measured
                    else measure.measure(built.content, features, labels, reference, settings["latency_runs"])
                )
                entry["measured"] = measured
                entry["contract"] = measure.interpreter_contract(built.content)
                entry["delta"] = measured["metrics"].get(metric, math.nan) - reference_metrics.get(metric, math.nan)
                if baseline_measured:
                    entry["size_ratio_vs_float32"] = baseline_measured["size_bytes"] / measured["size_bytes"]
                    entry["gzip_ratio_vs_float32"] = baseline_measured["gzip_bytes"] / measured["gzip_bytes"]
                    entry["weights_ratio_vs_float32"] = baseline_measured["weight_bytes"] / measured["weight_bytes"]
                    entry["latency_ratio_vs_float32"] = measured["latency_p50_ms"] / baseline_measured["latency_p50_ms"]
                entry["accepted"], entry["reason"] = measure.gate(measured, reference_metrics, metric, entry["budget"])
                if fine_tuned_metrics is not None and FAMILY[name] != "ptq":
                    entry["delta_vs_fine_tuned_float"] = measured["metrics"].get(metric, math.nan) - (
                        fine_tuned_metrics.get(metric, math.nan)
                    )
                entry["file"] = f"{VARIANTS_DIR}/{name}.tflite"
                (out / entry["file"]).write_bytes(built.content)
            except Exception as err:  # a variant that converts but does not run is rejected, not fatal
                log.exception("variant %s could not be measured", name)
                entry["reason"] = f"could not be run by the interpreter: {type(err).__name__}: {err}"[:500]
        log.info("variant %s: %s", name, entry["reason"])
        results.append(entry)

    accepted = [v["name"] for v in results if v["accepted"]]
    produced = [v["name"] for v in results if v["measured"]]
    summary = (
        f"{len(accepted)} of {len(results)} variants accepted ({', '.join(accepted) or 'none'}); "
        f"reference {metric} {reference_metrics.get(metric, math.nan):.4f} on {len(labels)} evaluation rows"
    )
    result: dict[str, Any] = {
        "run_id": run_id,
        "metric": metric,
        "budgets": budgets,
        "summary": summary,
        "reference": {
            "model": saved_model_dir,
            "signature": "serving_tf_example",
            "rows": len(labels),
            "span": span,
            "metrics": reference_metrics,
            "keras_vs_signature_max_abs_diff": float(np.max(np.abs(keras_reference - reference)))
            if len(reference)
            else 0.0,
        },
        "encoder_check": encoder_check,
        "fine_tuned_float": fine_tuned_metrics,
        "training_rows": len(train_labels),
        "representative_rows": len(next(iter(builder.representative.values()))),
        "variants": results,
        "accepted": accepted,
        "produced": produced,
        "seconds": round(time.monotonic() - started, 1),
    }
    svg = report.plot_svg(result)
    (out / "tflite_variants.svg").write_text(svg)
    (out / "tflite_variants.md").write_text(report.to_markdown(result))
    write_page(out / PAGE_FILE, report.to_html(result, svg))
    (out / RESULT_FILE).write_text(json.dumps(result, indent=2, default=str))
    return result


def encoder_agreement(encoded: data.Features, transformed: data.Features) -> dict[str, Any]:
    """How far the reference encoder is from Transform's own outputs, per input (0 and 0 expected)."""
    worst, mismatched = 0.0, 0
    for name, expected in transformed.items():
        got = encoded[name]
        if np.issubdtype(expected.dtype, np.floating):
            worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - expected))) if len(expected) else 0.0)
        else:
            mismatched += int(np.sum(got != expected))
    return {
        "max_abs_diff_numeric": worst,
        "mismatched_indices": mismatched,
        "ok": worst <= ENCODER_TOLERANCE and mismatched == 0,
    }


class Executor(GateExecutor):
    """See ``TFLiteVariants``."""

    PAGE_SUFFIX = "tflite"

    def judge(self, inputs: Artifacts, outputs: Artifacts, properties: dict[str, Any]) -> GateOutcome:
        out = artifact_utils.get_single_instance(outputs["tflite_models"])
        settings = json.loads(properties["settings"])
        run_id = (self._context.pipeline_run_id if self._context else None) or ""
        requested = json.loads(properties["variants"])
        if requested == []:  # run parameter tflite_variants=none
            empty: dict[str, Any] = {"run_id": run_id, "metric": None, "variants": [], "accepted": [], "produced": []}
            Path(out.uri).mkdir(parents=True, exist_ok=True)
            (Path(out.uri) / RESULT_FILE).write_text(json.dumps(empty))
            summary = "no TFLite variant requested this run (tflite_variants=none)"
            return GateOutcome(out.uri, passed=True, summary=summary)
        try:
            variants = check_variants(requested)
        except ConfigError as err:
            return GateOutcome(out.uri, passed=False, summary="TFLite variants misconfigured", failures=[str(err)])
        transformed = sorted(inputs["transformed_examples"], key=_span)
        examples = sorted(inputs["examples"], key=_span)
        span = _span(examples[-1]) if examples else None
        try:
            result = produce_variants(
                saved_model_dir=path_utils.serving_model_path(artifact_utils.get_single_uri(inputs["model"])),
                transform_graph_dir=artifact_utils.get_single_uri(inputs["transform_graph"]),
                train_uris=[a.uri for a in transformed],
                eval_uris=[examples[-1].uri],
                out_dir=out.uri,
                variants=variants,
                settings=settings,
                run_id=run_id,
                span=span,
            )
        except DataError as err:  # no rows to calibrate or measure on: no variant can be trusted
            summary = "TFLite variants: no data to build or measure on"
            return GateOutcome(out.uri, passed=False, summary=summary, failures=[str(err)])
        out.set_string_custom_property("accepted", ",".join(result["accepted"]))
        out.set_string_custom_property("run_id", run_id)
        failures = report.gate_failures(result)
        return GateOutcome(
            out.uri,
            passed=not failures,
            summary=result["summary"],
            failures=failures,
            figures={
                "tflite_accepted": result["accepted"],
                "tflite_rejected": [f"{v['name']}: {v['reason']}" for v in result["variants"] if not v["accepted"]],
                "tflite_metric": result["metric"],
                "tflite_reference": result["reference"]["metrics"],
            },
            page=(Path(out.uri) / PAGE_FILE).read_text(),  # written by produce_variants
            page_name=PAGE_FILE,
        )
