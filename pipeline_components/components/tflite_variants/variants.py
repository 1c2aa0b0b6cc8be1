"""Build the TFLite variants of a trained tabular model: post-training quantization and tfmot's training-time paths.

Every variant takes the model's *transformed* inputs (z-scored numerics, vocabulary indices): TFT's string lookups
are TensorFlow hash tables, not TFLite builtins, so the Transform graph stays outside the TFLite file and an
encoding spec (``encoding.json``, read by ``encoder.py``) ships beside it. Inputs and outputs stay float32 (and
int64 indices) even for the int8 variants: the first op quantizes, the last dequantizes, every op between is int8.

tensorflow-model-optimization needs Keras 2 (``tf_keras``); the Trainer's SavedModel is restored with ``tf_keras``
and rebuilt without its Transform layer (tfmot refuses a model that holds another model).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

log = logging.getLogger("runway.tflite")

Features = dict[str, np.ndarray]

# The budget each variant is gated with (TFLiteConfig.<family>_budget).
FAMILY = {
    "float32": "ptq",
    "dynamic_range": "ptq",
    "float16": "ptq",
    "int8": "ptq",
    "qat_int8": "qat",
    "pqat_int8": "qat",
    "cqat_int8": "qat",
    "pruned": "compression",
    "clustered": "compression",
}
DESCRIPTION = {
    "float32": "float32 weights and activations (converter's folding and fusions only)",
    "dynamic_range": "int8 weights, float activations (dynamic-range quantization)",
    "float16": "float16 weights, float32 compute",
    "int8": "full-integer int8 post-training quantization, calibrated on real training rows",
    "qat_int8": "quantization-aware fine-tuning (tfmot), then full-integer int8",
    "pruned": "magnitude pruning (polynomial-decay sparsity), wrappers stripped, float32",
    "clustered": "weight clustering (k-means++ centroids), wrappers stripped, float32",
    "pqat_int8": "pruning, then sparsity-preserving QAT (PQAT), then full-integer int8",
    "cqat_int8": "clustering, then cluster-preserving QAT (CQAT), then full-integer int8",
}


@dataclass(frozen=True)
class BuildSettings:
    """What the variants are built with (from TFLiteConfig and the model configuration)."""

    fine_tune_steps: int = 200
    fine_tune_learning_rate: float = 1e-4
    batch_size: int = 256
    representative_examples: int = 500
    target_sparsity: float = 0.5
    clusters: int = 16
    seed: int = 0


@dataclass
class Built:
    """One variant's TFLite flatbuffer, or why it could not be built."""

    name: str
    content: bytes | None = None
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def load_keras_model(saved_model_dir: str | Path) -> keras.Model:
    """The Trainer's Keras model over transformed features, without the Transform layer its SavedModel tracks."""
    loaded = keras.models.load_model(str(saved_model_dir), compile=False)
    return keras.Model(inputs=loaded.input, outputs=loaded.output, name="tabular")


