"""A tabular classifier for any dataset described by a pipeline configuration.

Transform calls ``preprocessing_fn`` and Trainer calls ``run_fn``; both read the feature lists, the label and
the hyperparameters from ``custom_config`` (compiled from the pipeline configuration), so a new tabular
dataset needs a configuration file and no new model code.

The exported SavedModel has two signatures:
  - ``serving_default``: one named input per raw feature (a 1-D batch of values), JSON-friendly for TF Serving's
    REST ``predict`` in row or columnar form, with the Transform graph inside;
  - ``serving_tf_example``: serialized ``tf.Example`` records; Evaluator (TFMA) is pinned to it;
  - ``serving_classify``: TF Serving's classification contract over serialized ``tf.Example`` records (input
    ``inputs``; outputs ``classes``, the class names of ``label.classes`` or else the class indices as strings, and
    ``scores``, one probability per class), for its ``Classify`` API;
  - ``serving_regress``: TF Serving's regression contract (input ``inputs``; output ``outputs``, one float per
    example), for its ``Regress`` API: the probability of the positive class for a binary label, the probability of
    the most likely class (the model's confidence) for a multi-class one;
  - ``transform_features`` (only for a label of class names, ``label.values: name``): Transform's outputs for a
    serialized ``tf.Example``, label index included, which the Evaluator (TFMA) scores against.

The label column holds the class index, or (``label.values: name``) the class names that ``preprocessing_fn`` maps
to their position in ``label.classes``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from pipeline_components.errors import ConfigError
from pipeline_components.training.session import training_session

LABEL_KEY = "label_xf"
TRANSFORM_SIGNATURE = "transform_features"  # what the Evaluator reads label_xf from (pipeline/factory.py)
NUM_OOV_BUCKETS = 1


def transformed_name(name: str) -> str:
    return f"{name}_xf"


def _dense(value: Any) -> tf.Tensor:
    """Raw features arrive as [batch, 1] dense tensors (fixed-shape schema) or as sparse ones; flatten to [batch]."""
    if isinstance(value, tf.SparseTensor):
        default = "" if value.dtype == tf.string else tf.cast(0, value.dtype)
        value = tf.sparse.to_dense(tf.sparse.reset_shape(value, [value.dense_shape[0], 1]), default_value=default)
    return tf.reshape(value, [-1])


def preprocessing_fn(inputs: dict[str, Any], custom_config: dict[str, Any]) -> dict[str, tf.Tensor]:
    """tf.Transform: z-scores for numeric features, vocabularies for categorical ones, the label as int64."""
    outputs: dict[str, tf.Tensor] = {}
    for name in custom_config["numeric"]:
        outputs[transformed_name(name)] = tft.scale_to_z_score(tf.cast(_dense(inputs[name]), tf.float32))
    for name in custom_config["categorical"]:
        value = _dense(inputs[name])
        if value.dtype != tf.string:
            value = tf.strings.as_string(value)
        outputs[transformed_name(name)] = tft.compute_and_apply_vocabulary(
            value, num_oov_buckets=NUM_OOV_BUCKETS, vocab_filename=name
        )
    outputs[LABEL_KEY] = label_index(_dense(inputs[custom_config["label"]]), custom_config)
    return outputs


def label_index(label: tf.Tensor, custom_config: dict[str, Any]) -> tf.Tensor:
    """The label as an int64 class index (LabelConfig): cast when the column holds the index, else the position
    of its name in ``classes`` (-1 for a name that is not there; the run's pre-flight check refuses such spans).

    Raises:
        ConfigError: the column holds text but the configuration says it holds indices.
    """
    if custom_config.get("label_values") == "name":
        names = label if label.dtype == tf.string else tf.strings.as_string(label)
        classes = tf.constant(list(custom_config["classes"]), dtype=tf.string)
        matches = tf.equal(tf.expand_dims(names, 1), tf.expand_dims(classes, 0))  # [batch, classes]
        index = tf.argmax(tf.cast(matches, tf.int64), axis=1, output_type=tf.int64)
        return tf.where(tf.reduce_any(matches, axis=1), index, tf.constant(-1, tf.int64))
    if label.dtype == tf.string:
        raise ConfigError(
            f"label '{custom_config['label']}' holds text, but label.values is 'index' (0/1 or the class index): "
            "set label.values: name and label.classes, in index order"
        )
    return tf.cast(label, tf.int64)


def build_keras_model(
    *,
    numeric: list[str],
    categorical_sizes: dict[str, int],
    num_classes: int,
    hidden_units: list[int],
    embedding_dim: int,
    learning_rate: float,
) -> keras.Model:
    """The classifier over transformed features: embeddings for categoricals, a small MLP, sigmoid or softmax."""
    inputs: dict[str, keras.Input] = {}
    parts = []
    for name in numeric:
        key = transformed_name(name)
        inputs[key] = keras.Input(shape=(), name=key, dtype=tf.float32)
        parts.append(keras.layers.Reshape((1,))(inputs[key]))
    for name, size in categorical_sizes.items():
        key = transformed_name(name)
        inputs[key] = keras.Input(shape=(), name=key, dtype=tf.int64)
        embedded = keras.layers.Embedding(size, embedding_dim, name=f"{name}_embedding")(inputs[key])
        parts.append(embedded)
    x = keras.layers.Concatenate()(parts) if len(parts) > 1 else parts[0]
    for units in hidden_units:
        x = keras.layers.Dense(units, activation="relu")(x)
    if num_classes == 2:
        output = keras.layers.Dense(1, activation="sigmoid", name="probabilities")(x)
        loss = keras.losses.BinaryCrossentropy()
        metrics = [keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="binary_accuracy")]
    else:
        output = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="sparse_categorical_accuracy")]
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    return model


def _input_fn(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
) -> tf.data.Dataset:
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL_KEY),
        tf_transform_output.transformed_metadata.schema,
    ).repeat()


def _raw_feature_spec(tf_transform_output: tft.TFTransformOutput, label: str) -> dict[str, Any]:
    spec = dict(tf_transform_output.raw_feature_spec())
    spec.pop(label, None)
    return spec


def _serving_signatures(
    model: keras.Model, tf_transform_output: tft.TFTransformOutput, config: dict[str, Any]
) -> dict[str, Any]:
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = _raw_feature_spec(tf_transform_output, config["label"])

    def predict(raw_features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer(raw_features)
        transformed.pop(LABEL_KEY, None)
        return {"probabilities": model(transformed)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict(tf.io.parse_example(serialized, raw_spec))

    raw_signature = {
        name: tf.TensorSpec(shape=[None], dtype=feature.dtype, name=name) for name, feature in raw_spec.items()
    }

    @tf.function(input_signature=[raw_signature])
    def serve_raw(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        batch = {}
        for name, value in features.items():
            shape = raw_spec[name].shape
            batch[name] = tf.reshape(value, [-1, *shape]) if shape else value
        return predict(batch)

    classify, regress = _classify_regress_signatures(serve_tf_examples, list(config.get("classes") or []))
    signatures = {
        "serving_default": serve_raw.get_concrete_function(),
        "serving_tf_example": serve_tf_examples.get_concrete_function(),
        "serving_classify": classify,
        "serving_regress": regress,
    }
    if config.get("label_values") == "name":
        full_spec = tf_transform_output.raw_feature_spec()  # the label too: TFMA scores against its index

        @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
        def transform_features(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
            return dict(model.tft_layer(tf.io.parse_example(serialized, full_spec)))

        signatures[TRANSFORM_SIGNATURE] = transform_features.get_concrete_function()
    return signatures


def _class_scores(probabilities: tf.Tensor) -> tf.Tensor:
    """[batch, num_classes] scores: a sigmoid's single column becomes the two columns [1 - p, p]."""
    if probabilities.shape[-1] == 1:
        return tf.concat([1.0 - probabilities, probabilities], axis=1)
    return probabilities


def _classify_regress_signatures(serve_tf_examples: Any, class_names: list[str]) -> tuple[Any, Any]:
    """TF Serving's Classify and Regress contracts over the tf.Example signature; ``classes`` answers with
    ``class_names`` (in index order) when the configuration names the classes, else with the indices.

    TF Serving finds the input under ``inputs`` and the outputs under ``classes``/``scores`` (classify) or
    ``outputs`` (regress); it checks the signature's method name only with ``--enable_signature_method_name_check``
    (off by default; tensorflow_serving/servables/tensorflow/classifier.cc, regressor.cc).
    """

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="inputs")])
    def classify(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        scores = _class_scores(serve_tf_examples(inputs)["probabilities"])
        if class_names:
            names = tf.constant(class_names, dtype=tf.string)
        else:
            names = tf.strings.as_string(tf.range(tf.shape(scores)[1]))
        classes = tf.tile(tf.expand_dims(names, 0), [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="inputs")])
    def regress(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = serve_tf_examples(inputs)["probabilities"]
        if probabilities.shape[-1] == 1:
            return {"outputs": probabilities}
        return {"outputs": tf.reduce_max(probabilities, axis=1, keepdims=True)}

    return classify.get_concrete_function(), regress.get_concrete_function()


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point: train on the window's train split, validate on its eval split, export.

    Under the strategy of ``custom_config["training"]`` (docs/training.md): the model is built and compiled in its
    scope, the batch size is per replica, and the multi-process strategies run this same function in each worker.
    """
    config = fn_args.custom_config
    with training_session(fn_args, entry=f"{__name__}.run_fn") as session:
        if session.strategy is None:
            return  # this process supervised the workers; the chief trained and exported the model
        tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
        batch_size = config["batch_size"]

        def dataset(files: list[str]) -> Any:
            return lambda batch: _input_fn(files, fn_args.data_accessor, tf_transform_output, batch)

        train = session.input(dataset(fn_args.train_files), batch_size=batch_size, files=fn_args.train_files)
        evaluation = session.validation_input(
            dataset(fn_args.eval_files), batch_size=batch_size, files=fn_args.eval_files
        )
        with session.strategy.scope():
            model = build_keras_model(
                numeric=config["numeric"],
                categorical_sizes={
                    name: tf_transform_output.vocabulary_size_by_name(name) + NUM_OOV_BUCKETS
                    for name in config["categorical"]
                },
                num_classes=config["num_classes"],
                hidden_units=config["hidden_units"],
                embedding_dim=config["embedding_dim"],
                learning_rate=config["learning_rate"],
            )
        epochs = max(1, config.get("epochs", 1))
        model.fit(
            train,
            steps_per_epoch=max(1, fn_args.train_steps // epochs),
            epochs=epochs,
            validation_data=evaluation,
            validation_steps=fn_args.eval_steps if evaluation is not None else None,
            callbacks=session.callbacks(),
            verbose=2,
        )
        signatures = _serving_signatures(model, tf_transform_output, config)
        model.save(session.serving_model_dir, save_format="tf", signatures=signatures)