def fresh_copy(model: keras.Model) -> keras.Model:
    """An independent copy (new layers, same weights): fine-tuning a variant must not touch the float model."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def predict(model: keras.Model, features: Features, batch_size: int = 4096) -> np.ndarray:
    inputs = {name: features[name] for name in model.input_names}
    return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0))


def _loss(model: keras.Model) -> keras.losses.Loss:
    if model.output_shape[-1] == 1:
        return keras.losses.BinaryCrossentropy()
    return keras.losses.SparseCategoricalCrossentropy()


def fine_tune(
    model: keras.Model,
    train: Features,
    labels: np.ndarray,
    settings: BuildSettings,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> None:
    """A few batches of real training rows with a small learning rate (what tfmot's wrappers need to adapt)."""
    model.compile(optimizer=keras.optimizers.Adam(settings.fine_tune_learning_rate), loss=_loss(model))
    inputs = {name: train[name] for name in model.input_names}
    dataset = (
        tf.data.Dataset.from_tensor_slices((inputs, labels))
        .shuffle(min(len(labels), 20_000), seed=settings.seed)
        .repeat()
        .batch(settings.batch_size)
    )
    model.fit(dataset, steps_per_epoch=settings.fine_tune_steps, epochs=1, verbose=0, callbacks=callbacks or [])


def representative_rows(train: Features, count: int, seed: int = 0) -> Features:
    """``count`` real training rows, drawn at random (the calibration set of full-integer quantization)."""
    n = len(next(iter(train.values())))
    rows = np.random.default_rng(seed).choice(n, size=min(count, n), replace=False)
    return {name: values[rows] for name, values in train.items()}


def _representative_dataset(model: keras.Model, rows: Features) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    names = list(model.input_names)
    count = len(next(iter(rows.values())))

    def generate() -> Iterator[dict[str, np.ndarray]]:
        for i in range(count):
            yield {name: rows[name][i : i + 1] for name in names}

    return generate


def convert(model: keras.Model, mode: str, representative: Features | None = None) -> bytes:
    """TFLite flatbuffer of ``model``: ``float32``, ``dynamic_range``, ``float16`` or ``int8`` (full integer)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "dynamic_range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative is None:
            raise ValueError("full-integer quantization needs a representative dataset")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative_dataset(model, representative)
        # Every op in int8 or the conversion fails (no silent float fallback); the interface stays float32/int64.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif mode != "float32":
        raise ValueError(f"unknown conversion mode {mode!r}")
    return bytes(converter.convert())


def _wrap_dense(model: keras.Model, wrap: Callable[[keras.layers.Layer], keras.layers.Layer]) -> keras.Model:
    """A copy of ``model`` with ``wrap`` applied to its Dense layers (the bulk of the weights)."""
    copy = fresh_copy(model)
    return keras.models.clone_model(
        copy, clone_function=lambda layer: wrap(layer) if isinstance(layer, keras.layers.Dense) else layer
    )


class VariantBuilder:
    """Builds variants on demand, sharing the intermediate models (PQAT starts from the pruned model, ...)."""

    def __init__(
        self,
        model: keras.Model,
        train: Features,
        labels: np.ndarray,
        settings: BuildSettings,
        representative: Features | None = None,
    ) -> None:
        self.model = model
        self.train = train
        self.labels = labels
        self.settings = settings
        self.representative = (
            representative
            if representative is not None
            else representative_rows(train, settings.representative_examples, settings.seed)
        )
        self._cache: dict[str, keras.Model] = {}
        self.notes: dict[str, list[str]] = {}

    def build(self, name: str) -> Built:
        started = time.monotonic()
        self.notes[name] = []
        try:
            content = self._build(name)
        except Exception as err:  # one variant failing must not stop the others; the report says why
            log.exception("variant %s could not be built", name)
            return Built(name, error=f"{type(err).__name__}: {err}"[:500], seconds=time.monotonic() - started)
        return Built(name, content=content, seconds=round(time.monotonic() - started, 2), notes=self.notes[name])

    def _build(self, name: str) -> bytes:
        if name in ("float32", "dynamic_range", "float16"):
            return convert(self.model, name)
        if name == "int8":
            return convert(self.model, "int8", self.representative)
        if name == "qat_int8":
            return convert(self._qat(self.model, "qat_int8"), "int8", self.representative)
        if name == "pruned":
            return convert(self._pruned(), "float32")
        if name == "clustered":
            return convert(self._clustered(), "float32")
        if name == "pqat_int8":
            return convert(self._collaborative("pruned"), "int8", self.representative)
        if name == "cqat_int8":
            return convert(self._collaborative("clustered"), "int8", self.representative)
        raise ValueError(f"unknown variant {name!r}")

    def _note(self, name: str, text: str) -> None:
        self.notes.setdefault(name, []).append(text)
        log.info("%s: %s", name, text)

    def _qat(self, base: keras.Model, name: str) -> keras.Model:
        import tensorflow_model_optimization as tfmot

        quantization = tfmot.quantization.keras
        try:
            model = quantization.quantize_model(fresh_copy(base))
            self._note(name, "whole-model QAT (quantize_model)")
        except Exception as err:
            # quantize_model wraps every layer; it cannot wrap the int64 index inputs / Embedding lookups of this
            # model. Annotate the Dense layers instead; the converter calibrates the rest on real rows.
            model = quantization.quantize_apply(_wrap_dense(base, quantization.quantize_annotate_layer))
            self._note(
                name,
                f"quantize_model could not wrap the whole model ({type(err).__name__}); "
                "Dense layers annotated (quantize_annotate_layer + quantize_apply)",
            )
        fine_tune(model, self.train, self.labels, self.settings)
        return model

    def _pruned(self) -> keras.Model:
        if "pruned" not in self._cache:
            import tensorflow_model_optimization as tfmot

            sparsity = tfmot.sparsity.keras
            steps = self.settings.fine_tune_steps
            schedule = sparsity.PolynomialDecay(
                initial_sparsity=0.0,
                final_sparsity=self.settings.target_sparsity,
                begin_step=0,
                end_step=max(1, int(steps * 0.8)),
                frequency=max(1, steps // 20),
            )
            model = _wrap_dense(
                self.model, lambda layer: sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
            )
            fine_tune(model, self.train, self.labels, self.settings, callbacks=[sparsity.UpdatePruningStep()])
            stripped = sparsity.strip_pruning(model)
            self._cache["pruned"] = stripped
            self._note("pruned", f"Dense kernels {weight_sparsity(stripped):.0%} zeros after {steps} steps")
        return self._cache["pruned"]

    def _clustered(self) -> keras.Model:
        if "clustered" not in self._cache:
            import tensorflow_model_optimization as tfmot

            clustering = tfmot.clustering.keras
            model = _wrap_dense(
                self.model,
                lambda layer: clustering.cluster_weights(
                    layer,
                    number_of_clusters=self.settings.clusters,
                    cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
                ),
            )
            fine_tune(model, self.train, self.labels, self.settings)
            stripped = clustering.strip_clustering(model)
            self._cache["clustered"] = stripped
            self._note("clustered", f"at most {max_unique_weights(stripped)} distinct values per Dense kernel")
        return self._cache["clustered"]

    def _collaborative(self, source: str) -> keras.Model:
        import tensorflow_model_optimization as tfmot

        name = "pqat_int8" if source == "pruned" else "cqat_int8"
        base = self._pruned() if source == "pruned" else self._clustered()
        quantization = tfmot.quantization.keras
        combine = tfmot.experimental.combine
        scheme = (
            combine.Default8BitPrunePreserveQuantizeScheme()
            if source == "pruned"
            else combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
        )
        annotated = _wrap_dense(base, quantization.quantize_annotate_layer)
        model = quantization.quantize_apply(annotated, scheme)
        fine_tune(model, self.train, self.labels, self.settings)
        if source == "pruned":
            self._note(name, f"sparsity kept through QAT: {weight_sparsity(model):.0%} zeros in Dense kernels")
        else:
            self._note(name, f"clusters kept through QAT: at most {max_unique_weights(model)} distinct values")
        return model


def _dense_kernels(model: keras.Model) -> list[np.ndarray]:
    kernels = []
    for weight in model.weights:
        # Dense kernels (also inside tfmot's wrappers), not embeddings, biases or quantizer state.
        if weight.name.endswith("kernel:0") and len(weight.shape) == 2 and "embedding" not in weight.name:
            kernels.append(np.asarray(weight.numpy()))
    return kernels


def weight_sparsity(model: keras.Model) -> float:
    kernels = _dense_kernels(model)
    total = sum(k.size for k in kernels)
    return float(sum((k == 0).sum() for k in kernels) / total) if total else 0.0


def max_unique_weights(model: keras.Model) -> int:
    return max((len(np.unique(k)) for k in _dense_kernels(model)), default=0)
